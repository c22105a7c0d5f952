import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { AsyncQueue, QueuedConnection } from './async-queue.js';
import {
  AbortError,
  FrameTooLargeError,
  InvalidConfigError,
  TopicAlreadyJoinedError,
  TransportClosedError,
} from './errors.js';
import { assertTopic, topicToHex } from './topic.js';
import type { Connection, ConnectOptions, PeerInfo, TopicHash, Transport } from './types.js';

/**
 * Runs `fn` on a later macrotask: `setImmediate` where the host has it (Node), else
 * `setTimeout(fn, 0)` (browsers), so the memory transport works in a page too.
 */
function later(fn: () => void): void {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown };
  if (typeof g.setImmediate === 'function') g.setImmediate(fn);
  else setTimeout(fn, 0);
}

/** Default largest message of the memory transport. */
export const MEMORY_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
/** Default number of undelivered messages per connection before `send` waits. */
export const MEMORY_HIGH_WATER_MARK = 1024;

/** @internal One transport's membership of one topic inside a hub. */
interface Membership {
  readonly transport: MemoryTransport;
  readonly queue: AsyncQueue<Connection>;
  readonly connections: Set<MemoryConnection>;
}

/**
 * The meeting place of {@link MemoryTransport}s in one process. Transports that join the same
 * topic on the same hub are paired, exactly once per pair. Named hubs (`MemoryHub.named`) let
 * code that only passes configuration around meet; a hub with no members left is forgotten.
 */
export class MemoryHub {
  static readonly #named = new Map<string, MemoryHub>();

  /** The hub registered under `name` in this process, created on first use. */
  static named(name: string): MemoryHub {
    let hub = MemoryHub.#named.get(name);
    if (!hub) {
      hub = new MemoryHub(name);
      MemoryHub.#named.set(name, hub);
    }
    return hub;
  }

  readonly name: string;
  readonly #members = new Map<string, MemoryTransport>();
  readonly #announced = new Map<string, Set<MemoryTransport>>();
  readonly #joined = new Map<string, Map<string, Membership>>();

  constructor(name = 'anonymous') {
    this.name = name;
  }

  /** @internal */
  register(t: MemoryTransport): void {
    if (this.#members.has(t.peerId)) {
      throw new InvalidConfigError('peerId', `peer id '${t.peerId}' is already in use on memory hub '${this.name}'`);
    }
    this.#members.set(t.peerId, t);
  }

  /** @internal */
  unregister(t: MemoryTransport): void {
    this.#members.delete(t.peerId);
    for (const set of this.#announced.values()) set.delete(t);
    if (this.#members.size === 0 && MemoryHub.#named.get(this.name) === this) MemoryHub.#named.delete(this.name);
  }

  /** @internal */
  announce(key: string, t: MemoryTransport): void {
    let set = this.#announced.get(key);
    if (!set) this.#announced.set(key, (set = new Set()));
    set.add(t);
  }

  /** @internal */
  unannounce(key: string, t: MemoryTransport): void {
    const set = this.#announced.get(key);
    set?.delete(t);
    if (set?.size === 0) this.#announced.delete(key);
  }

  /** @internal */
  lookup(key: string, self: MemoryTransport): PeerInfo[] {
    const set = this.#announced.get(key);
    if (!set) return [];
    return [...set].filter((t) => t !== self).map((t) => ({ peerId: t.peerId, addresses: [`memory://${this.name}/${t.peerId}`] }));
  }

  /** @internal Pairs the newcomer with every member already joined to the topic. */
  join(key: string, topic: TopicHash, m: Membership): void {
    let members = this.#joined.get(key);
    if (!members) this.#joined.set(key, (members = new Map()));
    for (const other of members.values()) {
      const [mine, theirs] = MemoryConnection.pair(m, other, topic);
      // Delivery is asynchronous, as on a network.
      later(() => {
        if (!mine.closed) m.queue.push(mine);
        if (!theirs.closed) other.queue.push(theirs);
      });
    }
    members.set(m.transport.peerId, m);
  }

  /** @internal */
  leave(key: string, t: MemoryTransport): void {
    const members = this.#joined.get(key);
    members?.delete(t.peerId);
    if (members?.size === 0) this.#joined.delete(key);
  }
}

/** @internal One end of an in-memory link. */
class MemoryConnection extends QueuedConnection implements Connection {
  readonly transport = 'memory';
  readonly topic: TopicHash;
  #remote!: MemoryConnection;
  readonly #maxMessageSize: number;
  readonly #highWaterMark: number;
  #outbox: Uint8Array[] = [];
  #flushScheduled = false;
  #flushed: Array<() => void> = [];

  static pair(a: Membership, b: Membership, topic: TopicHash): [MemoryConnection, MemoryConnection] {
    const ca = new MemoryConnection(a, b.transport.peerId, topic);
    const cb = new MemoryConnection(b, a.transport.peerId, topic);
    ca.#remote = cb;
    cb.#remote = ca;
    return [ca, cb];
  }

  private constructor(owner: Membership, remotePeerId: string, topic: TopicHash) {
    super(remotePeerId);
    this.topic = topic.slice();
    this.#maxMessageSize = owner.transport.maxMessageSize;
    this.#highWaterMark = owner.transport.highWaterMark;
    owner.connections.add(this);
    this.onClose(() => owner.connections.delete(this));
  }

  protected async sendFrame(data: Uint8Array): Promise<void> {
    if (data.length > this.#maxMessageSize) throw new FrameTooLargeError(data.length, this.#maxMessageSize);
    // Copy: the caller may reuse its buffer, and the receiver must not share memory with it.
    this.#outbox.push(data.slice());
    this.#scheduleFlush();
    if (this.#outbox.length >= this.#highWaterMark) {
      await new Promise<void>((resolve) => this.#flushed.push(resolve));
    }
    // (A remote that listens holds no queue: nothing to wait for.)
    if (this.#remote.buffered >= this.#highWaterMark) await this.#remote.inbox.whenBelow(this.#highWaterMark);
  }

  protected closeRemote(): Promise<void> {
    // Like a FIN: the close reaches the other side after the messages sent before it.
    this.#scheduleFlush();
    return Promise.resolve();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    later(() => {
      this.#flushScheduled = false;
      const batch = this.#outbox;
      this.#outbox = [];
      for (const data of batch) this.#remote.deliver(data);
      if (this.closed) this.#remote.markClosed();
      const waiters = this.#flushed;
      this.#flushed = [];
      for (const w of waiters) w();
    });
  }
}

/** Options of {@link MemoryTransport}. */
export interface MemoryTransportOptions {
  /** The hub to meet in: a name (process-wide registry) or a hub object. Default `'default'`. */
  hub?: string | MemoryHub;
  /** This peer's id; unique per hub. Default: random. */
  peerId?: string;
  /** Largest message; default 16 MiB. */
  maxMessageSize?: number;
  /** Undelivered messages per connection before `send` waits; default 1024. */
  highWaterMark?: number;
}

/**
 * A transport for peers in one process: real code, not a mock. It behaves like a network:
 * delivery is asynchronous, messages are copied, senders feel backpressure, and a close on
 * either side is seen by the other. Tests and examples use it.
 *
 * @example
 * ```ts
 * const a = new MemoryTransport({ hub: 'demo' });
 * const b = new MemoryTransport({ hub: 'demo' });
 * const topic = deriveTopic('my-db');
 * for await (const conn of await a.connect(topic)) await conn.send(new Uint8Array([1]));
 * ```
 */
export class MemoryTransport implements Transport {
  readonly name = 'memory';
  readonly peerId: string;
  readonly maxMessageSize: number;
  readonly highWaterMark: number;
  readonly hub: MemoryHub;
  readonly #joins = new Map<string, Membership>();
  readonly #announced = new Set<string>();
  #closed = false;

  constructor(options: MemoryTransportOptions = {}) {
    this.hub = options.hub instanceof MemoryHub ? options.hub : MemoryHub.named(options.hub ?? 'default');
    this.peerId = options.peerId ?? `mem-${bytesToHex(randomBytes(8))}`;
    this.maxMessageSize = options.maxMessageSize ?? MEMORY_MAX_MESSAGE_SIZE;
    this.highWaterMark = options.highWaterMark ?? MEMORY_HIGH_WATER_MARK;
    if (!Number.isInteger(this.maxMessageSize) || this.maxMessageSize < 1) {
      throw new InvalidConfigError('maxMessageSize', 'must be a positive integer');
    }
    if (!Number.isInteger(this.highWaterMark) || this.highWaterMark < 1) {
      throw new InvalidConfigError('highWaterMark', 'must be a positive integer');
    }
    this.hub.register(this);
  }

  async announce(topic: TopicHash): Promise<void> {
    this.#assertOpen();
    const key = topicToHex(topic);
    this.#announced.add(key);
    this.hub.announce(key, this);
  }

  async lookup(topic: TopicHash): Promise<PeerInfo[]> {
    this.#assertOpen();
    return this.hub.lookup(topicToHex(topic), this);
  }

  async connect(topic: TopicHash, options: ConnectOptions = {}): Promise<AsyncIterable<Connection>> {
    this.#assertOpen();
    assertTopic(topic);
    const { signal } = options;
    if (signal?.aborted) throw new AbortError();
    const key = topicToHex(topic);
    if (this.#joins.has(key)) throw new TopicAlreadyJoinedError(key);
    const membership: Membership = { transport: this, queue: new AsyncQueue(), connections: new Set() };
    this.#joins.set(key, membership);
    await this.announce(topic);
    // Aborted or disconnected while announcing: the abort event has fired already (and a
    // disconnect has left the topic), so leave now rather than join the hub as a ghost member.
    const aborted = signal?.aborted ?? false;
    if (aborted || this.#closed) {
      this.#leave(key);
      throw aborted ? new AbortError() : new TransportClosedError('memory transport is disconnected');
    }
    this.hub.join(key, topic, membership);
    signal?.addEventListener('abort', () => this.#leave(key), { once: true });
    return membership.queue;
  }

  disconnect(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const key of [...this.#joins.keys()]) this.#leave(key);
    for (const key of this.#announced) this.hub.unannounce(key, this);
    this.#announced.clear();
    this.hub.unregister(this);
    return Promise.resolve();
  }

  #leave(key: string): void {
    const m = this.#joins.get(key);
    if (!m) return;
    this.#joins.delete(key);
    this.hub.leave(key, this);
    this.hub.unannounce(key, this);
    this.#announced.delete(key);
    for (const c of [...m.connections]) void c.close();
    m.queue.end();
  }

  #assertOpen(): void {
    if (this.#closed) throw new TransportClosedError('memory transport is disconnected');
  }
}
