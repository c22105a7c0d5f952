import { timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  CloseCode,
  type CloseCodeName,
  FrameType,
  PROTOCOL_VERSION,
  RelayErrorCode,
  encodeError,
  encodeJoined,
  encodePeerJoined,
  encodePeers,
  encodeWelcome,
  encodeDataFrame,
  encodeLimits,
  isWindowFrame,
  LIMITS_FLAG_WINDOW,
  isDataFrame,
  isHelloFrame,
  helloSessionKey,
  isLookupFrame,
  isPairFrame,
  isPingFrame,
  isTopicFrame,
  readU32,
  MailboxFrameType,
  isMailboxPutFrame,
  isMailboxReadFrame,
  isMailboxWriteFrame,
} from '@rhizome/transport-relay/protocol';
import type { MailboxService, MailboxServiceStats } from './mailbox/service.js';
import { isDirectSocket, type DirectEvents } from './direct-socket.js';
import { FANOUT_BUCKETS, FRAME_BYTES_BUCKETS, FixedHistogram, type HistogramSnapshot } from './histogram.js';
import { initialRateState, spend, type RateState } from './limits.js';
import { resolveCoreOptions, type RelayCoreOptions, type ResolvedCoreOptions } from './options.js';
import type { LookupEntry, RelayRouter, RoutedPeer, RoutedTopic, RouterHost } from './router.js';
import { Topic } from './topic.js';

/**
 * The socket the core drives: a subset of `ws`'s `WebSocket` (any object with these methods
 * and events works, e.g. a `ws` socket from `handleUpgrade`, or an adapter in a test).
 * Messages arrive as `Buffer`s (`binaryType` `'nodebuffer'`); the core may rewrite a received
 * buffer's header in place and send that same buffer on, so it must own it. A socket that is
 * a Node `EventEmitter` gets the core's shared listeners, which find the connection by `this`
 * (as `emit` passes it); any other object gets listeners of its own.
 */
export interface RelaySocket {
  /** Bytes queued for sending and not yet handed to the kernel. */
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(): void;
  on(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
  on(event: 'pong', listener: () => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** What the host knows about a connection when it hands it to the core. */
export interface ConnectionInfo {
  /** Remote address, used for the per-address connection limit. */
  ip: string;
}

/** Why a connection was cut or a frame dropped: the `reason` label of the drops metric. */
export type DropReason =
  | 'frame_too_large'
  | 'malformed_frame'
  | 'unknown_frame_type'
  | 'hello_required'
  | 'version_mismatch'
  | 'hello_timeout'
  | 'upgrade_timeout'
  | 'unauthorized'
  | 'too_many_topics'
  | 'too_many_connections'
  | 'too_many_connections_per_ip'
  | 'frame_rate_exceeded'
  | 'byte_rate_exceeded'
  | 'slow_consumer'
  | 'heartbeat_timeout'
  | 'replaced'
  | 'peer_id_taken'
  | 'unsupported_data'
  | 'protocol_error'
  | 'no_route'
  | 'not_joined'
  | 'topic_full';

/** Counters and gauges of a relay, as `stats()` and `/metrics` report them. */
export interface RelayStats {
  /** Open connections (including ones that have not said HELLO yet). */
  connections: number;
  /** Topics with at least one member or announcer. */
  topics: number;
  /** Connections accepted since start. */
  connectionsTotal: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Connections cut and frames dropped, by reason. */
  drops: Partial<Record<DropReason, number>>;
  /** Socket and protocol errors seen (bad WebSocket framing, HTTP parse errors, ...). */
  errors: number;
  /** Mailbox counters, when the relay runs with a mailbox. */
  mailbox?: MailboxServiceStats;
  /** Sizes of the frames received from clients. */
  frameBytes: HistogramSnapshot;
  /** Recipients per BROADCAST (the topic's fan-out). */
  fanout: HistogramSnapshot;
}

/** {@link Peer} flags, one bit each. */
const WELCOMED = 1;
const ALIVE = 2;
const DONE = 4;
const COUNTED = 8;

/**
 * @internal One client connection. Kept small: a relay holds thousands of idle ones (on Node's
 * 64-bit builds every field is an 8-byte slot, a double outside the small-integer range another
 * 16-byte box). Byte strings (peer id, session key) are kept as latin1 strings, not `Buffer`s (a
 * `Buffer` view is ~100 B of heap on top of its bytes), the topics of a connection as a short
 * array, its four booleans as bits of one number, and frames held during a router's HELLO check
 * in the core (rare: scale-out only).
 */
class Peer implements RateState {
  readonly session: number;
  readonly socket: RelaySocket;
  readonly ip: string;
  frameTokens: number;
  byteTokens: number;
  refilledAt: number;
  /** The HELLO's peer id as latin1 text (one char per byte); '' before the HELLO. */
  peerKey = '';
  /** The session key of its HELLO as latin1 text ('' none); a newer HELLO must present it to take over the peer id. */
  sessionKey = '';
  /**
   * {@link WELCOMED}, {@link ALIVE}, {@link DONE}, {@link COUNTED}. (A private field, but no
   * private methods: those put a brand on every instance, one more slot per connection.)
   */
  #flags = ALIVE;
  /**
   * When the last ping went out; before the first, when the connection started (which is also
   * what the HELLO deadline counts from: a connection is not pinged before its WELCOME).
   */
  pingedAt: number;
  /**
   * Joined or announced topics (what the topic limit counts; membership is on the topic): null
   * for none, the topic itself for one (a replica's usual case: no array per connection), an
   * array for more.
   */
  topics: Topic<Peer> | Topic<Peer>[] | null = null;

  constructor(session: number, socket: RelaySocket, ip: string, now: number, o: ResolvedCoreOptions) {
    this.session = session;
    this.socket = socket;
    this.ip = ip;
    this.pingedAt = now;
    const rate = initialRateState(o, now);
    this.frameTokens = rate.frameTokens;
    this.byteTokens = rate.byteTokens;
    this.refilledAt = rate.refilledAt;
  }

  /** WELCOME sent: the HELLO was accepted (by the router too). */
  get welcomed(): boolean {
    return (this.#flags & WELCOMED) !== 0;
  }

  set welcomed(on: boolean) {
    this.#flags = on ? this.#flags | WELCOMED : this.#flags & ~WELCOMED;
  }

  /** Answered the last ping (or none was sent yet). */
  get alive(): boolean {
    return (this.#flags & ALIVE) !== 0;
  }

  set alive(on: boolean) {
    this.#flags = on ? this.#flags | ALIVE : this.#flags & ~ALIVE;
  }

  /** Cut or closed: no more routing to or from it. */
  get done(): boolean {
    return (this.#flags & DONE) !== 0;
  }

  set done(on: boolean) {
    this.#flags = on ? this.#flags | DONE : this.#flags & ~DONE;
  }

  /** Counted in the connection totals (released once on socket close). */
  get counted(): boolean {
    return (this.#flags & COUNTED) !== 0;
  }

  set counted(on: boolean) {
    this.#flags = on ? this.#flags | COUNTED : this.#flags & ~COUNTED;
  }

  /** The HELLO's peer id, once welcomed (null before); made on demand (PEER_JOINED, LOOKUP, the router). */
  get peerId(): Buffer | null {
    return this.welcomed ? Buffer.from(this.peerKey, 'latin1') : null;
  }

  /** Lists a topic on this connection (callers check it is not listed yet). */
  addTopic(topic: Topic<Peer>): void {
    const topics = this.topics;
    if (topics === null) this.topics = topic;
    else if (Array.isArray(topics)) topics.push(topic);
    else this.topics = [topics, topic];
  }

  removeTopic(topic: Topic<Peer>): void {
    const topics = this.topics;
    if (topics === topic) {
      this.topics = null;
      return;
    }
    if (!Array.isArray(topics)) return;
    const i = topics.indexOf(topic);
    if (i < 0) return;
    topics.splice(i, 1);
    if (topics.length === 1) this.topics = topics[0]!;
  }

  /** A copy of the topics, to iterate while leaving them. */
  topicList(): Array<Topic<Peer>> {
    const topics = this.topics;
    return topics === null ? [] : Array.isArray(topics) ? [...topics] : [topics];
  }

  get topicCount(): number {
    const topics = this.topics;
    return topics === null ? 0 : Array.isArray(topics) ? topics.length : 1;
  }
}

/** @internal The socket listeners one core shares among its connections; `this` is the socket. */
interface SharedListeners {
  message(this: object, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void;
  pong(this: object): void;
  close(this: object): void;
  error(this: object, error: Error & { code?: string }): void;
}

/** Frames a connection may send before its HELLO is confirmed by the router; more: 4002. */
const MAX_HELD_FRAMES = 64;

/** Relay→client frames up to this size are copied into Node's buffer pool before sending (see `#send`). */
const SMALL_FRAME_BYTES = 256;

/** Resolution of the rate limiters' clock, in ms. */
const CLOCK_TICK_MS = 20;

/** A handler-table entry: a type guard for the frame's layout, and what to do with it. */
interface FrameHandler {
  /** True when the frame is well formed for this type (lengths checked). */
  guard(frame: Buffer): boolean;
  handle(core: RelayCore, peer: Peer, frame: Buffer): void;
}

const CLOSE_REASON_TEXT: Partial<Record<CloseCodeName, string>> = {
  FRAME_TOO_LARGE: 'frame too large',
  MALFORMED_FRAME: 'malformed frame',
  UNKNOWN_FRAME_TYPE: 'unknown frame type',
  HELLO_REQUIRED: 'HELLO must be the first frame, once',
  VERSION_MISMATCH: `protocol version ${PROTOCOL_VERSION} required`,
  HELLO_TIMEOUT: 'no HELLO in time',
  UNAUTHORIZED: 'bad or missing token',
  TOO_MANY_TOPICS: 'too many topics on this connection',
  TOO_MANY_CONNECTIONS: 'relay is full',
  TOO_MANY_CONNECTIONS_PER_IP: 'too many connections from this address',
  FRAME_RATE_EXCEEDED: 'frame rate limit exceeded',
  BYTE_RATE_EXCEEDED: 'byte rate limit exceeded',
  SLOW_CONSUMER: 'not reading: send buffer full',
  HEARTBEAT_TIMEOUT: 'no pong',
  REPLACED: 'replaced by a newer connection with the same peer id',
  PEER_ID_TAKEN: 'peer id in use by another client',
  UNSUPPORTED_DATA: 'binary frames only',
  GOING_AWAY: 'relay shutting down',
};

const DROP_OF: Partial<Record<CloseCodeName, DropReason>> = {
  FRAME_TOO_LARGE: 'frame_too_large',
  MALFORMED_FRAME: 'malformed_frame',
  UNKNOWN_FRAME_TYPE: 'unknown_frame_type',
  HELLO_REQUIRED: 'hello_required',
  VERSION_MISMATCH: 'version_mismatch',
  HELLO_TIMEOUT: 'hello_timeout',
  UNAUTHORIZED: 'unauthorized',
  TOO_MANY_TOPICS: 'too_many_topics',
  TOO_MANY_CONNECTIONS: 'too_many_connections',
  TOO_MANY_CONNECTIONS_PER_IP: 'too_many_connections_per_ip',
  FRAME_RATE_EXCEEDED: 'frame_rate_exceeded',
  BYTE_RATE_EXCEEDED: 'byte_rate_exceeded',
  SLOW_CONSUMER: 'slow_consumer',
  HEARTBEAT_TIMEOUT: 'heartbeat_timeout',
  REPLACED: 'replaced',
  PEER_ID_TAKEN: 'peer_id_taken',
  UNSUPPORTED_DATA: 'unsupported_data',
  PROTOCOL_ERROR: 'protocol_error',
};

/** The handler table, indexed by frame type byte. Only client→relay types have entries. */
const HANDLERS: Array<FrameHandler | undefined> = new Array<FrameHandler | undefined>(256).fill(undefined);
HANDLERS[FrameType.HELLO] = { guard: isHelloFrame, handle: (core, peer, f) => core.onHello(peer, f) };
HANDLERS[FrameType.JOIN] = { guard: isTopicFrame, handle: (core, peer, f) => core.onJoin(peer, f, true) };
HANDLERS[FrameType.ANNOUNCE] = { guard: isTopicFrame, handle: (core, peer, f) => core.onJoin(peer, f, false) };
HANDLERS[FrameType.LEAVE] = { guard: isTopicFrame, handle: (core, peer, f) => core.onLeave(peer, f) };
HANDLERS[FrameType.LOOKUP] = { guard: isLookupFrame, handle: (core, peer, f) => core.onLookup(peer, f) };
HANDLERS[FrameType.SEND] = { guard: isDataFrame, handle: (core, peer, f) => core.onUnicast(peer, f, FrameType.DELIVER) };
HANDLERS[FrameType.CLOSE_PEER] = { guard: isPairFrame, handle: (core, peer, f) => core.onUnicast(peer, f, FrameType.PEER_CLOSED) };
HANDLERS[FrameType.WINDOW] = { guard: isWindowFrame, handle: (core, peer, f) => core.onUnicast(peer, f, FrameType.WINDOW_UPDATE) };
HANDLERS[FrameType.PING] = { guard: isPingFrame, handle: (core, peer, f) => core.onPing(peer, f) };
HANDLERS[FrameType.BROADCAST] = { guard: isDataFrame, handle: (core, peer, f) => core.onBroadcast(peer, f) };
HANDLERS[MailboxFrameType.MB_READ] = { guard: isMailboxReadFrame, handle: (core, peer, f) => core.onMailbox(peer, f) };
HANDLERS[MailboxFrameType.MB_PUT] = { guard: isMailboxPutFrame, handle: (core, peer, f) => core.onMailbox(peer, f) };
HANDLERS[MailboxFrameType.MB_WRITE] = { guard: isMailboxWriteFrame, handle: (core, peer, f) => core.onMailbox(peer, f) };

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * The relay's routing logic, independent of HTTP and TLS: hand it WebSocket-like sockets
 * (`attach`) and it speaks the relay protocol on them — HELLO, topics, unicast and broadcast
 * forwarding, limits, heartbeats. {@link createRelayServer} wraps it in an HTTP(S) listener;
 * it also works with `new WebSocketServer({ noServer: true })` and `handleUpgrade`.
 *
 * The core keeps nothing on disk and never sees a database id: topics are hashes, payloads
 * are sealed by the sync layer and forwarded as opaque bytes.
 *
 * @example
 * ```ts
 * const core = new RelayCore({ maxTopicsPerConnection: 64 });
 * const wss = new WebSocketServer({ noServer: true, maxPayload: core.options.maxFrameSize });
 * httpServer.on('upgrade', (req, socket, head) =>
 *   wss.handleUpgrade(req, socket, head, (ws) => core.attach(ws, { ip: req.socket.remoteAddress ?? '' })));
 * ```
 */
export class RelayCore implements RouterHost {
  /** The validated options, defaults applied. */
  readonly options: ResolvedCoreOptions;
  readonly #peers = new Map<number, Peer>();
  readonly #byPeerId = new Map<string, Peer>();
  readonly #perIp = new Map<string, number>();
  readonly #topicsByKey = new Map<string, Topic<Peer>>();
  readonly #topicsById = new Map<number, Topic<Peer>>();
  /** Frames of connections whose HELLO a router is still checking (scale-out only), in order. */
  readonly #held = new Map<Peer, Buffer[]>();
  readonly #token: Buffer | null;
  /** The sealed mailbox (ARCHITECTURE.md § Mailbox), when the relay runs with one. */
  readonly #mailbox: MailboxService | null;
  #nextSession = 1;
  #nextTopicId = 1;
  #heartbeat: ReturnType<typeof setInterval> | null = null;
  /**
   * A coarse clock for the rate limiters, refreshed every {@link CLOCK_TICK_MS}: reading the
   * system clock per frame costs more than all the routing (0.1–0.2 µs on some VMs).
   */
  #now = 0;
  /**
   * Where {@link RelayCore.#now} counts from: the clock is whole milliseconds since the core
   * started, so the times kept on every connection (`pingedAt`, `refilledAt`) are small integers
   * V8 stores in the object itself, not 16-byte boxed doubles (~32 B per idle connection), for
   * the first 24 days of a core's life (2^31 ms; later they are boxed again, nothing else changes).
   */
  readonly #epoch = performance.now();
  #clock: ReturnType<typeof setInterval> | null = null;
  #closing = false;
  #connectionsTotal = 0;
  #framesIn = 0;
  #framesOut = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #errors = 0;
  readonly #frameBytes = new FixedHistogram(FRAME_BYTES_BUCKETS);
  readonly #fanout = new FixedHistogram(FANOUT_BUCKETS);
  readonly #drops = new Map<DropReason, number>();
  readonly #closedWaiters = new Set<() => void>();
  /** Routing beyond this process (the Redis cluster); null: a single process. */
  #router: RelayRouter | null = null;
  /** Session numbers the router holds for remote peers. */
  readonly #reserved = new Set<number>();
  /** The connection of each EventEmitter socket, for the shared listeners. */
  readonly #bySocket = new WeakMap<object, Peer>();
  readonly #shared: SharedListeners = this.#sharedListeners();
  /** Where a {@link DirectSocket} delivers its events (one object per core). */
  readonly #direct: DirectEvents<Peer> = this.#directEvents();

  constructor(options: RelayCoreOptions = {}) {
    this.options = resolveCoreOptions(options);
    this.#token = this.options.token === undefined ? null : Buffer.from(this.options.token, 'utf8');
    this.#mailbox = options.mailbox ?? null;
    this.#mailbox?.bind({
      send: (peer, frame) => this.#send(peer as Peer, frame),
      charge: (peer, frames, bytes) => this.#charge(peer as Peer, frames, bytes),
    });
    const hb = this.options.heartbeatIntervalMs;
    // One timer sweeps every connection: ping deadlines and HELLO deadlines.
    this.#heartbeat = setInterval(() => this.#sweep(), Math.max(10, Math.min(hb > 0 ? hb / 2 : Infinity, this.options.helloTimeoutMs / 2)));
    this.#heartbeat.unref();
    this.#clock = setInterval(() => {
      this.#now = this.#clockNow();
    }, CLOCK_TICK_MS);
    this.#clock.unref();
  }

  /** Number of open connections. */
  get connections(): number {
    return this.#peers.size;
  }

  /** A snapshot of the counters. */
  stats(): RelayStats {
    return {
      connections: this.#peers.size,
      topics: this.#topicsByKey.size,
      connectionsTotal: this.#connectionsTotal,
      framesIn: this.#framesIn,
      framesOut: this.#framesOut,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      drops: Object.fromEntries(this.#drops) as Partial<Record<DropReason, number>>,
      errors: this.#errors,
      ...(this.#mailbox ? { mailbox: this.#mailbox.stats() } : {}),
      frameBytes: this.#frameBytes.snapshot(),
      fanout: this.#fanout.snapshot(),
    };
  }

  readonly #countSocketError = (): void => {
    this.#errors++;
  };

  /**
   * Routes beyond this process through `router` (see `cluster/`): remote members pair with
   * local ones, frames to them leave through it. Set once, before the first connection.
   */
  setRouter(router: RelayRouter): void {
    this.#router = router;
  }

  /** @internal {@link RouterHost}: a topic by hex key. */
  topicByKey(key: string): RoutedTopic | undefined {
    return this.#topicsByKey.get(key);
  }

  /** @internal {@link RouterHost}: every topic with local members or announcers. */
  topics(): Iterable<RoutedTopic> {
    return this.#topicsByKey.values();
  }

  /** @internal {@link RouterHost}: a local connection by session. */
  peerBySession(session: number): RoutedPeer | undefined {
    return this.#peers.get(session);
  }

  /** @internal {@link RouterHost}: sends a relay→client frame. */
  sendTo(peer: RoutedPeer, frame: Uint8Array): void {
    this.#send(peer as Peer, frame);
  }

  /** @internal {@link RouterHost}: closes a local connection with a close code. */
  cutPeer(peer: RoutedPeer, name: CloseCodeName): void {
    this.#cut(peer as Peer, name);
  }

  /** @internal {@link RouterHost}: a session number for a remote peer's stand-in. */
  reserveSession(): number {
    const s = this.#allocateSession();
    this.#reserved.add(s);
    return s;
  }

  /** @internal {@link RouterHost}: gives a reserved number back. */
  releaseSession(session: number): void {
    this.#reserved.delete(session);
  }

  /** Upgraded connections from `ip` (what `maxConnectionsPerIp` counts; the host adds its sockets not yet upgraded). */
  connectionsFrom(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  /** Counts a connection the host cut or refused before handing it over (e.g. `upgrade_timeout`). */
  countDrop(reason: DropReason): void {
    this.#countDrop(reason);
  }

  /** Counts an error the host saw (an HTTP parse error, a failed upgrade). */
  countError(): void {
    this.#errors++;
  }

  /**
   * Takes over a freshly opened socket. A connection above `maxConnections` or
   * `maxConnectionsPerIp` is closed at once with 4021 / 4022.
   */
  attach(socket: RelaySocket, info: ConnectionInfo): void {
    if (this.#closing) {
      socket.on('error', this.#countSocketError);
      this.#closeSocket(socket, 'GOING_AWAY');
      return;
    }
    const ip = info.ip;
    if (this.#peers.size >= this.options.maxConnections || (this.#perIp.get(ip) ?? 0) >= this.options.maxConnectionsPerIp) {
      socket.on('error', this.#countSocketError);
    }
    if (this.#peers.size >= this.options.maxConnections) {
      this.#countDrop('too_many_connections');
      this.#closeSocket(socket, 'TOO_MANY_CONNECTIONS');
      return;
    }
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (fromIp >= this.options.maxConnectionsPerIp) {
      this.#countDrop('too_many_connections_per_ip');
      this.#closeSocket(socket, 'TOO_MANY_CONNECTIONS_PER_IP');
      return;
    }
    const session = this.#allocateSession();
    const peer = new Peer(session, socket, ip, this.#now, this.options);
    peer.counted = true;
    this.#perIp.set(ip, fromIp + 1);
    this.#peers.set(session, peer);
    this.#connectionsTotal++;
    if (isDirectSocket(socket)) {
      // The server's own sockets (direct-socket.ts): events come straight here, nothing per connection.
      socket.bindEvents(this.#direct, peer);
      return;
    }
    if (socket instanceof EventEmitter) {
      // An EventEmitter (a `ws` socket) calls its listeners with itself as `this`: one set of
      // listeners per core serves every connection, found by socket (no closures per connection).
      this.#bySocket.set(socket, peer);
      const l = this.#shared;
      socket.on('message', l.message);
      socket.on('pong', l.pong);
      socket.on('close', l.close);
      socket.on('error', l.error);
      return;
    }
    socket.on('message', (data, isBinary) => this.#onMessage(peer, data, isBinary));
    socket.on('pong', () => {
      peer.alive = true;
    });
    socket.on('close', () => this.#release(peer));
    socket.on('error', (error: Error & { code?: string }) => this.#onSocketError(peer, error));
  }

  #onSocketError(peer: Peer | undefined, error: Error & { code?: string }): void {
    // ws reports bad framing and oversized frames here, then closes with 1002 / 1009.
    this.#errors++;
    if (peer === undefined || peer.done) return;
    this.#countDrop(error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'frame_too_large' : 'protocol_error');
    this.#unroute(peer);
  }

  /** The events of every {@link DirectSocket} (see {@link attach}). */
  #directEvents(): DirectEvents<Peer> {
    const core = this;
    return {
      message: (peer, data, isBinary) => core.#onMessage(peer, data, isBinary),
      ping: (peer, data) => core.#onWebSocketPing(peer, data),
      pong: (peer) => {
        peer.alive = true;
      },
      close: (peer) => core.#release(peer),
      error: (peer, error) => core.#onSocketError(peer, error),
    };
  }

  /**
   * A WebSocket ping that the socket leaves to the core (relay-websocket.ts): charged to the
   * connection's rate limits like a frame, and answered (true) unless the connection is cut for
   * it — over a rate, or not reading what it is sent (its pongs would pile up here).
   */
  #onWebSocketPing(peer: Peer, data: Buffer): boolean {
    if (peer.done) return false;
    const over = spend(peer, data.length, this.#now, this.options);
    if (over !== null) {
      this.#cut(peer, over === 'frames' ? 'FRAME_RATE_EXCEEDED' : 'BYTE_RATE_EXCEEDED');
      return false;
    }
    if (peer.socket.bufferedAmount > this.options.maxBufferedBytes) {
      this.#cut(peer, 'SLOW_CONSUMER');
      return false;
    }
    return true;
  }

  /** Socket listeners shared by every EventEmitter socket (see {@link attach}). */
  #sharedListeners(): SharedListeners {
    const bySocket = this.#bySocket;
    const core = this;
    return {
      message(this: object, data, isBinary) {
        const peer = bySocket.get(this);
        if (peer !== undefined) core.#onMessage(peer, data, isBinary);
      },
      pong(this: object) {
        const peer = bySocket.get(this);
        if (peer !== undefined) peer.alive = true;
      },
      close(this: object) {
        const peer = bySocket.get(this);
        if (peer === undefined) return;
        bySocket.delete(this);
        core.#release(peer);
      },
      error(this: object, error) {
        core.#onSocketError(bySocket.get(this), error);
      },
    };
  }

  /**
   * Closes every connection with 1001 (going away) and stops the heartbeat. Resolves once all
   * sockets closed (sockets that do not finish the close handshake in `closeGraceMs` are
   * destroyed). New sockets given to `attach` afterwards are closed at once.
   */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#clock) clearInterval(this.#clock);
    this.#heartbeat = null;
    this.#clock = null;
    if (this.#peers.size === 0) return;
    const done = new Promise<void>((resolve) => this.#closedWaiters.add(resolve));
    for (const peer of [...this.#peers.values()]) this.#cut(peer, 'GOING_AWAY');
    await done;
  }

  // ------------------------------------------------------------------------------------------
  // Receiving

  #onMessage(peer: Peer, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    if (peer.done) return;
    // Not liveness: a client that still writes may have stopped reading (its buffer here grows
    // while it sends). Only a pong, which comes back after every byte sent before the ping was
    // read, proves the reader alive (§ Relay, Limits and close codes).
    const frame = toBuffer(data);
    const length = frame.length;
    this.#framesIn++;
    this.#bytesIn += length;
    this.#frameBytes.observe(length);
    const over = spend(peer, length, this.#now, this.options);
    if (over !== null) return this.#cut(peer, over === 'frames' ? 'FRAME_RATE_EXCEEDED' : 'BYTE_RATE_EXCEEDED');
    if (!isBinary) return this.#cut(peer, 'UNSUPPORTED_DATA');
    if (this.#held.size !== 0) {
      const held = this.#held.get(peer);
      if (held !== undefined) {
        // The router is still checking the HELLO's peer id: keep the order, dispatch them after.
        if (held.length >= MAX_HELD_FRAMES) return this.#cut(peer, 'HELLO_REQUIRED');
        held.push(frame);
        return;
      }
    }
    this.#dispatch(peer, frame);
  }

  #dispatch(peer: Peer, frame: Buffer): void {
    const length = frame.length;
    if (length === 0) return this.#cut(peer, 'MALFORMED_FRAME');
    const type = frame[0]!;
    const handler = HANDLERS[type];
    if (handler === undefined) return this.#cut(peer, 'UNKNOWN_FRAME_TYPE');
    if (!handler.guard(frame)) return this.#cut(peer, 'MALFORMED_FRAME');
    if ((peer.peerKey === '') !== (type === FrameType.HELLO)) return this.#cut(peer, 'HELLO_REQUIRED');
    handler.handle(this, peer, frame);
  }

  /** @internal HELLO: version, token, peer id; takes over an older session of the same peer id. */
  onHello(peer: Peer, f: Buffer): void {
    if (f[1] !== PROTOCOL_VERSION) return this.#cut(peer, 'VERSION_MISMATCH');
    const idLen = f[2]!;
    const tokenLen = f[3 + idLen]!;
    if (this.#token !== null) {
      const token = f.subarray(4 + idLen, 4 + idLen + tokenLen);
      if (token.length !== this.#token.length || !timingSafeEqual(token, this.#token)) return this.#cut(peer, 'UNAUTHORIZED');
    }
    const key = f.toString('latin1', 3, 3 + idLen);
    const sessionKeyBytes = helloSessionKey(f);
    const older = this.#byPeerId.get(key);
    if (older !== undefined && older !== peer) {
      // Peer ids are public (PEER_JOINED, PEERS): only the client that holds the id's session
      // key may take it over (a reconnect before the relay noticed the old socket die).
      const held = Buffer.from(older.sessionKey, 'latin1');
      const sameClient = sessionKeyBytes.length > 0 && held.length === sessionKeyBytes.length && timingSafeEqual(held, sessionKeyBytes);
      if (!sameClient) return this.#cut(peer, 'PEER_ID_TAKEN');
      this.#cut(older, 'REPLACED');
    }
    peer.sessionKey = Buffer.from(sessionKeyBytes.buffer, sessionKeyBytes.byteOffset, sessionKeyBytes.byteLength).toString('latin1');
    peer.peerKey = key;
    this.#byPeerId.set(key, peer);
    if (this.#router === null) return this.#welcome(peer);
    // Beyond this process the peer id may be held elsewhere: the router checks, frames wait.
    this.#held.set(peer, []);
    this.#router.claim(peer, Buffer.from(f.subarray(3, 3 + idLen)), Buffer.from(sessionKeyBytes), (verdict) => {
      if (peer.done) return;
      if (verdict === 'taken') return this.#cut(peer, 'PEER_ID_TAKEN');
      this.#welcome(peer);
      const held = this.#held.get(peer) ?? [];
      this.#held.delete(peer);
      for (const frame of held) {
        if (peer.done) break;
        this.#dispatch(peer, frame);
      }
    });
  }

  #welcome(peer: Peer): void {
    peer.welcomed = true;
    this.#send(peer, encodeWelcome(peer.session, this.options.maxFrameSize));
    // The rates this connection is held to, so the client paces itself under them (§ Relay, LIMITS).
    this.#send(peer, encodeLimits(this.options, LIMITS_FLAG_WINDOW));
    // A relay with a mailbox says so right after WELCOME (older clients ignore the frame).
    if (this.#mailbox) this.#send(peer, this.#mailbox.offerFrame);
  }

  /** @internal MB_READ / MB_PUT / MB_WRITE: the mailbox's, or an unknown type without one. */
  onMailbox(peer: Peer, f: Buffer): void {
    const mailbox = this.#mailbox;
    if (mailbox === null) return this.#cut(peer, 'UNKNOWN_FRAME_TYPE');
    if (f[0] === MailboxFrameType.MB_READ) mailbox.onRead(peer, f);
    else if (f[0] === MailboxFrameType.MB_PUT) mailbox.onPut(peer, f);
    else mailbox.onWrite(peer, f);
  }

  /** @internal JOIN (`pair` true) or ANNOUNCE: list the peer on the topic; JOIN also pairs it. */
  onJoin(peer: Peer, f: Buffer, pair: boolean): void {
    const key = f.toString('hex', 1, 33);
    let topic = this.#topicsByKey.get(key);
    const listed = topic?.isListed(peer) ?? false;
    if (!listed && peer.topicCount >= this.options.maxTopicsPerConnection) return this.#cut(peer, 'TOO_MANY_TOPICS');
    if (topic === undefined) {
      const id = this.#allocateTopicId();
      topic = new Topic<Peer>(id, key);
      this.#topicsByKey.set(key, topic);
      this.#topicsById.set(id, topic);
    }
    if (!listed) {
      // Listed from now on; a JOIN below makes it a member.
      topic.addAnnouncer(peer);
      peer.addTopic(topic);
    }
    const alreadyMember = topic.member(peer.session) === peer;
    this.#send(peer, encodeJoined(topic.id, f.subarray(1, 33)));
    // Sending can cut the peer (its buffer is full): it has then left every topic already.
    if (peer.done) return;
    if (!pair || alreadyMember) {
      if (!listed) this.#router?.listed(topic, peer, false);
      return;
    }
    if (topic.memberCount >= this.options.maxPeersPerTopic) {
      // A JOIN to a full topic degrades to an ANNOUNCE (findable, not paired), with a refusal.
      this.#countDrop('topic_full');
      this.#send(peer, encodeError(RelayErrorCode.TOPIC_FULL, topic.id, 'topic is full'));
      if (!listed && !peer.done) this.#router?.listed(topic, peer, false);
      return;
    }
    // The newcomer pays for the fan-out it causes: a PEER_JOINED to it and one to each member.
    const remote = this.#router?.remoteMembers(topic) ?? 0;
    if (!this.#charge(peer, 2 * (topic.memberCount + remote), 0)) return;
    const announceNewcomer = encodePeerJoined(topic.id, peer.session, peer.peerId!);
    // (A send may cut a member: the loop goes on over the members as they were, `#send` skips it.)
    for (const other of topic.members) {
      if (other.done) continue;
      this.#send(peer, encodePeerJoined(topic.id, other.session, other.peerId!));
      if (peer.done) return;
      this.#send(other, announceNewcomer);
    }
    topic.addMember(peer);
    this.#router?.listed(topic, peer, true);
  }

  /** @internal LEAVE: drop the peer from the topic; the other members hear PEER_LEFT. */
  onLeave(peer: Peer, f: Buffer): void {
    const topic = this.#topicsByKey.get(f.toString('hex', 1, 33));
    if (topic === undefined || !topic.isListed(peer)) return;
    // The leaver pays for the PEER_LEFT fan-out (a JOIN/LEAVE loop is not free amplification).
    const remote = this.#router?.remoteMembers(topic) ?? 0;
    if (topic.member(peer.session) === peer && !this.#charge(peer, topic.memberCount - 1 + remote, 0)) return;
    this.#leave(peer, topic);
  }

  /** @internal PING: answer PONG with the same nonce, in the received buffer itself. */
  onPing(peer: Peer, f: Buffer): void {
    f[0] = FrameType.PONG;
    this.#send(peer, f);
  }

  /** @internal LOOKUP: who is findable on the topic (never the asker). */
  onLookup(peer: Peer, f: Buffer): void {
    const requestId = readU32(f, 1);
    const topic = this.#topicsByKey.get(f.toString('hex', 5, 37));
    const peers: LookupEntry[] = [];
    const max = this.options.maxLookupPeers;
    if (topic !== undefined) {
      for (const other of topic.listed()) {
        if (other === peer || !other.welcomed) continue;
        peers.push({ session: other.session, peerId: other.peerId! });
        if (peers.length >= max) break;
      }
    }
    const answer = (remote: LookupEntry[]): void => {
      if (peer.done) return;
      for (let i = 0; i < remote.length && peers.length < max; i++) peers.push(remote[i]!);
      const reply = encodePeers(requestId, peers);
      if (this.#charge(peer, 0, reply.length)) this.#send(peer, reply);
    };
    if (peers.length < max && this.#router?.lookup(Buffer.from(f.subarray(5, 37)), peer, answer)) return;
    answer([]);
  }

  /**
   * @internal SEND and CLOSE_PEER: rewrite the header in place (type, and the sender's session
   * where the recipient's was) and forward the same buffer: the payload is never copied.
   */
  onUnicast(peer: Peer, f: Buffer, outType: number): void {
    const topicId = readU32(f, 1);
    const topic = this.#topicsById.get(topicId);
    if (topic === undefined || topic.member(peer.session) !== peer) return this.#notJoined(peer, topicId);
    const to = readU32(f, 5);
    const target = topic.member(to);
    if (target === undefined || target === peer) {
      if (target === undefined && this.#router !== null) {
        f[0] = outType;
        f.writeUInt32BE(peer.session, 5);
        if (this.#router.unicast(topic, peer, to, f)) return;
      }
      this.#countDrop('no_route');
      return;
    }
    f[0] = outType;
    f.writeUInt32BE(peer.session, 5);
    this.#forward(target, f);
  }

  /** @internal BROADCAST: one rewritten buffer, sent to every other member. */
  onBroadcast(peer: Peer, f: Buffer): void {
    const topicId = readU32(f, 1);
    const topic = this.#topicsById.get(topicId);
    if (topic === undefined || topic.member(peer.session) !== peer) return this.#notJoined(peer, topicId);
    const members = topic.members;
    // The sender pays for the fan-out beyond the one frame its own receipt already counted
    // (members on other relay instances included).
    const remote = this.#router?.remoteMembers(topic) ?? 0;
    const extra = members.length + remote - 2;
    if (extra > 0 && !this.#charge(peer, extra, extra * f.length)) return;
    f[0] = FrameType.DELIVER;
    f.writeUInt32BE(peer.session, 5);
    this.#fanout.observe(members.length - 1);
    // The members as they were at the start: one cut on the way (slow consumer) is skipped.
    for (let i = 0; i < members.length; i++) {
      const target = members[i]!;
      if (target !== peer && !target.done) this.#forward(target, f);
    }
    if (remote > 0) this.#router!.broadcast(topic, peer, f);
  }

  /** Charges work a frame causes beyond itself to the sender's buckets; false once that cut it. */
  #charge(peer: Peer, frames: number, bytes: number): boolean {
    peer.frameTokens -= frames;
    peer.byteTokens -= bytes;
    if (peer.frameTokens < 0) this.#cut(peer, 'FRAME_RATE_EXCEEDED');
    else if (peer.byteTokens < 0) this.#cut(peer, 'BYTE_RATE_EXCEEDED');
    return !peer.done;
  }

  #notJoined(peer: Peer, topicId: number): void {
    this.#countDrop('not_joined');
    this.#send(peer, encodeError(RelayErrorCode.NOT_JOINED, topicId, 'topic not joined'));
  }

  // ------------------------------------------------------------------------------------------
  // Sending, cutting, releasing

  #forward(target: Peer, frame: Uint8Array): void {
    const socket = target.socket;
    socket.send(frame);
    this.#framesOut++;
    this.#bytesOut += frame.length;
    if (socket.bufferedAmount > this.options.maxBufferedBytes) this.#cut(target, 'SLOW_CONSUMER');
  }

  #send(peer: Peer, frame: Uint8Array): void {
    if (peer.done) return;
    // A small frame goes as the encoder made it to a RelayWebSocket (a DirectSocket), which copies
    // it into its own frame buffer (relay-websocket.ts). To any other socket it goes as a Buffer:
    // a copy into Node's pool, not a view, since the encoders' small arrays live inside V8's heap
    // and `ws` taking their `.buffer` moves each one out to a native allocation of its own
    // (several per connection at connect, in the middle of the burst whose native garbage the
    // allocator keeps, BENCHMARKS.md § Issue 12). Large frames (mailbox replies) are native
    // already and are sent as views, not copied.
    if (frame.byteLength <= SMALL_FRAME_BYTES) this.#forward(peer, isDirectSocket(peer.socket) ? frame : Buffer.from(frame));
    else this.#forward(peer, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
  }

  /** Closes a connection with a close code, removes it from routing, and destroys it after the grace period. */
  #cut(peer: Peer, name: CloseCodeName): void {
    if (peer.done) return;
    const drop = DROP_OF[name];
    if (drop) this.#countDrop(drop);
    this.#unroute(peer);
    if (name === 'HEARTBEAT_TIMEOUT') {
      peer.socket.terminate();
      return;
    }
    this.#closeSocket(peer.socket, name);
  }

  #closeSocket(socket: RelaySocket, name: CloseCodeName): void {
    socket.close(CloseCode[name], CLOSE_REASON_TEXT[name] ?? name.toLowerCase());
    const timer = setTimeout(() => socket.terminate(), this.options.closeGraceMs);
    timer.unref();
  }

  /** Takes a peer out of every topic (the others hear PEER_LEFT); idempotent. */
  #unroute(peer: Peer): void {
    if (peer.done) return;
    peer.done = true;
    this.#mailbox?.forget(peer);
    if (peer.topics !== null) for (const topic of peer.topicList()) this.#leave(peer, topic);
    if (peer.peerKey !== '' && this.#byPeerId.get(peer.peerKey) === peer) this.#byPeerId.delete(peer.peerKey);
    if (this.#held.size !== 0) this.#held.delete(peer);
    this.#router?.disconnected(peer);
  }

  #leave(peer: Peer, topic: Topic<Peer>): void {
    const wasMember = topic.remove(peer);
    peer.removeTopic(topic);
    if (wasMember && topic.memberCount > 0) {
      const left = encodeDataFrame(FrameType.PEER_LEFT, topic.id, peer.session);
      for (const other of topic.members) this.#send(other, left);
    }
    this.#router?.unlisted(topic, peer, wasMember);
    if (topic.listedCount === 0) {
      this.#topicsByKey.delete(topic.key);
      this.#topicsById.delete(topic.id);
    }
  }

  /** The socket closed: release the connection's slot. */
  #release(peer: Peer): void {
    this.#unroute(peer);
    if (!peer.counted) return;
    peer.counted = false;
    this.#peers.delete(peer.session);
    const n = (this.#perIp.get(peer.ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(peer.ip);
    else this.#perIp.set(peer.ip, n);
    if (this.#peers.size === 0 && this.#closedWaiters.size > 0) {
      for (const resolve of this.#closedWaiters) resolve();
      this.#closedWaiters.clear();
    }
  }

  #countDrop(reason: DropReason): void {
    this.#drops.set(reason, (this.#drops.get(reason) ?? 0) + 1);
  }

  /** Heartbeat and HELLO deadline: one timer for every connection. */
  #sweep(): void {
    const now = this.#clockNow();
    const interval = this.options.heartbeatIntervalMs;
    // forEach, not for-of over values(): no iterator result object per connection per sweep.
    this.#peers.forEach((peer) => {
      if (peer.done) return;
      if (!peer.welcomed) {
        // Not pinged before its WELCOME: `pingedAt` is still the connection's start.
        if (now - peer.pingedAt > this.options.helloTimeoutMs) this.#cut(peer, 'HELLO_TIMEOUT');
        return;
      }
      if (interval === 0 || now - peer.pingedAt < interval) return;
      if (!peer.alive) {
        this.#cut(peer, 'HEARTBEAT_TIMEOUT');
        return;
      }
      peer.alive = false;
      peer.pingedAt = now;
      peer.socket.ping();
    });
  }

  /** Whole milliseconds since the core started (see {@link RelayCore.#epoch}). */
  #clockNow(): number {
    return Math.floor(performance.now() - this.#epoch);
  }

  #allocateSession(): number {
    // u32, never 0; skips numbers still in use after a wrap.
    for (;;) {
      const s = this.#nextSession;
      this.#nextSession = s >= 0xffffffff ? 1 : s + 1;
      if (!this.#peers.has(s) && !this.#reserved.has(s)) return s;
    }
  }

  #allocateTopicId(): number {
    for (;;) {
      const id = this.#nextTopicId;
      this.#nextTopicId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.#topicsById.has(id)) return id;
    }
  }
}

