/**
 * Outbound pacing under a relay's announced rate limits (the LIMITS frame).
 *
 * A relay holds each connection to two token buckets (frames and bytes per second, each with a
 * burst) and cuts a connection that overdraws one (4023 / 4024). A client that sends a large
 * catch-up at wire speed would be cut after the burst, reconnect, and resend the same catch-up
 * forever. So the client keeps its own copy of the buckets — with a safety margin, since the two
 * clocks differ and control frames it does not wait for also spend tokens — and each data frame
 * waits for its tokens before it is handed to the socket. Waiters are served first come, first
 * served: each Connection has at most one send in flight (the sync layer's pump), so a large
 * catch-up to one peer interleaves frame by frame with the other peers' traffic instead of
 * starving it.
 *
 * @packageDocumentation
 */
import type { RelayRateLimits } from './protocol.js';

/** Fraction of the relay's sustained rates the client uses. */
export const PACE_RATE_FRACTION = 0.85;
/** Fraction of the relay's bursts the client uses (the relay's buckets start full; ours start here). */
export const PACE_BURST_FRACTION = 0.5;

interface Waiter {
  frames: number;
  bytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Two token buckets mirroring a relay's, at {@link PACE_RATE_FRACTION} of its rates and
 * {@link PACE_BURST_FRACTION} of its bursts. `take` waits (FIFO) until a frame may be sent;
 * `charge` records a frame sent without waiting (control frames), possibly going into debt that
 * later `take`s pay back.
 */
/** The default clock: one module function, not a closure per pacer (an idle replica holds one). */
function performanceNow(): number {
  return performance.now();
}

/** A pacer's rates and bursts, derived from the relay's limits. */
interface PaceRates {
  readonly framesPerMs: number;
  readonly bytesPerMs: number;
  readonly frameBurst: number;
  readonly byteBurst: number;
}

/** No waiters: one shared empty list (frozen: pushing to it would throw). */
const NO_WAITERS: Waiter[] = Object.freeze([]) as unknown as Waiter[];

/** Rates by the limits they derive from: every transport on one relay shares one record (a process holds thousands). */
const ratesByLimits = new Map<string, PaceRates>();

function paceRates(limits: RelayRateLimits): PaceRates {
  const key = `${limits.maxFramesPerSecond} ${limits.maxBytesPerSecond} ${limits.frameBurst} ${limits.byteBurst}`;
  let rates = ratesByLimits.get(key);
  if (rates === undefined) {
    rates = Object.freeze({
      framesPerMs: (limits.maxFramesPerSecond * PACE_RATE_FRACTION) / 1000,
      bytesPerMs: (limits.maxBytesPerSecond * PACE_RATE_FRACTION) / 1000,
      frameBurst: Math.max(1, limits.frameBurst * PACE_BURST_FRACTION),
      byteBurst: Math.max(1, limits.byteBurst * PACE_BURST_FRACTION),
    });
    // A handful of relays per process, usually; bounded all the same.
    if (ratesByLimits.size >= 64) ratesByLimits.clear();
    ratesByLimits.set(key, rates);
  }
  return rates;
}

export class SendPacer {
  // (Its private methods are TypeScript-private, not `#`: a class with `#` methods costs each
  // instance a slot, ARCHITECTURE § Memory of an idle replica; a relay transport holds a pacer.)
  /** The rates and bursts (one shared frozen record per set of relay limits). */
  readonly #r: PaceRates;
  #frames: number;
  #bytes: number;
  #at: number;
  /** {@link NO_WAITERS} while none waits. */
  #waiters: Waiter[] = NO_WAITERS;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #closed: unknown = null;
  readonly #now: () => number;

  constructor(limits: RelayRateLimits, now: () => number = performanceNow) {
    this.#now = now;
    this.#r = paceRates(limits);
    this.#frames = this.frameBurst;
    this.#bytes = this.byteBurst;
    this.#at = now();
  }

  /** Frames per millisecond it lets through (a fraction of the relay's rate). */
  get framesPerMs(): number {
    return this.#r.framesPerMs;
  }

  /** Bytes per millisecond it lets through. */
  get bytesPerMs(): number {
    return this.#r.bytesPerMs;
  }

  /** Its frame burst (a fraction of the relay's). */
  get frameBurst(): number {
    return this.#r.frameBurst;
  }

  /** Its byte burst. */
  get byteBurst(): number {
    return this.#r.byteBurst;
  }

  /** Frames waiting for tokens. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Records a frame sent without waiting (control frames); the buckets may go negative. */
  charge(frames: number, bytes: number): void {
    this.refill();
    this.#frames -= frames;
    this.#bytes -= bytes;
  }

  /**
   * Resolves when a send costing `frames` frames and `bytes` bytes at the relay (one frame, or
   * one per member for a broadcast) may go, having spent its tokens. A frame larger than
   * the byte burst waits until the bucket is full and then overdraws it (the relay's own burst
   * is twice ours, so that still fits).
   */
  take(bytes: number, frames = 1): Promise<void> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    if (this.#waiters.length === 0 && this.spend(frames, bytes)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      if (this.#waiters === NO_WAITERS) this.#waiters = [];
      this.#waiters.push({ frames, bytes, resolve, reject });
      this.schedule();
    });
  }

  /** {@link take} without waiting: spends the tokens and returns true, or spends nothing and returns false. */
  tryTake(bytes: number, frames = 1): boolean {
    return this.#closed === null && this.#waiters.length === 0 && this.spend(frames, bytes);
  }

  /** Rejects every waiter (and later `take`s) with `error`: the session this pacer belonged to ended. */
  close(error: unknown): void {
    if (this.#closed !== null) return;
    this.#closed = error;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const waiters = this.#waiters;
    this.#waiters = NO_WAITERS;
    for (const w of waiters) w.reject(error);
  }

  private refill(): void {
    const now = this.#now();
    const elapsed = now - this.#at;
    if (elapsed <= 0) return;
    this.#at = now;
    this.#frames = Math.min(this.frameBurst, this.#frames + elapsed * this.framesPerMs);
    this.#bytes = Math.min(this.byteBurst, this.#bytes + elapsed * this.bytesPerMs);
  }

  private spend(frames: number, bytes: number): boolean {
    this.refill();
    // A frame above the whole burst can never be covered: it goes once the bucket is full.
    const need = Math.min(bytes, this.byteBurst);
    if (this.#frames < Math.min(frames, this.frameBurst) || this.#bytes < need) return false;
    this.#frames -= frames;
    this.#bytes -= bytes;
    return true;
  }

  /** Time (ms) until the first waiter's tokens are there. */
  private delay(w: Waiter): number {
    const need = Math.min(w.bytes, this.byteBurst);
    const needFrames = Math.min(w.frames, this.frameBurst);
    const frameWait = this.#frames >= needFrames ? 0 : (needFrames - this.#frames) / this.framesPerMs;
    const byteWait = this.#bytes >= need ? 0 : (need - this.#bytes) / this.bytesPerMs;
    return Math.max(1, Math.ceil(Math.max(frameWait, byteWait)));
  }

  private schedule(): void {
    if (this.#timer !== null || this.#waiters.length === 0) return;
    this.refill();
    this.#timer = setTimeout(() => {
      this.#timer = null;
      while (this.#waiters.length > 0) {
        const w = this.#waiters[0]!;
        if (!this.spend(w.frames, w.bytes)) break;
        this.#waiters.shift();
        w.resolve();
      }
      // Drained: back to the shared empty list (an idle pacer keeps none of its own).
      if (this.#waiters.length === 0) this.#waiters = NO_WAITERS;
      this.schedule();
    }, this.delay(this.#waiters[0]!));
  }
}
