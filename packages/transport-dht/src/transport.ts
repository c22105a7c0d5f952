import { PeerBackoff } from './backoff.js';
import type { IdentifyResult, Connection as Libp2pConnection, PeerId, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import {
  AbortError,
  AsyncQueue,
  assertTopic,
  ConnectFailedError,
  ProtocolError,
  RhizomeError,
  TimeoutError,
  TopicAlreadyJoinedError,
  TransportClosedError,
  topicToHex,
  type Connection,
  type ConnectOptions,
  type PeerInfo,
  type TopicHash,
  type Transport,
} from '@rhizome/core';
import type { CID } from 'multiformats/cid';
import { StreamChannel } from './channel.js';
import { DialSlots } from './dial-slots.js';
import { topicToCid } from './cid.js';
import { DhtConnection, linkPath } from './connection.js';
import { generatePrivateKey, loadOrCreateKeyFile } from './keys.js';
import { LinkMonitor } from './link-monitor.js';
import { createRhizomeNode, type RhizomeLibp2p } from './node.js';
import {
  DIAL_SLOT_HOLD_MS,
  INITIAL_LOOKUP_INTERVAL_MS,
  REDIAL_JITTER_MS,
  MAX_DIAL_BACKOFF_MS,
  PRIVATE_INBOUND_CONNECTION_THRESHOLD,
  resolveDhtOptions,
  syncProtocol,
  type DhtTransportOptions,
  type ResolvedDhtOptions,
} from './options.js';
import { decodeHello, encodeHello, HandshakeStatus, HELLO_LENGTH, statusName, WIRE_VERSION, type HandshakeStatusCode } from './wire.js';

/**
 * Query options that let a topic's provide/findProviders start as soon as kad-dht's routing table
 * holds a peer. kad-dht 16 otherwise holds every query until its initial self-query (a walk to the
 * 20 peers closest to our own id, bounded at 5 s) has finished: measured in the 32-replica join
 * (one process per replica), that wait was most of a joiner's time to its first connection
 * (BENCHMARKS.md § NAT traversal). `isSelfQuery` is the flag kad-dht's own self-query uses to
 * skip that wait; it changes nothing else (the query still waits for a first routing-table
 * peer, and the self-query still runs and fills the table). It is not in kad-dht's public
 * types: if a later kad-dht drops it, queries merely wait as before.
 */
const START_WITHOUT_SELF_QUERY = { isSelfQuery: true } as const;

/** First wait before retrying a node whose listen address could not be bound. */
const LISTEN_RETRY_INITIAL_MS = 1000;

/** One joined topic. */
interface Join {
  readonly key: string;
  readonly topic: Uint8Array;
  readonly cid: CID;
  readonly queue: AsyncQueue<Connection>;
  /** Established connections by remote peer id: at most one per peer. */
  readonly conns: Map<string, DhtConnection>;
  /** Outbound dials in flight by remote peer id; aborting one abandons it. */
  readonly pending: Map<string, AbortController>;
  /** Aborted when the topic is left. */
  readonly controller: AbortController;
  /** Ends the current wait of the topic loop early. */
  wake: (() => void) | null;
  /** The topic loop's next wait (ms): 500 doubling to lookupIntervalMs; reset when a connection is lost. */
  delay: number;
  /** When a provider record last reached at least one DHT peer (ms since epoch); 0: never. */
  lastAnnounced: number;
  /** Our addresses changed since the last announce started: announce again at the next turn. */
  reannounce: boolean;
  /** libp2p connections a probe for this topic already went over (see #probe): at most one each. */
  readonly probed: WeakSet<Libp2pConnection>;
  /** Pending redials of lost peers (see #redialLater); cleared when the topic is left. */
  readonly redials: Set<ReturnType<typeof setTimeout>>;
  /** Called once when the topic's first Connection is accepted (see #firstAnnounceMayStart). */
  onFirstConnection: (() => void) | null;
}

/**
 * What a dial is for. `dial`: a provider or LAN peer, backed off on failure. `upgrade`: a direct
 * path for a peer reached over a relay. `probe`: a peer met over libp2p that may have joined the
 * topic (see #probe); a refusal or failure is expected and quiet.
 */
type DialKind = 'dial' | 'upgrade' | 'probe';


/** A direct (not relayed, not limited) open libp2p connection to the peer, if the node holds one. */
function directLink(node: RhizomeLibp2p, peerId: string): Libp2pConnection | null {
  for (const link of node.getConnections(peerIdFromString(peerId))) {
    if (link.status === 'open' && linkPath(link, false) !== 'circuit') return link;
  }
  return null;
}

/** True if the node holds an open libp2p connection (of any path) to the peer. */
function hasLink(node: RhizomeLibp2p, peer: PeerId): boolean {
  return node.getConnections(peer).some((link) => link.status === 'open');
}

/** The addresses of a provider that reach it without a relay. */
function directAddresses(info: PeerInfo): string[] {
  return info.addresses.filter((text) => !text.includes('/p2p-circuit'));
}

/** A multiaddr ending in `/p2p/<peerId>` (libp2p dials a peer's address list by it). */
function withPeer(text: string, peerId: string) {
  const ma = multiaddr(text);
  return ma.getComponents().some((c) => c.name === 'p2p') ? ma : ma.encapsulate(`/p2p/${peerId}`);
}

/** Turns whatever a libp2p call threw into a typed error. */
function typed(error: unknown, what: string): RhizomeError {
  if (error instanceof RhizomeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ConnectFailedError(`${what}: ${message}`, { cause: error });
}

/**
 * Rhizome's DHT transport: a libp2p node (tcp + websockets, noise, yamux, identify, ping,
 * kad-dht on `${prefix}/kad/1.0.0`) on which peers find each other by topic, hyperswarm
 * style, and talk over streams of `${prefix}/sync/1.0.0`.
 *
 * - `announce(topic)` puts a provider record for {@link topicToCid}(topic) on the DHT.
 * - `lookup(topic)` returns the topic's providers, never this peer.
 * - `connect(topic)` joins: announces (and refreshes the record), looks up at growing
 *   intervals (500 ms doubling to `lookupIntervalMs`), dials the providers it finds, accepts
 *   their dials after a topic handshake, and yields exactly one Connection per remote peer.
 *
 * The node starts on first use or with {@link DhtTransport.start}; `disconnect()` stops it.
 *
 * @example
 * ```ts
 * const transport = new DhtTransport({ bootstrap: ['/ip4/203.0.113.7/tcp/4001/p2p/12D3Koo…'], keyFile: 'peer.key' });
 * for await (const conn of await transport.connect(deriveTopic(databaseId))) {
 *   await conn.send(new TextEncoder().encode('hello'));
 * }
 * ```
 */
export class DhtTransport implements Transport {
  readonly name = 'dht';
  readonly maxMessageSize: number;
  readonly #options: ResolvedDhtOptions;
  readonly #privateKey: PrivateKey;
  readonly #peerId: string;
  readonly #protocol: string;
  readonly #joins = new Map<string, Join>();
  readonly #backoff = new PeerBackoff({ maxDelayMs: MAX_DIAL_BACKOFF_MS });
  /** Backoff of attempts to move a relayed connection to a direct path (see #maybeDial). */
  readonly #upgradeBackoff = new PeerBackoff({ maxDelayMs: MAX_DIAL_BACKOFF_MS });
  /** Pending dials that are upgrade attempts (abandoned when the relayed connection they would replace ends). */
  readonly #upgrades = new WeakSet<AbortController>();
  readonly #handshaking = new Set<StreamChannel>();
  /** Bound on new libp2p connections opened at once for provider dials (see DialSlots). */
  readonly #slots: DialSlots;
  /** Direct libp2p connections opened while the peer had a relayed one: DCUtR's hole punches. */
  readonly #holepunched = new WeakSet<Libp2pConnection>();
  /** The addresses joined topics were last announced with (see #onAddressesChanged). */
  #announcedAddrs = '';
  #node: RhizomeLibp2p | null = null;
  /** Finds dead libp2p connections, skipping those our sessions hear from (see LinkMonitor). */
  #monitor: LinkMonitor | null = null;
  #starting: Promise<RhizomeLibp2p> | null = null;
  #bootstrapping: Promise<void> | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;

  /**
   * Validates the options (a bad field throws `ERR_INVALID_CONFIG` naming it) and loads or
   * creates the key file, so {@link DhtTransport.peerId} is known at once. Nothing listens
   * until the first `announce`/`lookup`/`connect` or {@link DhtTransport.start}.
   */
  constructor(options: DhtTransportOptions = {}) {
    this.#options = resolveDhtOptions(options);
    this.#slots = new DialSlots(this.#options.dialConcurrency, DIAL_SLOT_HOLD_MS);
    this.#privateKey =
      this.#options.privateKey ??
      (this.#options.keyFile !== undefined ? loadOrCreateKeyFile(this.#options.keyFile) : generatePrivateKey());
    this.#peerId = peerIdFromPrivateKey(this.#privateKey).toString();
    this.#protocol = syncProtocol(this.#options.protocolPrefix);
    this.maxMessageSize = this.#options.maxMessageSize;
  }

  /** This peer's libp2p peer id (base58btc text). */
  get peerId(): string {
    return this.#peerId;
  }

  /** True while the libp2p node runs. */
  get started(): boolean {
    return this.#node !== null && !this.#closed;
  }

  /** The running libp2p node (null until started and after disconnect), for metrics and status displays. */
  get libp2p(): RhizomeLibp2p | null {
    return this.#closed ? null : this.#node;
  }

  /** The addresses the node listens on, each ending in `/p2p/<peer id>`; empty until started. */
  multiaddrs(): string[] {
    return this.#node?.getMultiaddrs().map((ma) => ma.toString()) ?? [];
  }

  /**
   * Checks the node's libp2p connections for life now (the link monitor does this every
   * `linkPingIntervalMs`): pings each that no session of ours heard from since the previous
   * check, aborts those whose ping fails. Resolves with the monitor's totals so far.
   */
  async checkLinks(): Promise<{ pings: number; skipped: number }> {
    const monitor = this.#monitor;
    if (!monitor) return { pings: 0, skipped: 0 };
    await monitor.check();
    return { pings: monitor.pings, skipped: monitor.skipped };
  }

  /**
   * Starts the node: listens, registers the sync protocol, and begins dialing the bootstrap
   * peers (in the background; an unreachable one is reported through `onError`). Rejects
   * with `ERR_CONNECT_FAILED` if a listen address cannot be bound. Idempotent.
   */
  async start(): Promise<void> {
    await this.#ensureStarted();
  }

  /**
   * Puts a provider record for the topic on the DHT. Rejects with `ERR_CONNECT_FAILED` when
   * bootstrap peers are configured but none is reachable, and `ERR_TIMEOUT` when the DHT does
   * not answer within `timeoutMs`. With no bootstrap peers and nobody connected there is no
   * one to tell: it resolves, and joined topics are announced once peers appear.
   */
  async announce(topic: TopicHash): Promise<void> {
    assertTopic(topic);
    const node = await this.#ensureStarted();
    if (!(await this.#requireDhtPeers(node))) return;
    await this.#provide(node, topicToCid(topic), undefined);
  }

  /**
   * The peers with a provider record for the topic, this peer excluded. Records outlive the
   * peers that made them (up to about an hour), so a peer found here may be gone. Same errors as
   * {@link DhtTransport.announce}.
   */
  async lookup(topic: TopicHash): Promise<PeerInfo[]> {
    assertTopic(topic);
    const node = await this.#ensureStarted();
    if (!(await this.#requireDhtPeers(node))) return [];
    return this.#findProviders(node, topicToCid(topic), undefined);
  }

  async connect(topic: TopicHash, options: ConnectOptions = {}): Promise<AsyncIterable<Connection>> {
    assertTopic(topic);
    const { signal } = options;
    if (this.#closed) throw new TransportClosedError('dht transport is disconnected');
    if (signal?.aborted) throw new AbortError();
    const key = topicToHex(topic);
    if (this.#joins.has(key)) throw new TopicAlreadyJoinedError(key);
    let node: RhizomeLibp2p | null = null;
    try {
      node = await this.#ensureStarted();
    } catch (error) {
      // A listen address that cannot be bound (yet: a port still held by a process that is
      // exiting, an interface not up) is reported and retried with backoff, not given up on.
      if (!(error instanceof ConnectFailedError) || this.#closed) throw error;
      this.#report(error);
    }
    if (this.#closed) throw new TransportClosedError('dht transport is disconnected');
    if (signal?.aborted) throw new AbortError();
    if (this.#joins.has(key)) throw new TopicAlreadyJoinedError(key);
    const join: Join = {
      key,
      topic: topic.slice(),
      cid: topicToCid(topic),
      queue: new AsyncQueue<Connection>(),
      conns: new Map(),
      pending: new Map(),
      controller: new AbortController(),
      wake: null,
      delay: INITIAL_LOOKUP_INTERVAL_MS,
      lastAnnounced: 0,
      reannounce: false,
      probed: new WeakSet(),
      redials: new Set(),
      onFirstConnection: null,
    };
    this.#joins.set(key, join);
    signal?.addEventListener('abort', () => void this.#leave(join), { once: true });
    if (node !== null) {
      void this.#probeConnected(node, join);
      void this.#runJoin(node, join);
    }
    else void this.#startThenJoin(join);
    return join.queue;
  }

  /** Retries starting the node (1 s, 2 s, … up to `lookupIntervalMs`), reporting each failure; then runs the join. */
  async #startThenJoin(join: Join): Promise<void> {
    const signal = join.controller.signal;
    let delay = LISTEN_RETRY_INITIAL_MS;
    while (!signal.aborted && !this.#closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
      if (signal.aborted || this.#closed) return;
      try {
        const node = await this.#ensureStarted();
        if (!signal.aborted && !this.#closed) {
          void this.#probeConnected(node, join);
          void this.#runJoin(node, join);
        }
        return;
      } catch (error) {
        if (this.#closed) return;
        this.#report(typed(error, 'starting the DHT node failed'));
        delay = Math.min(delay * 2, this.#options.lookupIntervalMs);
      }
    }
  }

  disconnect(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  // ---- lifecycle -------------------------------------------------------------------------

  #ensureStarted(): Promise<RhizomeLibp2p> {
    if (this.#closed) return Promise.reject(new TransportClosedError('dht transport is disconnected'));
    this.#starting ??= this.#start().catch((error: unknown) => {
      this.#starting = null;
      throw error;
    });
    return this.#starting;
  }

  async #start(): Promise<RhizomeLibp2p> {
    const o = this.#options;
    const node = await createRhizomeNode({
      privateKey: this.#privateKey,
      listen: o.listen,
      protocolPrefix: o.protocolPrefix,
      dhtClientMode: o.dhtClientMode,
      allowPrivateAddresses: o.allowPrivateAddresses,
      dialTimeoutMs: o.handshakeTimeoutMs,
      pingTimeoutMs: o.timeoutMs,
      mdns: o.mdns,
      relayService: o.relayService,
      relayClient: !o.relayService,
      connectionMonitor: false,
      eagerWindowUpdates: o.eagerWindowUpdates,
      startupWalkDelayMs: o.startupWalkDelayMs,
      onLanPeer: (info) => this.#onLanPeer(info),
      ...(o.allowPrivateAddresses ? { inboundConnectionThreshold: PRIVATE_INBOUND_CONNECTION_THRESHOLD } : {}),
    });
    node.addEventListener('connection:open', (event) => this.#onLink(event.detail));
    if (o.probePeers) node.addEventListener('peer:identify', (event) => this.#onIdentify(event.detail));
    node.addEventListener('self:peer:update', () => this.#onAddressesChanged());
    try {
      await node.start();
    } catch (error) {
      await Promise.resolve(node.stop()).catch(() => {});
      throw new ConnectFailedError(`cannot listen on ${o.listen.join(', ')}: ${(error as Error).message}`, { cause: error });
    }
    await node.handle(this.#protocol, (stream, connection) => this.#onInbound(stream, connection), {
      maxInboundStreams: 256,
      maxOutboundStreams: 256,
      // Peers behind NATs meet over circuit relay connections, which libp2p marks limited.
      runOnLimitedConnection: true,
    });
    if (this.#closed) {
      await node.stop();
      throw new TransportClosedError('dht transport is disconnected');
    }
    this.#node = node;
    this.#monitor = new LinkMonitor({
      links: () => node.getConnections(),
      heard: (link) => this.#heardOn(link),
      timeoutMs: o.timeoutMs,
      pingHeardLinks: o.pingSessionLinks,
    });
    this.#monitor.start(o.linkPingIntervalMs);
    void this.#dialBootstrap(node);
    return node;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#joins.values()].map((join) => this.#leave(join)));
    for (const channel of this.#handshaking) channel.abort(new TransportClosedError('dht transport is disconnected'));
    this.#handshaking.clear();
    this.#monitor?.stop();
    const node = this.#node ?? (await this.#starting?.catch(() => null)) ?? null;
    this.#node = null;
    if (node) await node.stop();
  }

  /**
   * Bytes our sessions received over this libp2p connection so far (undefined: it carries none),
   * so the link monitor skips links that are evidently alive.
   */
  #heardOn(link: Libp2pConnection): number | undefined {
    let heard: number | undefined;
    for (const join of this.#joins.values()) {
      for (const conn of join.conns.values()) {
        if (conn.link === link) heard = (heard ?? 0) + conn.bytesReceived;
      }
    }
    return heard;
  }

  // ---- DHT -------------------------------------------------------------------------------

  /** Dials every bootstrap peer (bounded by the handshake timeout); failures go to onError. */
  #dialBootstrap(node: RhizomeLibp2p): Promise<void> {
    const o = this.#options;
    if (o.bootstrap.length === 0) return Promise.resolve();
    this.#bootstrapping ??= (async () => {
      const results = await Promise.allSettled(
        o.bootstrap.map((addr) => node.dial(multiaddr(addr), { signal: AbortSignal.timeout(o.handshakeTimeoutMs) })),
      );
      results.forEach((result, i) => {
        if (result.status === 'fulfilled' || this.#closed) return;
        const reason = result.reason as Error;
        const addr = o.bootstrap[i]!;
        this.#report(
          reason?.name === 'TimeoutError' || reason?.name === 'AbortError'
            ? new TimeoutError(`bootstrap peer ${addr} did not complete a connection within ${o.handshakeTimeoutMs} ms`)
            : new ConnectFailedError(`bootstrap peer ${addr} unreachable: ${reason?.message ?? String(reason)}`, { cause: reason }),
        );
      });
    })().finally(() => {
      this.#bootstrapping = null;
    });
    return this.#bootstrapping;
  }

  /** True if some peer is connected (so the DHT has someone to ask), re-dialing bootstrap peers if needed. */
  async #haveDhtPeers(node: RhizomeLibp2p): Promise<boolean> {
    if (node.getConnections().length > 0) return true;
    if (this.#options.bootstrap.length === 0) return false;
    await this.#dialBootstrap(node);
    return node.getConnections().length > 0;
  }

  /** Like #haveDhtPeers, but with bootstrap peers configured and none reachable it throws. */
  async #requireDhtPeers(node: RhizomeLibp2p): Promise<boolean> {
    if (await this.#haveDhtPeers(node)) return true;
    if (this.#options.bootstrap.length === 0) return false;
    throw new ConnectFailedError(`no DHT peer reachable (bootstrap: ${this.#options.bootstrap.join(', ')})`);
  }

  /** A signal that aborts after timeoutMs or with `outer`; `timedOut()` tells which. */
  #deadline(outer: AbortSignal | undefined): { signal: AbortSignal; timedOut: () => boolean } {
    const timeout = AbortSignal.timeout(this.#options.timeoutMs);
    const signal = outer ? AbortSignal.any([timeout, outer]) : timeout;
    return { signal, timedOut: () => timeout.aborted && !(outer?.aborted ?? false) };
  }

  /** Provides the CID; resolves with how many DHT peers stored the record. */
  async #provide(node: RhizomeLibp2p, cid: CID, outer: AbortSignal | undefined): Promise<number> {
    const { signal, timedOut } = this.#deadline(outer);
    let reached = 0;
    try {
      for await (const event of node.services.dht.provide(cid, { signal, ...START_WITHOUT_SELF_QUERY })) {
        if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') reached++;
      }
    } catch (error) {
      if (outer?.aborted) throw new AbortError();
      if (timedOut()) {
        if (reached > 0) return reached;
        throw new TimeoutError(`announcing on the DHT took over ${this.#options.timeoutMs} ms`);
      }
      throw typed(error, 'announcing on the DHT failed');
    }
    return reached;
  }

  /**
   * The CID's providers other than this peer; on timeout, what was found so far (if anything).
   * `onFound` sees each provider as soon as the query yields it.
   */
  async #findProviders(
    node: RhizomeLibp2p,
    cid: CID,
    outer: AbortSignal | undefined,
    onFound?: (info: PeerInfo) => void,
  ): Promise<PeerInfo[]> {
    const { signal, timedOut } = this.#deadline(outer);
    const found = new Map<string, PeerInfo>();
    try {
      for await (const event of node.services.dht.findProviders(cid, { signal, ...START_WITHOUT_SELF_QUERY })) {
        if (event.name !== 'PROVIDER') continue;
        for (const provider of event.providers) {
          const id = provider.id.toString();
          if (id === this.#peerId) continue;
          const info = found.get(id) ?? { peerId: id, addresses: [] };
          for (const ma of provider.multiaddrs) {
            const text = ma.toString();
            if (!info.addresses.includes(text)) info.addresses.push(text);
          }
          found.set(id, info);
          onFound?.(info);
        }
      }
    } catch (error) {
      if (outer?.aborted) throw new AbortError();
      if (!timedOut()) throw typed(error, 'looking up the DHT failed');
      if (found.size === 0) throw new TimeoutError(`looking up the DHT took over ${this.#options.timeoutMs} ms`);
    }
    return [...found.values()];
  }

  // ---- topics ----------------------------------------------------------------------------

  /** The topic loop: announce (and refresh), look up, dial; repeat at growing intervals. */
  async #runJoin(node: RhizomeLibp2p, join: Join): Promise<void> {
    const signal = join.controller.signal;
    while (!signal.aborted && !this.#closed) {
      try {
        if (await this.#haveDhtPeers(node)) {
          const due = join.reannounce || join.lastAnnounced === 0 || Date.now() - join.lastAnnounced >= this.#options.reannounceIntervalMs;
          // Cleared as the announce starts: an address change while it runs asks for another.
          if (due) join.reannounce = false;
          // Look up and dial each provider as soon as the query yields it: a late joiner meets
          // the others within one query's time. The announce runs beside it; the topic's first
          // one waits a little (see #firstAnnounceMayStart).
          const lookup = this.#findProviders(node, join.cid, signal, (info) => this.#maybeDial(node, join, info));
          const results = await Promise.allSettled([
            due
              ? (join.lastAnnounced === 0 ? this.#firstAnnounceMayStart(join, lookup) : Promise.resolve())
                  .then(() => (signal.aborted ? 0 : this.#provide(node, join.cid, signal)))
                  .then((reached) => {
                    if (reached > 0) join.lastAnnounced = Date.now();
                  })
              : null,
            lookup,
          ]);
          for (const result of results) {
            if (result.status === 'rejected' && !signal.aborted && !this.#closed) {
              this.#report(typed(result.reason, 'topic maintenance failed'));
            }
          }
        }
      } catch (error) {
        if (!signal.aborted && !this.#closed) this.#report(typed(error, 'topic maintenance failed'));
      }
      if (signal.aborted || this.#closed) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, join.delay);
        function done(): void {
          clearTimeout(timer);
          join.wake = null;
          resolve();
        }
        join.wake = done;
      });
      join.delay = Math.min(join.delay * 2, this.#options.lookupIntervalMs);
    }
  }

  /**
   * Resolves when a topic's first announce may start: at its first Connection, when `lookup`
   * (its first lookup) ends, or after `announceDeferMs`, whichever comes first. kad-dht's provide
   * walk links to the ~20 DHT nodes closest to the topic (noise, identify, a query each): started
   * together with a joiner's first lookup it takes the CPU the first Connection needs
   * (BENCHMARKS.md § DHT join, session 7). Nobody waits for our record meanwhile: the replicas a
   * joiner finds are dialed by the joiner, and a lone first replica's lookup ends at once (nothing
   * to find), so it announces at once. The bound keeps a lookup that hangs (a DHT under load)
   * from holding the record back: waiting for the whole lookup, which can take up to `timeoutMs`,
   * left replicas that started together unfindable for that long.
   */
  #firstAnnounceMayStart(join: Join, lookup: Promise<unknown>): Promise<void> {
    const ms = this.#options.announceDeferMs;
    if (ms <= 0 || join.conns.size > 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const signal = join.controller.signal;
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (join.onFirstConnection === done) join.onFirstConnection = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      join.onFirstConnection = done;
      signal.addEventListener('abort', done, { once: true });
      lookup.then(done, done);
    });
  }

  #leave(join: Join): Promise<void> {
    if (this.#joins.get(join.key) !== join) return Promise.resolve();
    this.#joins.delete(join.key);
    join.controller.abort();
    join.wake?.();
    for (const timer of join.redials) clearTimeout(timer);
    join.redials.clear();
    for (const controller of join.pending.values()) controller.abort();
    join.pending.clear();
    const closing = [...join.conns.values()].map((conn) => conn.close());
    join.conns.clear();
    join.queue.end();
    const node = this.#node;
    if (node) void node.services.dht.cancelReprovide(join.cid).catch(() => {});
    return Promise.all(closing).then(() => {});
  }

  /**
   * Dials a provider unless a connection to it is up. A relayed (`circuit`) connection is replaced
   * by a direct one when one can be had: the node already holds a direct libp2p connection to the
   * peer (a DHT query or the peer's own dial opened it, or DCUtR punched it), or the peer's record
   * lists direct addresses; such upgrade dials go only to direct addresses and back off on their
   * own, silently (behind NATs they are expected to fail), without touching the peer's dial backoff.
   */
  #maybeDial(node: RhizomeLibp2p, join: Join, info: PeerInfo, probe = false): void {
    const id = info.peerId;
    if (id === this.#peerId || join.pending.has(id)) return;
    const existing = join.conns.get(id);
    if (probe) {
      // Not held back by the dial backoff: the probe goes over a link that is open right now.
      if (existing) return;
      const controller = new AbortController();
      join.pending.set(id, controller);
      void this.#dial(node, join, info, controller, 'probe');
      return;
    }
    if (existing) {
      if (existing.path !== 'circuit') return;
      const now = Date.now();
      if (directLink(node, id) === null && directAddresses(info).length === 0) return;
      if (this.#upgradeBackoff.blocked(id, now)) return;
      const controller = new AbortController();
      join.pending.set(id, controller);
      this.#upgrades.add(controller);
      void this.#dial(node, join, info, controller, 'upgrade');
      return;
    }
    if (this.#backoff.blocked(id, Date.now())) return;
    const controller = new AbortController();
    join.pending.set(id, controller);
    void this.#dial(node, join, info, controller, 'dial');
  }

  /** Redials a lost peer after a random pause of up to REDIAL_JITTER_MS, unless it is back by then. */
  #redialLater(join: Join, peerId: string): void {
    const timer = setTimeout(() => {
      join.redials.delete(timer);
      const node = this.#node;
      if (!node || this.#closed || join.controller.signal.aborted || join.conns.has(peerId)) return;
      this.#maybeDial(node, join, { peerId, addresses: [] });
    }, Math.random() * REDIAL_JITTER_MS);
    join.redials.add(timer);
  }

  #failed(peerId: string): void {
    this.#backoff.fail(peerId, Date.now());
  }

  /** Dials a peer (an upgrade: over a direct path only) and runs the dialer's half of the handshake. Never rejects. */
  async #dial(node: RhizomeLibp2p, join: Join, info: PeerInfo, controller: AbortController, kind: DialKind): Promise<void> {
    const o = this.#options;
    const upgrade = kind === 'upgrade';
    const id = info.peerId;
    const timeout = AbortSignal.timeout(o.handshakeTimeoutMs);
    const signal = AbortSignal.any([timeout, controller.signal, join.controller.signal]);
    let channel: StreamChannel | null = null;
    const mine = (): boolean => join.pending.get(id) === controller && !signal.aborted && !this.#closed;
    try {
      const remote = peerIdFromString(id);
      const addrs = info.addresses.flatMap((text) => {
        try {
          return [multiaddr(text)];
        } catch {
          return [];
        }
      });
      if (addrs.length > 0) await node.peerStore.merge(remote, { multiaddrs: addrs });
      // A provider with no libp2p link yet waits for one of a few slots (see DialSlots).
      const release = kind === 'dial' ? await this.#slots.acquire(() => hasLink(node, remote), signal) : null;
      if (!mine()) {
        release?.();
        throw new AbortError();
      }
      let link: Libp2pConnection;
      try {
        // libp2p prefers a direct connection it already has to a relayed one, and dials relayed
        // (`/p2p-circuit`) addresses only when no direct address answers. An upgrade uses a direct
        // connection the node holds, or dials the direct addresses only.
        link = upgrade
          ? (directLink(node, id) ?? (await node.dial(directAddresses(info).map((text) => withPeer(text, id)), { signal })))
          : await node.dial(remote, { signal });
      } finally {
        release?.();
      }
      if (upgrade && linkPath(link, false) === 'circuit') throw new AbortError();
      const stream = await link.newStream(this.#protocol, { signal, runOnLimitedConnection: true });
      channel = new StreamChannel(stream, o.maxMessageSize);
      channel.link = link;
      if (!mine()) throw new AbortError();
      channel.send(encodeHello(join.topic));
      const [status] = await channel.readExact(1, o.handshakeTimeoutMs, `handshake status from ${id}`, signal);
      // Synchronous from here: the tie-break state must not change under us.
      if (!mine()) throw new AbortError();
      join.pending.delete(id);
      if (status !== HandshakeStatus.OK) {
        void channel.close(o.handshakeTimeoutMs);
        if (status === HandshakeStatus.DUPLICATE) return; // the pair's other connection won
        if (kind === 'probe') return; // the peer has not joined the topic: expected, nothing to report
        if (upgrade) {
          this.#upgradeBackoff.fail(id, Date.now());
          return;
        }
        this.#failed(id);
        if (status === HandshakeStatus.UNKNOWN_TOPIC || status === HandshakeStatus.GOING_AWAY) return; // a stale record
        this.#report(new ProtocolError(`peer ${id} refused the handshake with status ${statusName(status!)}`));
        return;
      }
      this.#backoff.clear(id);
      if (upgrade) this.#upgradeBackoff.clear(id);
      this.#accept(join, channel, id, 'outbound');
    } catch (error) {
      const ours = join.pending.get(id) === controller;
      if (ours) join.pending.delete(id);
      const abandoned = controller.signal.aborted || join.controller.signal.aborted || this.#closed;
      channel?.abort(error instanceof Error ? error : new AbortError());
      if (abandoned || kind === 'probe') return; // a probe is opportunistic: the DHT lookup still runs
      if (upgrade) {
        // The relayed connection keeps serving; try the direct path again later.
        this.#upgradeBackoff.fail(id, Date.now());
        return;
      }
      this.#failed(id);
      if (timeout.aborted) this.#report(new TimeoutError(`dialing peer ${id} and its handshake took over ${o.handshakeTimeoutMs} ms`));
      else this.#report(typed(error, `dialing peer ${id} failed`));
    }
  }

  /** The listener's half of the handshake, with the tie-break. Never rejects. */
  async #onInbound(stream: Stream, connection: Libp2pConnection): Promise<void> {
    const o = this.#options;
    const remote = connection.remotePeer.toString();
    const channel = new StreamChannel(stream, o.maxMessageSize);
    this.#handshaking.add(channel);
    let hello: Uint8Array;
    try {
      hello = await channel.readExact(HELLO_LENGTH, o.handshakeTimeoutMs, `HELLO from ${remote}`);
    } catch (error) {
      this.#handshaking.delete(channel);
      const err = error instanceof RhizomeError ? error : new ProtocolError(String(error));
      channel.abort(err);
      // A dialer that gives up before its HELLO (it lost a tie-break, or its join ended) sent
      // nothing: not worth an error. Silence until the timeout, or partial bytes, are.
      const abandoned = channel.bytesReceived === 0 && !(err instanceof TimeoutError);
      if (!this.#closed && !abandoned) this.#report(err);
      return;
    }
    this.#handshaking.delete(channel);
    // Synchronous from here to the status byte.
    const { version, topic } = decodeHello(hello);
    if (version !== WIRE_VERSION) {
      this.#refuse(channel, HandshakeStatus.BAD_VERSION, new ProtocolError(`peer ${remote} sent HELLO version ${version}`));
      return;
    }
    const join = this.#joins.get(topicToHex(topic));
    if (!join || this.#closed) {
      // Not an error: LAN peers found by mDNS ask for every topic they joined, and provider
      // records outlive the joins that made them.
      this.#refuse(channel, this.#closed ? HandshakeStatus.GOING_AWAY : HandshakeStatus.UNKNOWN_TOPIC, null);
      return;
    }
    // Tie-break: of two connections between a pair, the one dialed by the lower peer id wins.
    const remoteWins = remote < this.#peerId;
    const existing = join.conns.get(remote);
    const pending = join.pending.get(remote);
    channel.link = connection;
    const upgrade = existing !== undefined && existing.path === 'circuit' && linkPath(connection, false) !== 'circuit';
    if (existing && !existing.closed) {
      // The remote dials only when it has no connection (it lost the old one, if it dialed it,
      // or if its dials win anyway) or when it found a better path (direct over relayed): the
      // new one replaces it.
      if (existing.direction === 'inbound' || remoteWins || upgrade) {
        join.conns.delete(remote);
        void existing.close();
      } else {
        this.#refuse(channel, HandshakeStatus.DUPLICATE, null);
        return;
      }
    } else if (pending) {
      if (!remoteWins) {
        this.#refuse(channel, HandshakeStatus.DUPLICATE, null);
        return;
      }
      join.pending.delete(remote);
      pending.abort();
    }
    try {
      channel.send(Uint8Array.of(HandshakeStatus.OK));
    } catch (error) {
      channel.abort(error instanceof Error ? error : new ProtocolError(String(error)));
      return;
    }
    this.#accept(join, channel, remote, 'inbound');
  }

  #refuse(channel: StreamChannel, status: HandshakeStatusCode, error: RhizomeError | null): void {
    try {
      channel.send(Uint8Array.of(status));
      void channel.close(this.#options.handshakeTimeoutMs);
    } catch {
      channel.abort(error ?? new ProtocolError(`handshake refused: ${statusName(status)}`));
    }
    if (error) this.#report(error);
  }

  #accept(join: Join, channel: StreamChannel, peerId: string, direction: 'inbound' | 'outbound'): void {
    const o = this.#options;
    const link = channel.link;
    const conn = new DhtConnection({
      peerId,
      topic: join.topic.slice(),
      channel,
      ...(link ? { link, holepunched: this.#holepunched.has(link) } : {}),
      direction,
      maxMessageSize: o.maxMessageSize,
      stallTimeoutMs: o.timeoutMs,
      closeTimeoutMs: o.handshakeTimeoutMs,
      onError: (error) => this.#report(error),
    });
    const replaced = join.conns.get(peerId);
    join.conns.set(peerId, conn);
    join.onFirstConnection?.();
    // A better path replaced a relayed connection: the old one goes (the sync layer reconciles
    // whatever was in flight on it by state vectors on the new one).
    if (replaced && replaced !== conn) void replaced.close();
    conn.onClose(() => {
      if (join.conns.get(peerId) === conn) join.conns.delete(peerId);
      // An upgrade of this connection in flight is moot now: abandon it, so that the re-dial
      // below is not held back by it.
      const pending = join.pending.get(peerId);
      if (pending && this.#upgrades.has(pending) && !join.conns.has(peerId)) {
        join.pending.delete(peerId);
        pending.abort();
      }
      // Lost rather than closed here (the peer left, its process died, the link broke): dial it
      // again now, not at the next scheduled lookup. A peer that left answers UNKNOWN_TOPIC or is
      // unreachable, and backs off. With no other connection left on the topic (our own network
      // may have gone), the topic loop looks up again from its shortest interval; with others
      // still up, only this peer is redialed at the addresses we have, after a random pause: when a
      // replica leaves a topic of N, its N − 1 peers would otherwise all hit the DHT at once and
      // again at 1, 2, 4 … s (BENCHMARKS.md § DHT join, session 6).
      if (!conn.closedLocally && !join.controller.signal.aborted && !this.#closed) {
        this.#backoff.clear(peerId);
        if (join.conns.size === 0) {
          join.delay = INITIAL_LOOKUP_INTERVAL_MS;
          join.wake?.();
        } else {
          this.#redialLater(join, peerId);
        }
      }
    });
    if (!join.queue.push(conn)) {
      void conn.close();
      return;
    }
    // Relayed while a direct libp2p connection to the peer is already open (it opened first, so
    // #onLink did not see a relayed session to replace): move to it now.
    const node = this.#node;
    if (conn.path === 'circuit' && node && directLink(node, peerId) !== null) {
      queueMicrotask(() => {
        if (join.conns.get(peerId) === conn && !join.controller.signal.aborted && !this.#closed) this.#maybeDial(node, join, { peerId, addresses: [] });
      });
    }
  }

  /**
   * A libp2p connection opened. A direct one to a peer that so far had only a relayed one was
   * opened by DCUtR (a hole punch) or by a direct dial that now answers: joined topics that
   * reach the peer over the relay move to it.
   */
  #onLink(link: Libp2pConnection): void {
    // A provider dial waiting for a slot goes at once if this is a link to its peer.
    this.#slots.wake();
    if (this.#closed || linkPath(link, false) === 'circuit') return;
    const node = this.#node;
    const id = link.remotePeer.toString();
    const others = node?.getConnections(link.remotePeer) ?? [];
    if (others.some((other) => other !== link && linkPath(other, false) === 'circuit')) this.#holepunched.add(link);
    if (!node) return;
    for (const join of this.#joins.values()) {
      if (join.conns.get(id)?.path === 'circuit') this.#maybeDial(node, join, { peerId: id, addresses: [] });
    }
  }

  /**
   * Our relayed addresses changed (a relay reservation added or lost a `/p2p-circuit` address):
   * provider records carry the addresses of when they were made, so every joined topic is
   * announced again now, and a peer behind a NAT becomes dialable through the relay.
   */
  #onAddressesChanged(): void {
    const node = this.#node;
    if (!node || this.#closed) return;
    // Relayed addresses are what a peer behind a NAT needs in its records; other address churn
    // (observed addresses coming and going) waits for the regular re-announce.
    const addrs = node
      .getMultiaddrs()
      .map((ma) => ma.toString())
      .filter((text) => text.includes('/p2p-circuit'))
      .sort()
      .join(' ');
    if (addrs === this.#announcedAddrs) return;
    this.#announcedAddrs = addrs;
    for (const join of this.#joins.values()) {
      join.reannounce = true;
      join.delay = INITIAL_LOOKUP_INTERVAL_MS;
      join.wake?.();
    }
  }

  /**
   * identify finished on a libp2p connection. A peer that speaks Rhizome's sync protocol may be in
   * one of our topics (in a small deployment's own DHT many are: a DHT query, ours or the peer's,
   * often links the topic's replicas before our lookup is answered): try the handshake on each joined
   * topic now, instead of waiting for a lookup to list the peer as a provider (which needs the
   * DHT's routing table, then a query round trip to the bootstrap node). Both sides of a new link
   * probe; the usual tie-break keeps one connection per pair.
   */
  #onIdentify(result: IdentifyResult): void {
    const node = this.#node;
    if (!node || this.#closed || !result.protocols.includes(this.#protocol)) return;
    for (const join of this.#joins.values()) this.#probe(node, join, result.peerId.toString(), result.connection);
  }

  /** A topic was joined: probe the peers already connected that speak the sync protocol (see #onIdentify). */
  async #probeConnected(node: RhizomeLibp2p, join: Join): Promise<void> {
    if (!this.#options.probePeers) return;
    for (const link of node.getConnections()) {
      if (link.status !== 'open' || join.controller.signal.aborted || this.#closed) continue;
      try {
        const peer = await node.peerStore.get(link.remotePeer);
        if (peer.protocols.includes(this.#protocol)) this.#probe(node, join, link.remotePeer.toString(), link);
      } catch {
        // Not identified yet: #onIdentify probes it when identify finishes.
      }
    }
  }

  /** One probe of one topic over one libp2p connection at most. */
  #probe(node: RhizomeLibp2p, join: Join, peerId: string, link: Libp2pConnection): void {
    if (peerId === this.#peerId || join.controller.signal.aborted || join.probed.has(link)) return;
    join.probed.add(link);
    this.#maybeDial(node, join, { peerId, addresses: [] }, true);
  }

  /** A peer found on the LAN by mDNS: dial it on every joined topic (it answers for the ones it joined). */
  #onLanPeer(info: PeerInfo): void {
    const node = this.#node;
    if (!node || this.#closed || info.peerId === this.#peerId) return;
    for (const join of this.#joins.values()) this.#maybeDial(node, join, info);
  }

  #report(error: RhizomeError): void {
    try {
      this.#options.onError(error);
    } catch {
      // A throwing error handler must not take the transport down.
    }
  }
}

/**
 * What `createTransport({ mode: 'dht', ... })` in @rhizome/core calls (it imports this package
 * lazily): the DHT fields of `TransportConfig` become {@link DhtTransportOptions}.
 */
export function createDhtTransport(options: DhtTransportOptions = {}): DhtTransport {
  return new DhtTransport(options);
}
