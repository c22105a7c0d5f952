import { resolveTransportConfig, DEFAULT_NETWORK_MAX_MESSAGE_SIZE } from './config.js';
import { DisabledTransport } from './disabled.js';
import { TransportClosedError, TransportUnavailableError } from './errors.js';
import { MemoryTransport } from './memory.js';
import { assertTopic } from './topic.js';
import type { Connection, ConnectOptions, PeerInfo, TopicHash, Transport, TransportConfig } from './types.js';

/** What a lazily loaded transport package exports. */
interface TransportModule {
  createTransportFromConfig(config: TransportConfig): Transport | Promise<Transport>;
}

const PACKAGES = { relay: '@rhizome/transport-relay', dht: '@rhizome/transport-dht' } as const;

async function loadTransport(mode: 'relay' | 'dht', config: TransportConfig): Promise<Transport> {
  const specifier: string = PACKAGES[mode];
  let mod: TransportModule;
  try {
    // A computed specifier: core has no static dependency on any adapter, and libp2p is
    // only loaded when DHT mode is actually used.
    mod = (await import(/* @vite-ignore */ specifier)) as TransportModule;
  } catch (error) {
    throw new TransportUnavailableError(mode, specifier, error);
  }
  return mod.createTransportFromConfig(config);
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
  #closed = false;

  constructor(config: TransportConfig & { mode: 'relay' | 'dht' }) {
    this.name = config.mode;
    this.maxMessageSize = config.maxMessageSize ?? DEFAULT_NETWORK_MAX_MESSAGE_SIZE;
    this.#config = config;
  }

  /** The loaded implementation (loads it if needed). */
  resolve(): Promise<Transport> {
    if (this.#closed) return Promise.reject(new TransportClosedError(`${this.name} transport is disconnected`));
    this.#inner ??= loadTransport(this.name as 'relay' | 'dht', this.#config).catch((error: unknown) => {
      this.#inner = null;
      throw error;
    });
    return this.#inner;
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
