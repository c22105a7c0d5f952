import { resolveTransportConfig, normalizeRelayUrl, DEFAULT_NETWORK_MAX_MESSAGE_SIZE } from './config.js';
import { DisabledTransport } from './disabled.js';
import { ConnectFailedError, TransportClosedError, TransportUnavailableError } from './errors.js';
import { MemoryTransport } from './memory.js';
import { mailboxOf, type MailboxAccess, type MailboxOffer, type MailboxOfferListener, type MailboxReadResult, type MailboxWriteResult } from './mailbox.js';
import { assertTopic } from './topic.js';
import type { Connection, ConnectOptions, PeerInfo, TopicHash, Transport, TransportConfig } from './types.js';

/** What a lazily loaded transport package exports. */
interface TransportModule {
  createTransportFromConfig(config: TransportConfig): Transport | Promise<Transport>;
}

const PACKAGES = { relay: '@rhizome/transport-relay', dht: '@rhizome/transport-dht' } as const;

/** Adapter modules already loaded: a later transport of that mode skips the module loader (~3 KiB of garbage per `import()`). */
const loadedModules: { relay?: TransportModule; dht?: TransportModule } = {};

async function loadTransport(mode: 'relay' | 'dht', config: TransportConfig): Promise<Transport> {
  const specifier: string = PACKAGES[mode];
  let mod = loadedModules[mode];
  if (mod === undefined) {
    try {
      // A computed specifier: core has no static dependency on any adapter, and libp2p is
      // only loaded when DHT mode is actually used.
      mod = (await import(/* @vite-ignore */ specifier)) as TransportModule;
    } catch (error) {
      throw new TransportUnavailableError(mode, specifier, error);
    }
    loadedModules[mode] = mod;
  }
  return mod.createTransportFromConfig(config);
}

/** Forwards to the mailbox access of a lazily loaded relay transport. */
class LazyMailbox implements MailboxAccess {
  readonly serverId: string;
  /** The transport it forwards for (its methods, not closures over it: an idle database holds one). */
  readonly #owner: LazyTransport;
  /** Offer listeners added before the implementation loaded (see {@link attachTo}). */
  #pending: MailboxOfferListener[] | null = null;
  /** Stop functions of an implementation's access without `offOffer` (none for the relay's). */
  #stops: Map<MailboxOfferListener, () => void> | null = null;

  constructor(serverId: string, owner: LazyTransport) {
    this.serverId = serverId;
    this.#owner = owner;
  }

  #access(): MailboxAccess | undefined {
    const inner = this.#owner.loaded;
    return inner === null ? undefined : mailboxOf(inner);
  }

  get offer(): MailboxOffer | null {
    return this.#access()?.offer ?? null;
  }

  /**
   * Listeners go to the relay implementation's access, which takes objects; held here until it
   * loads ({@link MailboxAccess.objectListeners}).
   */
  get objectListeners(): boolean {
    return true;
  }

  onOffer(listener: MailboxOfferListener): () => void {
    const access = this.#access();
    if (access !== undefined) return access.onOffer(listener);
    // Held here until the implementation loads (attachTo), then handed to its mailbox access: no
    // closures per listener (an idle database holds one).
    const pending = (this.#pending ??= []);
    if (!pending.includes(listener)) pending.push(listener);
    return () => this.offOffer(listener);
  }

  offOffer(listener: MailboxOfferListener): void {
    const pending = this.#pending;
    const i = pending?.indexOf(listener) ?? -1;
    if (i >= 0) pending!.splice(i, 1);
    const access = this.#access();
    if (access === undefined) return;
    if (access.offOffer !== undefined) access.offOffer(listener);
    else {
      this.#stops?.get(listener)?.();
      this.#stops?.delete(listener);
    }
  }

  /** @internal The implementation loaded: the listeners added before go to its mailbox access. */
  attachTo(inner: Transport): void {
    const pending = this.#pending;
    this.#pending = null;
    const access = pending === null ? undefined : mailboxOf(inner);
    if (access === undefined) return;
    for (const listener of pending!) {
      const stop = access.onOffer(listener);
      // An access without offOffer is stopped by its function, kept only then.
      if (access.offOffer === undefined) (this.#stops ??= new Map()).set(listener, stop);
    }
  }

  read(mailbox: Uint8Array, after: number, options?: { signal?: AbortSignal }): Promise<MailboxReadResult> {
    const access = this.#access();
    if (access === undefined) return Promise.reject(new ConnectFailedError(`relay ${this.serverId} offers no mailbox yet (not connected)`));
    return access.read(mailbox, after, options);
  }

  write(mailbox: Uint8Array, header: Uint8Array, payload: Uint8Array, options?: { signal?: AbortSignal }): Promise<MailboxWriteResult> {
    const access = this.#access();
    if (access === undefined) return Promise.reject(new ConnectFailedError(`relay ${this.serverId} offers no mailbox yet (not connected)`));
    return access.write(mailbox, header, payload, options);
  }
}

/**
 * A transport whose implementation is imported on first use. `createTransport` returns it
 * for the relay and DHT modes, so it can stay synchronous and importing core stays light.
 */
class LazyTransport implements Transport {
  readonly name: string;
  readonly maxMessageSize: number;
  readonly #config: TransportConfig;
  #inner: Promise<Transport> | null = null;
  #loaded: Transport | null = null;
  #mailbox: LazyMailbox | null = null;
  /** Called once with the implementation when it is loaded; made by the first caller, dropped at the load. */
  #onLoad: Set<(inner: Transport) => void> | null = null;
  #closed = false;

  constructor(config: TransportConfig & { mode: 'relay' | 'dht' }) {
    this.name = config.mode;
    this.maxMessageSize = config.maxMessageSize ?? DEFAULT_NETWORK_MAX_MESSAGE_SIZE;
    this.#config = config;
  }

  /** The loaded implementation (loads it if needed). */
  resolve(): Promise<Transport> {
    if (this.#closed) return Promise.reject(new TransportClosedError(`${this.name} transport is disconnected`));
    this.#inner ??= loadTransport(this.name as 'relay' | 'dht', this.#config).then(
      (inner) => {
        this.#loaded = inner;
        this.#mailbox?.attachTo(inner);
        const listeners = this.#onLoad;
        this.#onLoad = null;
        if (listeners !== null) for (const listener of listeners) listener(inner);
        return inner;
      },
      (error: unknown) => {
        this.#inner = null;
        throw error;
      },
    );
    return this.#inner;
  }

  /**
   * Relay mode: the mailbox access of the implementation, forwarded (usable before it is
   * loaded: offers arrive once it is). Undefined for DHT mode and with `mailbox: false`.
   */
  get mailbox(): MailboxAccess | undefined {
    if (this.name !== 'relay' || this.#config.mailbox === false || this.#config.relayUrl === undefined) return undefined;
    // A list of relays is one scaled-out relay (one mailbox in Redis): named by its first URL.
    this.#mailbox ??= new LazyMailbox(normalizeRelayUrl([this.#config.relayUrl].flat()[0]!), this);
    return this.#mailbox;
  }

  /** @internal The implementation once loaded, else null (for {@link LazyMailbox}). */
  get loaded(): Transport | null {
    return this.#loaded;
  }

  /** @internal Calls `listener` with the implementation when it loads (for {@link LazyMailbox}). */
  onLoad(listener: (inner: Transport) => void): void {
    (this.#onLoad ??= new Set()).add(listener);
  }

  /** @internal Undoes {@link onLoad}. */
  offLoad(listener: (inner: Transport) => void): void {
    this.#onLoad?.delete(listener);
  }

  async announce(topic: TopicHash): Promise<void> {
    assertTopic(topic);
    await (await this.resolve()).announce(topic);
  }

  async lookup(topic: TopicHash): Promise<PeerInfo[]> {
    assertTopic(topic);
    return (await this.resolve()).lookup(topic);
  }

  async connect(topic: TopicHash, options?: ConnectOptions): Promise<AsyncIterable<Connection>> {
    assertTopic(topic);
    return (await this.resolve()).connect(topic, options);
  }

  async disconnect(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const inner = await this.#inner?.catch(() => null);
    await inner?.disconnect();
  }
}

/**
 * Builds the transport an app asked for. Synchronous: options are validated up front (a bad
 * field throws `ERR_INVALID_CONFIG` naming it), and the relay and DHT implementations are
 * imported on first use, so importing core never loads `ws` or libp2p.
 *
 * Defaults: `mode: 'dht'`, `timeoutMs: 30000`, `encryption: true`.
 *
 * @example
 * ```ts
 * const transport = createTransport({ mode: 'relay', relayUrl: 'relay.example.com' }); // wss://…:443
 * const db = await openDatabase({ id, path: 'app.db', transport });
 * ```
 */
export function createTransport(config: Partial<TransportConfig> = {}): Transport {
  const resolved = resolveTransportConfig(config);
  switch (resolved.mode) {
    case 'disabled':
      return new DisabledTransport();
    case 'memory': {
      const options: ConstructorParameters<typeof MemoryTransport>[0] = {};
      if (resolved.hub !== undefined) options.hub = resolved.hub;
      if (resolved.peerId !== undefined) options.peerId = resolved.peerId;
      if (resolved.maxMessageSize !== undefined) options.maxMessageSize = resolved.maxMessageSize;
      return new MemoryTransport(options);
    }
    case 'relay':
    case 'dht':
      return new LazyTransport({ ...resolved, mode: resolved.mode });
  }
}

/**
 * @internal For a database that owns the transport it made from a configuration: the relay
 * implementation behind a transport {@link createTransport} returned, loaded now, so the database
 * holds it rather than the lazy wrapper (the wrapper, its configuration and its mailbox forwarder
 * are ~0.3 KiB per database). Any other transport is returned as it is, and so is the wrapper when
 * the implementation cannot load: its error then surfaces where it did before (at `connect`).
 * DHT mode stays lazy (libp2p is loaded by the first call that needs it).
 */
export async function loadedTransport(transport: Transport): Promise<Transport> {
  if (!(transport instanceof LazyTransport) || transport.name !== 'relay') return transport;
  return transport.resolve().catch(() => transport);
}
