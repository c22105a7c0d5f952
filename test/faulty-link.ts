/**
 * A Transport decorator that injects link faults on the receive side of every Connection:
 * a fixed delay per message (order kept) and a "stalled" switch that holds every message until
 * the link heals. Wrap both replicas' transports to delay or stall both directions.
 */
import { AsyncQueue } from '@rhizome/core';
import type { Connection, ConnectOptions, PeerInfo, TopicHash, Transport } from '@rhizome/core';

export class LinkFaults {
  delayMs = 0;
  #stalled = false;
  #heal: Array<() => void> = [];

  get stalled(): boolean {
    return this.#stalled;
  }

  stall(): void {
    this.#stalled = true;
  }

  heal(): void {
    this.#stalled = false;
    const waiters = this.#heal;
    this.#heal = [];
    for (const w of waiters) w();
  }

  /** Resolves when the message may be delivered. */
  async gate(): Promise<void> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    while (this.#stalled) await new Promise<void>((resolve) => this.#heal.push(resolve));
  }
}

/**
 * A Connection that hands everything to `inner` except what it delivers: that is what the subclass
 * pushes into `inbox` (delayed, held, or never ended).
 */
export abstract class InboxConnection implements Connection {
  protected readonly inner: Connection;
  protected readonly inbox = new AsyncQueue<Uint8Array>();

  constructor(inner: Connection) {
    this.inner = inner;
  }

  get peerId(): string {
    return this.inner.peerId;
  }
  get topic(): TopicHash {
    return this.inner.topic;
  }
  get transport(): string {
    return this.inner.transport;
  }
  get closed(): boolean {
    return this.inner.closed;
  }
  send(data: Uint8Array): Promise<void> {
    return this.inner.send(data);
  }
  receive(): Promise<Uint8Array | null> {
    return this.inbox.shift();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.inbox[Symbol.asyncIterator]();
  }
}

class FaultyConnection extends InboxConnection {
  readonly #faults: LinkFaults;

  constructor(inner: Connection, faults: LinkFaults) {
    super(inner);
    this.#faults = faults;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      for await (const message of this.inner) {
        await this.#faults.gate();
        this.inbox.push(message);
      }
    } catch {
      // The inner connection failed: end like a closed link.
    }
    this.inbox.end();
  }
}

export class FaultyTransport implements Transport {
  readonly #inner: Transport;
  readonly faults: LinkFaults;

  constructor(inner: Transport, faults = new LinkFaults()) {
    this.#inner = inner;
    this.faults = faults;
  }

  get name(): string {
    return this.#inner.name;
  }
  get maxMessageSize(): number {
    return this.#inner.maxMessageSize;
  }
  announce(topic: TopicHash): Promise<void> {
    return this.#inner.announce(topic);
  }
  lookup(topic: TopicHash): Promise<PeerInfo[]> {
    return this.#inner.lookup(topic);
  }
  async connect(topic: TopicHash, options?: ConnectOptions): Promise<AsyncIterable<Connection>> {
    const inner = await this.#inner.connect(topic, options);
    const faults = this.faults;
    return {
      async *[Symbol.asyncIterator]() {
        for await (const conn of inner) yield new FaultyConnection(conn, faults);
      },
    };
  }
  disconnect(): Promise<void> {
    return this.#inner.disconnect();
  }
}
