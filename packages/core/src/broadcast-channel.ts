import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { AsyncQueue, QueuedConnection } from './async-queue.js';
import { AbortError, FrameTooLargeError, InvalidConfigError, TopicAlreadyJoinedError, TransportClosedError } from './errors.js';
import { assertTopic, topicToHex } from './topic.js';
import type { Connection, ConnectOptions, PeerInfo, TopicHash, Transport } from './types.js';

/** Default largest message of the BroadcastChannel transport (structured clone; no wire limit). */
export const BROADCAST_CHANNEL_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
/** How long `lookup` collects answers from the other contexts, in ms. */
export const BROADCAST_CHANNEL_LOOKUP_MS = 100;

/** Options of {@link BroadcastChannelTransport}. */
export interface BroadcastChannelTransportOptions {
  /** Prefix of the channel names (`<prefix><topic hex>`); default `'rhizome:'`. Contexts must agree. */
  prefix?: string;
  /** This peer's id; default random. */
  peerId?: string;
  maxMessageSize?: number;
}

/** What goes over a topic's channel: structured-clone objects, `to` absent for everyone. */
type Message =
  | { t: 'hello'; from: string }
  | { t: 'welcome'; from: string; to: string }
  | { t: 'who'; from: string }
  | { t: 'here'; from: string; to: string }
  | { t: 'data'; from: string; to: string; data: Uint8Array }
  | { t: 'bye'; from: string; to?: string };

interface Join {
  channel: BroadcastChannel;
  queue: AsyncQueue<Connection>;
  connections: Map<string, ChannelConnection>;
}

class ChannelConnection extends QueuedConnection implements Connection {
  readonly transport = 'broadcast-channel';
  readonly topic: TopicHash;
  readonly #channel: BroadcastChannel;
  readonly #self: string;
  readonly #max: number;

  constructor(channel: BroadcastChannel, self: string, remote: string, topic: TopicHash, max: number) {
    super(remote);
    this.topic = topic.slice();
    this.#channel = channel;
    this.#self = self;
    this.#max = max;
  }

  protected sendFrame(data: Uint8Array): Promise<void> {
    if (data.length > this.#max) return Promise.reject(new FrameTooLargeError(data.length, this.#max));
    const message: Message = { t: 'data', from: this.#self, to: this.peerId, data: data.slice() };
    this.#channel.postMessage(message);
    return Promise.resolve();
  }

  protected closeRemote(): Promise<void> {
    const message: Message = { t: 'bye', from: this.#self, to: this.peerId };
    this.#channel.postMessage(message);
    return Promise.resolve();
  }
}

/**
 * A transport between the browsing contexts of one origin (tabs, windows, workers) over
 * `BroadcastChannel`: every tab that opens a database is a replica, and this lets them sync with
 * each other directly, without a network. Use it beside a network transport:
 * `openDatabase({ id, path, transport: [{ mode: 'relay', relayUrl }, new BroadcastChannelTransport()] })`.
 *
 * One channel per joined topic. A join posts `hello`; every member answers `welcome`, and each
 * side makes one Connection for the pair (a second hello or welcome from a known peer is
 * ignored). Messages keep their order (a BroadcastChannel delivers in order); a leave, a
 * `disconnect()` or `pagehide` posts `bye`. A context that dies without `bye` leaves a silent
 * connection that the sync layer's health checks see as unreachable. Same origin only, like the
 * channel; frames are sealed by the sync layer as on any transport.
 */
export class BroadcastChannelTransport implements Transport {
  readonly name = 'broadcast-channel';
  readonly peerId: string;
  readonly maxMessageSize: number;
  readonly #prefix: string;
  readonly #joins = new Map<string, Join>();
  readonly #announced = new Map<string, BroadcastChannel>();
  #closed = false;
  readonly #onPageHide = (): void => {
    for (const [key] of this.#joins) this.#leave(key);
  };

  constructor(options: BroadcastChannelTransportOptions = {}) {
    if (typeof BroadcastChannel !== 'function') throw new InvalidConfigError('transport', 'this host has no BroadcastChannel');
    this.peerId = options.peerId ?? `bc-${bytesToHex(randomBytes(8))}`;
    this.maxMessageSize = options.maxMessageSize ?? BROADCAST_CHANNEL_MAX_MESSAGE_SIZE;
    this.#prefix = options.prefix ?? 'rhizome:';
    if (!Number.isInteger(this.maxMessageSize) || this.maxMessageSize < 1) throw new InvalidConfigError('maxMessageSize', 'must be a positive integer');
    (globalThis as { addEventListener?: (type: string, fn: () => void) => void }).addEventListener?.('pagehide', this.#onPageHide);
  }

  async announce(topic: TopicHash): Promise<void> {
    this.#assertOpen();
    assertTopic(topic);
    const key = topicToHex(topic);
    if (this.#announced.has(key)) return;
    const channel = new BroadcastChannel(this.#prefix + key);
    channel.onmessage = (event: MessageEvent<Message>) => {
      const m = event.data;
      if (m.t === 'who' && m.from !== this.peerId) channel.postMessage({ t: 'here', from: this.peerId, to: m.from } satisfies Message);
    };
    this.#announced.set(key, channel);
  }

  async lookup(topic: TopicHash): Promise<PeerInfo[]> {
    this.#assertOpen();
    assertTopic(topic);
    const key = topicToHex(topic);
    const channel = new BroadcastChannel(this.#prefix + key);
    const found = new Set<string>();
    channel.onmessage = (event: MessageEvent<Message>) => {
      const m = event.data;
      if (m.t === 'here' && m.to === this.peerId) found.add(m.from);
    };
    channel.postMessage({ t: 'who', from: this.peerId } satisfies Message);
    // A channel has no membership list: ask, and take the answers that come within a moment.
    await new Promise((resolve) => setTimeout(resolve, BROADCAST_CHANNEL_LOOKUP_MS));
    channel.close();
    return [...found].map((peerId) => ({ peerId, addresses: [`broadcast-channel://${key}/${peerId}`] }));
  }

  async connect(topic: TopicHash, options: ConnectOptions = {}): Promise<AsyncIterable<Connection>> {
    this.#assertOpen();
    assertTopic(topic);
    const { signal } = options;
    if (signal?.aborted) throw new AbortError();
    const key = topicToHex(topic);
    if (this.#joins.has(key)) throw new TopicAlreadyJoinedError(key);
    await this.announce(topic);
    if (signal?.aborted || this.#closed) {
      this.#unannounce(key);
      throw signal?.aborted ? new AbortError() : new TransportClosedError('broadcast-channel transport is disconnected');
    }
    const channel = new BroadcastChannel(this.#prefix + key);
    const join: Join = { channel, queue: new AsyncQueue<Connection>(), connections: new Map() };
    this.#joins.set(key, join);
    const open = (peer: string): void => {
      if (join.connections.has(peer)) return;
      const conn = new ChannelConnection(channel, this.peerId, peer, topic, this.maxMessageSize);
      join.connections.set(peer, conn);
      conn.onClose(() => {
        if (join.connections.get(peer) === conn) join.connections.delete(peer);
      });
      join.queue.push(conn);
    };
    channel.onmessage = (event: MessageEvent<Message>) => {
      const m = event.data;
      if (m.from === this.peerId || ('to' in m && m.to !== undefined && m.to !== this.peerId)) return;
      switch (m.t) {
        case 'hello':
          open(m.from);
          channel.postMessage({ t: 'welcome', from: this.peerId, to: m.from } satisfies Message);
          break;
        case 'welcome':
          open(m.from);
          break;
        case 'data':
          join.connections.get(m.from)?.deliver(m.data);
          break;
        case 'bye':
          join.connections.get(m.from)?.markClosed();
          break;
        default:
          break;
      }
    };
    channel.postMessage({ t: 'hello', from: this.peerId } satisfies Message);
    signal?.addEventListener('abort', () => this.#leave(key), { once: true });
    return join.queue;
  }

  disconnect(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const key of [...this.#joins.keys()]) this.#leave(key);
    for (const key of [...this.#announced.keys()]) this.#unannounce(key);
    (globalThis as { removeEventListener?: (type: string, fn: () => void) => void }).removeEventListener?.('pagehide', this.#onPageHide);
    return Promise.resolve();
  }

  #leave(key: string): void {
    const join = this.#joins.get(key);
    if (!join) return;
    this.#joins.delete(key);
    join.channel.postMessage({ t: 'bye', from: this.peerId } satisfies Message);
    for (const conn of join.connections.values()) conn.markClosed();
    join.connections.clear();
    join.channel.close();
    join.queue.end();
    this.#unannounce(key);
  }

  #unannounce(key: string): void {
    this.#announced.get(key)?.close();
    this.#announced.delete(key);
  }

  #assertOpen(): void {
    if (this.#closed) throw new TransportClosedError('broadcast-channel transport is disconnected');
  }
}
