import { ConnectionClosedError, InvalidArgumentError, type RhizomeError } from './errors.js';
import type { ConnectionListener } from './types.js';

interface SpaceWaiter {
  limit: number;
  resolve: () => void;
}

/** A consumer that takes each item as it is pushed (see {@link AsyncQueue.listen}). */
export interface QueueListener<T> {
  /** One item, in order; called from inside `push` (or `listen`, for items already buffered). */
  onItem(item: T): void;
  /** The queue ended: `error` is what `fail` was given, undefined after `end`. Called once. */
  onEnd(error?: unknown): void;
}

/**
 * An unbounded-by-type, bounded-by-policy FIFO with one async consumer: `push` from event
 * handlers, `shift()` or `for await` to consume, `end()` to finish (buffered items are still
 * read), `fail()` to finish with an error. Transports build their Connections on it.
 *
 * `size` and {@link AsyncQueue.whenBelow} let a producer apply backpressure.
 */
/** The buffer of a queue holding nothing: one shared empty array (frozen: pushing to it would throw). */
const NO_ITEMS: unknown[] = Object.freeze([]) as unknown as unknown[];

export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #measure: ((item: T) => number) | undefined;
  readonly #onTake: ((item: T) => void) | undefined;
  #bytes = 0;
  /** {@link NO_ITEMS} while nothing is buffered (a listened-to queue, an idle database's connection stream, stays so). */
  #items: T[] = NO_ITEMS as T[];
  #head = 0;
  #ended = false;
  #error: unknown = undefined;
  #waiter: { resolve: (v: T | null) => void; reject: (e: unknown) => void } | null = null;
  #listener: QueueListener<T> | null = null;
  #spaceWaiters: SpaceWaiter[] | null = null;

  /**
   * @param options.measure - size of an item (e.g. its byte length); {@link AsyncQueue.bytes}
   *   then sums the sizes of the buffered items.
   * @param options.onTake - called with each item as the consumer takes it (flow-control credit).
   */
  constructor(options: { measure?: (item: T) => number; onTake?: (item: T) => void } = {}) {
    this.#measure = options.measure;
    this.#onTake = options.onTake;
  }

  /** Sum of `measure(item)` over the buffered items (0 without a `measure`). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Items buffered and not yet consumed. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** True once `end()` or `fail()` was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Appends an item; returns false (and drops it) once the queue has ended. */
  push(item: T): boolean {
    if (this.#ended) return false;
    const listener = this.#listener;
    if (listener !== null) {
      this.#onTake?.(item);
      listener.onItem(item);
      return true;
    }
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = null;
      waiter.resolve(item);
      this.#onTake?.(item);
      return true;
    }
    if ((this.#items as unknown[]) === NO_ITEMS) this.#items = [item];
    else this.#items.push(item);
    if (this.#measure) this.#bytes += this.#measure(item);
    return true;
  }

  /** No more items; the consumer reads what is buffered, then gets `null`. Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.resolve(null);
    this.releaseSpaceWaiters(true);
    this.endListener(undefined);
  }

  /** Ends the queue with an error: buffered items are dropped, the consumer's next read rejects. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#items = NO_ITEMS as T[];
    this.#head = 0;
    this.#bytes = 0;
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.reject(error);
    this.releaseSpaceWaiters(true);
    this.endListener(error);
  }

  /**
   * Hands every item to `listener` as it is pushed instead of buffering it (buffered items first,
   * synchronously), and `listener.onEnd` once the queue ends. The consumer then holds no pending
   * promise: a database waiting for connections for as long as it is open keeps one listener, not
   * a suspended loop. One consumer: not together with `shift()` or iteration.
   */
  listen(listener: QueueListener<T>): void {
    if (this.#waiter !== null || this.#listener !== null) throw new InvalidArgumentError('AsyncQueue supports a single consumer');
    this.#listener = listener;
    for (let item = this.poll(); item !== undefined; item = this.poll()) {
      listener.onItem(item);
      if (this.#listener !== listener) return;
    }
    if (this.#ended) this.endListener(this.#error);
  }

  private endListener(error: unknown): void {
    const listener = this.#listener;
    if (listener === null) return;
    this.#listener = null;
    listener.onEnd(error);
  }

  /** The next item, or `null` once ended and drained. Only one pending call at a time. */
  shift(): Promise<T | null> {
    if (this.#head < this.#items.length) {
      const item = this.#items[this.#head] as T;
      this.#items[this.#head] = undefined as T;
      this.#head++;
      if (this.#measure) this.#bytes -= this.#measure(item);
      this.#onTake?.(item);
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      this.releaseSpaceWaiters(false);
      return Promise.resolve(item);
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    if (this.#waiter || this.#listener) return Promise.reject(new Error('AsyncQueue supports a single consumer'));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** The next buffered item, taken synchronously (as `shift` would), or undefined when none is buffered. */
  poll(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head] as T;
    this.#items[this.#head] = undefined as T;
    this.#head++;
    if (this.#measure) this.#bytes -= this.#measure(item);
    this.#onTake?.(item);
    if (this.#head >= this.#items.length) {
      this.#items = NO_ITEMS as T[];
      this.#head = 0;
    }
    this.releaseSpaceWaiters(false);
    return item;
  }

  /** Resolves once fewer than `limit` items are buffered (or the queue ended). */
  whenBelow(limit: number): Promise<void> {
    if (this.size < limit || this.#ended) return Promise.resolve();
    return new Promise((resolve) => (this.#spaceWaiters ??= []).push({ limit, resolve }));
  }

  private releaseSpaceWaiters(all: boolean): void {
    const waiters = this.#spaceWaiters;
    if (waiters === null) return;
    const size = this.size;
    const keep: SpaceWaiter[] = [];
    for (const w of waiters) {
      if (all || size < w.limit) w.resolve();
      else keep.push(w);
    }
    this.#spaceWaiters = keep.length > 0 ? keep : null;
  }

  /**
   * Iterates with `shift()`. A plain iterator object, not an async generator: a consumer that
   * waits in `for await` for as long as a database is open then holds one pending promise, not a
   * suspended generator with its registers and request queue.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    let done = false;
    return {
      next: (): Promise<IteratorResult<T>> => {
        if (done) return Promise.resolve({ done: true, value: undefined });
        return this.shift().then((item) => {
          if (item !== null) return { done: false, value: item };
          done = true;
          return { done: true, value: undefined };
        });
      },
      // Like a generator's: the iteration is over (the queue itself is untouched).
      return: (value?: unknown): Promise<IteratorResult<T>> => {
        done = true;
        return Promise.resolve({ done: true, value: value as T });
      },
    };
  }
}

function byteLength(m: Uint8Array): number {
  return m.length;
}

/** Ends `queue` (fails it with `error` if given). */
function endQueue(queue: AsyncQueue<Uint8Array>, error: RhizomeError | null): void {
  if (error) queue.fail(error);
  else queue.end();
}

/** {@link QueuedConnection}'s state bits: a listener was set; closed; one `send` in flight (a count from here up). */
const LISTENED = 1;
const CLOSED = 2;
const SENDING = 4;

/**
 * Base class for Connections: an inbound {@link AsyncQueue} plus the close bookkeeping every
 * transport needs. Subclasses implement `sendFrame` and `closeRemote`.
 *
 * A reader either pulls (`receive()`, iteration: the queue is made on first use) or registers a
 * {@link ConnectionListener} with `listen()`, which gets each message as the transport delivers
 * it: an idle listening Connection holds no queue, no pending promise and no suspended reader.
 */
export abstract class QueuedConnection {
  readonly peerId: string;
  /**
   * The topic (a subclass's: a field, or a getter where the transport keeps the topic once for
   * all its Connections of that topic, as the relay's).
   */
  abstract readonly topic: Uint8Array;
  abstract readonly transport: string;
  /**
   * The reader, one field for both kinds: before {@link listen}, a pulling reader's inbound queue
   * (null until first used); after it, the listener (null once it heard the end). An idle replica
   * holds a Connection per remote replica.
   */
  #reader: AsyncQueue<Uint8Array> | ConnectionListener | null = null;
  /**
   * Listened, closed, and the `send` calls not settled yet ({@link trySend} never overtakes them)
   * as one small number: {@link LISTENED}, {@link CLOSED}, the count from bit 2 (one field, not
   * three: an idle replica holds a Connection per remote replica).
   */
  #state = 0;
  /**
   * Before the close: the `onClose` callbacks (null while none); after it: why it failed (null:
   * a plain close). One field for both: the callbacks run and are dropped at the close.
   */
  #onCloseOrFailure: Array<() => void> | RhizomeError | null = null;

  constructor(peerId: string) {
    this.peerId = peerId;
  }

  private get listened(): boolean {
    return (this.#state & LISTENED) !== 0;
  }

  /** The pulling reader's inbound queue, null while none (and after {@link listen}). */
  private get queue(): AsyncQueue<Uint8Array> | null {
    return this.listened ? null : (this.#reader as AsyncQueue<Uint8Array> | null);
  }

  /** The listener, null before {@link listen} and once it heard the end. */
  private get listener(): ConnectionListener | null {
    return this.listened ? (this.#reader as ConnectionListener | null) : null;
  }

  /** The inbound queue of a pulling reader (made on first use). */
  protected get inbox(): AsyncQueue<Uint8Array> {
    const queue = this.queue;
    if (queue !== null) return queue;
    const inbox = new AsyncQueue<Uint8Array>({ measure: byteLength, onTake: (m) => this.consumed(m) });
    const failure = this.failure;
    if (failure !== null) inbox.fail(failure);
    else if (this.closedFlag) inbox.end();
    if (!this.listened) this.#reader = inbox;
    // A read after listen() (not allowed, see there) gets nothing: a queue of its own that ends
    // with the connection, as it did when the queue and the listener had a field each.
    else if (!this.closedFlag) this.onClose(() => endQueue(inbox, this.failure));
    return inbox;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  private get closedFlag(): boolean {
    return (this.#state & CLOSED) !== 0;
  }

  /** Why the connection failed (null: open, or closed without an error). */
  private get failure(): RhizomeError | null {
    return this.closedFlag ? (this.#onCloseOrFailure as RhizomeError | null) : null;
  }

  /** Messages received and not yet read. */
  get buffered(): number {
    return this.queue?.size ?? 0;
  }

  /** Bytes of the messages received and not yet read. */
  get bufferedBytes(): number {
    return this.queue?.bytes ?? 0;
  }

  receive(): Promise<Uint8Array | null> {
    return this.inbox.shift();
  }

  /**
   * Hands every message to `listener` as it arrives instead of queueing it (messages already
   * queued first, synchronously); `listener.onEnd` once closed. One listener, and no `receive()`
   * or iteration after it.
   */
  listen(listener: ConnectionListener): void {
    if (this.listened) throw new InvalidArgumentError('this connection already has a listener');
    const inbox = this.queue;
    this.#state |= LISTENED;
    this.#reader = listener;
    if (inbox !== null) {
      for (let m = inbox.poll(); m !== undefined; m = inbox.poll()) {
        listener.onMessage(m);
        if (this.#reader !== listener) return;
      }
    }
    if (this.closedFlag) this.notifyEnd(listener);
  }

  async send(data: Uint8Array): Promise<void> {
    if (this.closedFlag) throw new ConnectionClosedError();
    this.#state += SENDING;
    try {
      await this.sendFrame(data);
    } finally {
      this.#state -= SENDING;
    }
  }

  /**
   * Sends `data` now if the transport takes it without waiting; `false`: nothing sent, use `send`
   * (see `Connection.trySend`). Also `false` while a `send` is in flight, so it never overtakes one.
   */
  trySend(data: Uint8Array): boolean {
    // Neither closed nor a send in flight: every bit but LISTENED clear.
    return (this.#state & ~LISTENED) === 0 && this.trySendFrame(data);
  }

  /** Transport-side {@link trySend}: sends and returns `true` only if nothing has to wait. Default: never. */
  protected trySendFrame(_data: Uint8Array): boolean {
    return false;
  }

  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.markClosed();
    await this.closeRemote();
  }

  /** Registers a callback run once when the connection closes, from either side. */
  onClose(fn: () => void): void {
    if (this.closedFlag) fn();
    else ((this.#onCloseOrFailure ??= []) as Array<() => void>).push(fn);
  }

  /** Transport-side: a message arrived. */
  deliver(data: Uint8Array): void {
    if (!this.listened) {
      this.inbox.push(data);
      return;
    }
    // (The listener is null once it heard the end: the connection is closed.)
    const listener = this.#reader as ConnectionListener | null;
    if (listener === null || this.closedFlag) return;
    listener.onMessage(data);
    this.consumed(data);
  }

  /** Transport-side: the connection is closed (remote close, socket loss or local close). */
  markClosed(): void {
    this.closeWith(null);
  }

  /**
   * Transport-side: the connection is closed because of `error` (e.g. its reader fell behind):
   * unread messages are dropped and the reader's next `receive()` (or iteration) rejects with it.
   */
  markFailed(error: RhizomeError): void {
    this.closeWith(error);
  }

  private closeWith(error: RhizomeError | null): void {
    if (this.closedFlag) return;
    const callbacks = this.#onCloseOrFailure as Array<() => void> | null;
    this.#state |= CLOSED;
    this.#onCloseOrFailure = error;
    const queue = this.queue;
    if (queue !== null) endQueue(queue, error);
    this.onClosed();
    if (callbacks !== null) for (const fn of callbacks) fn();
    const listener = this.listener;
    if (listener !== null) this.notifyEnd(listener);
  }

  private notifyEnd(listener: ConnectionListener): void {
    this.#reader = null;
    listener.onEnd(this.failure);
  }

  /** Called once when the connection closes, before the `onClose` callbacks (transport bookkeeping). */
  protected onClosed(): void {}

  /** Called with each message as the reader takes it (a transport with flow control grants credit here). */
  protected consumed(_message: Uint8Array): void {}

  protected abstract sendFrame(data: Uint8Array): Promise<void>;
  protected abstract closeRemote(): Promise<void>;

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.inbox[Symbol.asyncIterator]();
  }
}
