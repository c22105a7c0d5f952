/**
 * Inbound flow control of the relay client: every Connection on the socket has its own bounded
 * inbox, and no Connection can stall the socket (see ARCHITECTURE.md § Relay, The client).
 *
 * The socket is always read. A Connection whose reader falls more than `maxMessages` messages
 * or `maxBytes` bytes behind is closed on its own with {@link SlowConsumerError}
 * (`ERR_SLOW_CONSUMER`): its unread messages are dropped, its reader's next `receive()` rejects
 * with the error, the remote peer sees the pair close (PEER_CLOSED), and `onError` hears about it.
 * Every other Connection of the socket — the database's sessions included — carries on
 * untouched. (The old design paused the whole socket instead: one unread app Connection then
 * stopped every topic and peer, and hid the link from both liveness checks.)
 *
 * @packageDocumentation
 */
import { QueuedConnection, SlowConsumerError, topicToHex } from '@rhizome/core';

/** Per-Connection bounds on unread inbound data. */
export interface InboundBounds {
  /** Unread messages one Connection may hold. */
  readonly maxMessages: number;
  /** Unread bytes one Connection may hold. */
  readonly maxBytes: number;
}

/** Default bounds: 8,192 messages, 32 MiB — per Connection. */
export const DEFAULT_INBOUND_BOUNDS: InboundBounds = Object.freeze({ maxMessages: 8192, maxBytes: 32 * 1024 * 1024 });

/** What {@link inboundOverflow} needs of a Connection. */
export interface InboxView {
  readonly peerId: string;
  readonly topic: Uint8Array;
  readonly buffered: number;
  readonly bufferedBytes: number;
}

/** The error that closes `conn` if its inbox is past `bounds`, else null. */
export function inboundOverflow(conn: InboxView, bounds: InboundBounds): SlowConsumerError | null {
  const messages = conn.buffered;
  const bytes = conn.bufferedBytes;
  if (messages <= bounds.maxMessages && bytes <= bounds.maxBytes) return null;
  return new SlowConsumerError(
    `connection to ${conn.peerId} on topic ${topicToHex(conn.topic).slice(0, 16)}… closed: its reader fell behind ` +
      `(${messages} unread messages, ${bytes} bytes; bounds ${bounds.maxMessages} / ${bounds.maxBytes})`,
    messages,
    bytes,
  );
}

// ---------------------------------------------------------------------------------------------
// Credit (window) flow control per Connection, end to end through the relay.
//
// Both peers of a pair start with an implicit window of INITIAL_WINDOW_BYTES towards each other.
// Each side, on pairing, sends WINDOW(0) — "I speak WINDOW" — and then, as its reader takes
// messages, WINDOW(n) for the bytes it consumed (in steps of at least a quarter window). A sender
// whose window is used up waits: its `send()` does not resolve until the reader has made room, so
// a slow reader slows down its own sender and nobody else (not the socket, not the relay's
// buffer towards it, which a compliant sender can fill by at most one window). A peer that never
// says WINDOW (an older client) within LEGACY_WINDOW_WAIT_MS of running out is treated as legacy:
// unlimited, as before, with the inbox bound above as the guard. Costs count each message as its
// length plus MESSAGE_COST_OVERHEAD, so a window of tiny messages stays under the message bound.

/** The window each side grants the other when a pair forms. */
export const INITIAL_WINDOW_BYTES = 4 * 1024 * 1024;
/** Credit counted per message on top of its length (bounds the message count a window allows). */
export const MESSAGE_COST_OVERHEAD = 512;
/** How long a sender whose implicit window ran out waits for a peer that never said WINDOW. */
export const LEGACY_WINDOW_WAIT_MS = 5000;

/** Credit a message costs. */
export function messageCost(length: number): number {
  return length + MESSAGE_COST_OVERHEAD;
}

/** The sending side of one Connection's window (what the transport's send path asks of it). */
export interface SendWindow {
  /** Bytes the peer lets us send right now (Infinity for a legacy peer). */
  readonly credit: number;
  /** True once the peer said WINDOW. */
  readonly negotiated: boolean;
  /** The peer cannot speak WINDOW (the relay does not forward it): no limit. */
  disable(): void;
  /** A WINDOW from the peer: it speaks WINDOW, and grants `credit` more bytes. */
  grant(credit: number): void;
  /** Resolves once a message costing `cost` may be sent, having spent its credit. FIFO. */
  acquire(cost: number): Promise<void>;
  /** True if a message costing `cost` could take its credit now ({@link tryAcquire} would succeed). */
  canAcquire(cost: number): boolean;
  /** {@link acquire} without waiting: takes the credit and returns true, or takes nothing and returns false. */
  tryAcquire(cost: number): boolean;
}

/** {@link WindowedConnection}'s view of its peer: not heard from yet, speaks WINDOW, legacy (unlimited). */
const UNKNOWN = 0;
const SPEAKS = 1;
const LEGACY = 2;
/** Largest credit a window keeps (2^44 bytes: far beyond any grant sequence, and `credit * 4 + speaks` stays exact). */
const MAX_CREDIT = 2 ** 44;

/** What a window holds only while sends wait, while the legacy timer runs, or once closed. */
interface WindowWait {
  /** Sends waiting for credit, FIFO. */
  waiters: Array<{ cost: number; resolve: () => void; reject: (e: unknown) => void }>;
  timer: ReturnType<typeof setTimeout> | null;
  closed: boolean;
  error: unknown;
}

/**
 * A Connection that is its own {@link SendWindow} (the relay's: one object per remote peer, not
 * two — an idle replica holds one per remote replica). Its window is one small number while
 * nothing waits; waiters, the legacy timer and the close error live in a side object made only
 * while needed.
 */
export abstract class WindowedConnection extends QueuedConnection implements SendWindow {
  /**
   * The credit and whether the peer speaks WINDOW ({@link UNKNOWN}, {@link SPEAKS} or
   * {@link LEGACY}) as one small integer, `credit * 4 + speaks` (one field, not two: an idle
   * replica holds a Connection per remote replica). Credit may go below zero (a message larger
   * than the window); it is capped at {@link MAX_CREDIT} so the sum stays exact.
   */
  #window = INITIAL_WINDOW_BYTES * 4 + UNKNOWN;
  /** Null while no send waits, no legacy timer runs and the window is open (the usual state of an idle pair). */
  #wait: WindowWait | null = null;

  private get speaks(): number {
    return ((this.#window % 4) + 4) % 4;
  }

  private set speaks(speaks: number) {
    this.#window = this.creditLeft * 4 + speaks;
  }

  private get creditLeft(): number {
    return (this.#window - this.speaks) / 4;
  }

  private set creditLeft(credit: number) {
    this.#window = Math.min(MAX_CREDIT, credit) * 4 + this.speaks;
  }

  /** The window (this Connection itself). */
  get sendWindow(): SendWindow {
    return this;
  }

  get credit(): number {
    return this.speaks === LEGACY ? Infinity : this.creditLeft;
  }

  get negotiated(): boolean {
    return this.speaks === SPEAKS;
  }

  disable(): void {
    this.speaks = LEGACY;
    this.clearLegacyTimer();
    this.release();
  }

  grant(credit: number): void {
    if (this.speaks === LEGACY) return;
    this.speaks = SPEAKS;
    this.creditLeft += credit;
    this.clearLegacyTimer();
    this.release();
  }

  acquire(cost: number): Promise<void> {
    let wait = this.#wait;
    if (wait !== null && wait.closed) return Promise.reject(wait.error);
    if ((wait === null || wait.waiters.length === 0) && this.take(cost)) return Promise.resolve();
    wait = this.#wait ??= { waiters: [], timer: null, closed: false, error: null };
    const w = wait;
    return new Promise((resolve, reject) => {
      w.waiters.push({ cost, resolve, reject });
      if (this.speaks === UNKNOWN && w.timer === null) {
        w.timer = setTimeout(() => {
          w.timer = null;
          if (this.speaks !== UNKNOWN) return;
          this.speaks = LEGACY;
          this.release();
        }, LEGACY_WINDOW_WAIT_MS);
        (w.timer as { unref?: () => void }).unref?.();
      }
    });
  }

  canAcquire(cost: number): boolean {
    const wait = this.#wait;
    if (wait !== null && (wait.closed || wait.waiters.length > 0)) return false;
    return this.speaks === LEGACY || this.creditLeft >= Math.min(cost, INITIAL_WINDOW_BYTES);
  }

  tryAcquire(cost: number): boolean {
    const wait = this.#wait;
    return (wait === null || (!wait.closed && wait.waiters.length === 0)) && this.take(cost);
  }

  /** The Connection closed: waiting sends reject with `error`, and so do later ones. */
  protected closeWindow(error: unknown): void {
    const wait = (this.#wait ??= { waiters: [], timer: null, closed: false, error: null });
    if (wait.closed) return;
    wait.closed = true;
    wait.error = error;
    if (wait.timer !== null) clearTimeout(wait.timer);
    wait.timer = null;
    const waiters = wait.waiters;
    wait.waiters = [];
    for (const w of waiters) w.reject(error);
  }

  private take(cost: number): boolean {
    if (this.speaks === LEGACY) return true;
    // A message larger than a whole window goes once the window is full (it can never fit otherwise).
    if (this.creditLeft < Math.min(cost, INITIAL_WINDOW_BYTES)) return false;
    this.creditLeft -= cost;
    return true;
  }

  private release(): void {
    const wait = this.#wait;
    if (wait === null) return;
    const waiters = wait.waiters;
    while (waiters.length > 0 && this.take(waiters[0]!.cost)) waiters.shift()!.resolve();
    this.settle(wait);
  }

  private clearLegacyTimer(): void {
    const wait = this.#wait;
    if (wait === null) return;
    if (wait.timer !== null) clearTimeout(wait.timer);
    wait.timer = null;
    this.settle(wait);
  }

  /** Drops the side object once it holds nothing. */
  private settle(wait: WindowWait): void {
    if (!wait.closed && wait.timer === null && wait.waiters.length === 0 && this.#wait === wait) this.#wait = null;
  }
}

/**
 * The receiving side, as one number a Connection keeps (no object per Connection): the reader,
 * having taken `consumed` bytes of credit not granted back yet, takes a message of `length` bytes.
 * Returns the credit taken and still held (>= 0) or, once a quarter window accumulated, minus
 * the credit to grant back now (the held credit is then 0).
 */
export function receiveCredit(consumed: number, length: number): number {
  const total = consumed + messageCost(length);
  return total < INITIAL_WINDOW_BYTES / 4 ? total : -total;
}

/**
 * Longest a WINDOW(0) ("I speak WINDOW") of a newly paired Connection is held for a data frame to
 * go with (transport.ts `#oweWindow`): held until the next data frame leaves on the socket, or this
 * long at most. A pair's opening messages (the sync layer's replica id, step 1, awareness) follow
 * the pairing a few milliseconds later, in another tick: sent at once, each WINDOW(0) was a socket
 * write — and a read on the relay — of its own. Held, they leave in the same tick as those
 * messages, in one write (link.ts corks a tick's frames). A peer needs our WINDOW(0) only once it
 * has used the implicit window (4 MiB) and then waits {@link LEGACY_WINDOW_WAIT_MS} for it, far
 * longer than the hold.
 */
export const WINDOW_ANNOUNCE_DELAY_MS = 2000;
