// The chaos harness's network: an in-process network of Transports (like core's MemoryTransport)
// whose links inject seeded faults: drop, delay, reorder, duplicate, cut and heal. Every link is
// one pair of Connections between two members joined to one topic; a cut closes both ends (each
// side sees the close, as on a network) and a heal pairs the two members again with fresh
// Connections, so their sessions reconcile by state vectors.
import { ConnectionClosedError, QueuedConnection, AsyncQueue, TransportClosedError, topicToHex } from '@rhizome/core';
import type { Connection, ConnectOptions, PeerInfo, TopicHash, Transport } from '@rhizome/core';
import type { Rng } from './chaos-rng.js';

/** Probabilities (per frame) and delays of the faults on every link. All zero: a clean network. */
export interface FaultSettings {
  drop: number;
  duplicate: number;
  reorder: number;
  delay: number;
  /** Largest injected delay, ms. */
  maxDelayMs: number;
}

export const CLEAN: FaultSettings = { drop: 0, duplicate: 0, reorder: 0, delay: 0, maxDelayMs: 0 };

/** Counts of injected faults, by kind. */
export type FaultCounts = Record<'drop' | 'duplicate' | 'reorder' | 'delay' | 'cut' | 'heal', number>;

export function emptyCounts(): FaultCounts {
  return { drop: 0, duplicate: 0, reorder: 0, delay: 0, cut: 0, heal: 0 };
}

/** Largest frame a chaos link carries (the sync layer chunks above it). */
const MAX_MESSAGE_SIZE = 256 * 1024;

class ChaosConnection extends QueuedConnection implements Connection {
  readonly transport = 'memory';
  readonly topic: TopicHash;
  remote!: ChaosConnection;
  readonly #link: Link;
  /** A frame held back to be delivered after the next one (reorder). */
  #held: Uint8Array | null = null;

  constructor(link: Link, remotePeerId: string, topic: TopicHash) {
    super(remotePeerId);
    this.topic = topic.slice();
    this.#link = link;
  }

  protected async sendFrame(data: Uint8Array): Promise<void> {
    const net = this.#link.net;
    const copy = data.slice();
    const f = net.faults;
    const rng = net.rng;
    if (f.drop > 0 && rng.next() < f.drop) {
      net.counts.drop++;
      return;
    }
    if (f.reorder > 0 && this.#held === null && rng.next() < f.reorder) {
      net.counts.reorder++;
      this.#held = copy;
      // Released after the next frame, or soon if none follows.
      const held = copy;
      setTimeout(() => {
        if (this.#held === held) {
          this.#held = null;
          this.#deliver(held);
        }
      }, 5).unref();
      return;
    }
    const delayed = f.delay > 0 && rng.next() < f.delay;
    const duplicate = f.duplicate > 0 && rng.next() < f.duplicate;
    const deliver = (): void => {
      this.#deliver(copy);
      if (duplicate) this.#deliver(copy.slice());
      if (this.#held !== null) {
        const held = this.#held;
        this.#held = null;
        this.#deliver(held);
      }
    };
    if (duplicate) net.counts.duplicate++;
    if (delayed) {
      net.counts.delay++;
      setTimeout(deliver, 1 + Math.floor(rng.next() * f.maxDelayMs)).unref();
    } else {
      setImmediate(deliver);
    }
    // Backpressure, like a socket: wait while the receiver holds many unread frames.
    await this.remote.inbox.whenBelow(1024);
  }

  #deliver(data: Uint8Array): void {
    if (!this.remote.closed) this.remote.deliver(data);
  }

  protected closeRemote(): Promise<void> {
    setImmediate(() => this.remote.markClosed());
    this.#link.closed();
    return Promise.resolve();
  }
}

class Link {
  readonly net: ChaosNet;
  readonly key: string;
  readonly a: ChaosConnection;
  readonly b: ChaosConnection;
  #open = true;

  constructor(net: ChaosNet, key: string, a: Member, b: Member, topic: TopicHash) {
    this.net = net;
    this.key = key;
    this.a = new ChaosConnection(this, b.transport.peerId, topic);
    this.b = new ChaosConnection(this, a.transport.peerId, topic);
    this.a.remote = this.b;
    this.b.remote = this.a;
    this.a.onClose(() => this.closed());
    this.b.onClose(() => this.closed());
  }

  get open(): boolean {
    return this.#open;
  }

  closed(): void {
    if (!this.#open) return;
    this.#open = false;
    if (this.net.links.get(this.key) === this) this.net.links.delete(this.key);
  }

  cut(): void {
    this.a.markClosed();
    this.b.markClosed();
    this.closed();
  }
}

interface Member {
  transport: ChaosTransport;
  topicKey: string;
  topic: TopicHash;
  queue: AsyncQueue<Connection>;
}

/** The network: members by peer id, links by pair, the fault settings, the seeded RNG. */
export class ChaosNet {
  readonly rng: Rng;
  faults: FaultSettings = { ...CLEAN };
  readonly counts: FaultCounts = emptyCounts();
  readonly members = new Map<string, Member>();
  readonly links = new Map<string, Link>();

  constructor(rng: Rng) {
    this.rng = rng;
  }

  static pairKey(a: string, b: string): string {
    return a < b ? `${a}|${b}` : `${b}|${a}`;
  }

  /** @internal */
  join(member: Member): void {
    this.members.set(member.transport.peerId, member);
    for (const other of this.members.values()) {
      if (other !== member && other.topicKey === member.topicKey) this.#pair(member, other);
    }
  }

  /** @internal */
  leave(peerId: string): void {
    this.members.delete(peerId);
    for (const link of [...this.links.values()]) {
      if (link.key.split('|').includes(peerId)) link.cut();
    }
  }

  #pair(x: Member, y: Member): void {
    const key = ChaosNet.pairKey(x.transport.peerId, y.transport.peerId);
    if (this.links.get(key)?.open) return;
    const link = new Link(this, key, x, y, x.topic);
    this.links.set(key, link);
    // Asynchronous, as on a network.
    setImmediate(() => {
      if (!link.a.closed) x.queue.push(link.a);
      if (!link.b.closed) y.queue.push(link.b);
    });
  }

  /** Cuts the link between two members (both sides see the close). Returns false if there was none. */
  cut(a: string, b: string): boolean {
    const link = this.links.get(ChaosNet.pairKey(a, b));
    if (!link) return false;
    this.counts.cut++;
    link.cut();
    return true;
  }

  /** Pairs every two joined members that have no open link. Returns how many links it made. */
  heal(): number {
    let made = 0;
    const list = [...this.members.values()];
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const x = list[i]!;
        const y = list[j]!;
        if (x.topicKey !== y.topicKey || this.links.get(ChaosNet.pairKey(x.transport.peerId, y.transport.peerId))?.open) continue;
        this.#pair(x, y);
        made++;
      }
    }
    this.counts.heal += made;
    return made;
  }

  /** Cuts every link and pairs everyone again on a clean network: every session starts afresh. */
  resetAll(): void {
    this.faults = { ...CLEAN };
    for (const link of [...this.links.values()]) link.cut();
    this.heal();
  }
}

/** A member of a {@link ChaosNet}: one replica's transport. */
export class ChaosTransport implements Transport {
  readonly name = 'memory';
  readonly maxMessageSize = MAX_MESSAGE_SIZE;
  readonly peerId: string;
  readonly #net: ChaosNet;
  #joined: string | null = null;
  #queue: AsyncQueue<Connection> | null = null;
  #closed = false;

  constructor(net: ChaosNet, peerId: string) {
    this.#net = net;
    this.peerId = peerId;
  }

  announce(): Promise<void> {
    return Promise.resolve();
  }

  lookup(topic: TopicHash): Promise<PeerInfo[]> {
    const key = topicToHex(topic);
    return Promise.resolve(
      [...this.#net.members.values()]
        .filter((m) => m.topicKey === key && m.transport !== this)
        .map((m) => ({ peerId: m.transport.peerId, addresses: [`chaos://${m.transport.peerId}`] })),
    );
  }

  connect(topic: TopicHash, options?: ConnectOptions): Promise<AsyncIterable<Connection>> {
    if (this.#closed) return Promise.reject(new TransportClosedError());
    if (this.#joined !== null) return Promise.reject(new ConnectionClosedError('chaos transport joins one topic'));
    const queue = new AsyncQueue<Connection>();
    this.#queue = queue;
    this.#joined = topicToHex(topic);
    this.#net.join({ transport: this, topicKey: this.#joined, topic, queue });
    options?.signal?.addEventListener('abort', () => void this.disconnect(), { once: true });
    return Promise.resolve(queue);
  }

  disconnect(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#net.leave(this.peerId);
    this.#queue?.end();
    return Promise.resolve();
  }
}
