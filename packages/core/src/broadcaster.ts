import { InvalidArgumentError } from './errors.js';

/** Sent to a subscriber that fell behind: `missed` events were dropped from its buffer. */
export interface LaggedEvent {
  type: 'lagged';
  missed: number;
}

/** Default per-subscriber buffer, in events. */
export const DEFAULT_SUBSCRIBER_CAPACITY = 1024;

/** Options of {@link SyncBroadcaster.subscribe}. */
export interface SubscribeOptions {
  /** Events buffered for this subscriber before the oldest are dropped (default 1024). */
  capacity?: number;
}

/** A subscriber's view of a {@link SyncBroadcaster}: async-iterable until `unsubscribe()`. */
export interface Subscription<E> extends AsyncIterable<E | LaggedEvent> {
  /** The next event, or `null` once unsubscribed (or the broadcaster closed) and drained. */
  next(): Promise<E | LaggedEvent | null>;
  /** Stops delivery; a pending `next()` resolves `null`. Idempotent. */
  unsubscribe(): void;
}

class Subscriber<E> implements Subscription<E> {
  readonly #capacity: number;
  readonly #owner: SyncBroadcaster<E>;
  // Ring buffer: fixed array, head index and count; a full buffer overwrites the oldest.
  readonly #ring: Array<E | undefined>;
  #head = 0;
  #count = 0;
  #missed = 0;
  #done = false;
  #waiter: ((v: E | LaggedEvent | null) => void) | null = null;

  constructor(owner: SyncBroadcaster<E>, capacity: number) {
    this.#owner = owner;
    this.#capacity = capacity;
    this.#ring = new Array<E | undefined>(capacity);
  }

  offer(event: E): void {
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = null;
      waiter(event);
      return;
    }
    if (this.#count === this.#capacity) {
      // Drop the oldest: the publisher never waits for a slow subscriber.
      this.#ring[this.#head] = event;
      this.#head = (this.#head + 1) % this.#capacity;
      this.#missed++;
      return;
    }
    this.#ring[(this.#head + this.#count) % this.#capacity] = event;
    this.#count++;
  }

  next(): Promise<E | LaggedEvent | null> {
    if (this.#missed > 0) {
      const missed = this.#missed;
      this.#missed = 0;
      return Promise.resolve({ type: 'lagged', missed });
    }
    if (this.#count > 0) {
      const event = this.#ring[this.#head] as E;
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#capacity;
      this.#count--;
      return Promise.resolve(event);
    }
    if (this.#done) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  unsubscribe(): void {
    if (this.#done) return;
    this.#done = true;
    this.#owner.detach(this);
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.(null);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<E | LaggedEvent> {
    try {
      for (;;) {
        const event = await this.next();
        if (event === null) return;
        yield event;
      }
    } finally {
      // Breaking out of `for await` ends the subscription.
      this.unsubscribe();
    }
  }
}

/**
 * Fans events out to any number of subscribers. Each subscriber has a bounded buffer; one
 * that falls behind loses its oldest events, then reads `{ type: 'lagged', missed }` followed
 * by the newest ones. Publishing is O(subscribers), synchronous, and never waits.
 *
 * @example
 * ```ts
 * const events = new SyncBroadcaster<SyncEvent>();
 * const sub = events.subscribe();
 * events.publish({ type: 'synced', peerId: 'p1' });
 * for await (const e of sub) console.log(e.type);
 * ```
 */
export class SyncBroadcaster<E> {
  /** Made at the first subscription: most databases' broadcasters are never subscribed to. */
  #subscribers: Set<Subscriber<E>> | null = null;
  #closed = false;

  /** Number of live subscriptions. */
  get subscriberCount(): number {
    return this.#subscribers?.size ?? 0;
  }

  /** Delivers `event` to every subscriber; returns how many received it. */
  publish(event: E): number {
    const subscribers = this.#subscribers;
    if (this.#closed || subscribers === null) return 0;
    for (const s of subscribers) s.offer(event);
    return subscribers.size;
  }

  /** A new subscription that sees events published from now on. A bad `capacity` throws `ERR_INVALID_ARGUMENT`. */
  subscribe(options: SubscribeOptions = {}): Subscription<E> {
    const capacity = options.capacity ?? DEFAULT_SUBSCRIBER_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new InvalidArgumentError('capacity must be a positive integer');
    }
    const sub = new Subscriber<E>(this, capacity);
    if (this.#closed) sub.unsubscribe();
    else (this.#subscribers ??= new Set()).add(sub);
    return sub;
  }

  /** Ends every subscription (they drain what they hold, then end); later publishes are no-ops. */
  close(): void {
    this.#closed = true;
    for (const s of [...(this.#subscribers ?? [])]) s.unsubscribe();
  }

  /** @internal */
  detach(sub: Subscriber<E>): void {
    this.#subscribers?.delete(sub);
  }
}
