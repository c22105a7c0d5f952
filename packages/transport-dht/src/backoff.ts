/**
 * Per-peer dial backoff with a bounded memory: a peer that failed waits 1 s, 2 s, … up to
 * `maxDelayMs` before it is dialed again. An entry is only useful while its wait runs and for
 * one `maxDelayMs` after (to keep doubling for a peer that keeps failing); after that it is
 * forgotten, so stale provider records of departed peers no longer accumulate entries forever.
 * Expired entries are swept on every `fail` once the map holds more than `sweepAbove` entries,
 * and at most every `maxDelayMs` otherwise.
 */
export class PeerBackoff {
  readonly #entries = new Map<string, { until: number; delay: number }>();
  readonly #initialMs: number;
  readonly #maxDelayMs: number;
  readonly #sweepAbove: number;
  #sweptAt = 0;

  constructor(options: { initialMs?: number; maxDelayMs: number; sweepAbove?: number }) {
    this.#initialMs = options.initialMs ?? 1000;
    this.#maxDelayMs = options.maxDelayMs;
    this.#sweepAbove = options.sweepAbove ?? 256;
  }

  /** Peers remembered. */
  get size(): number {
    return this.#entries.size;
  }

  /** True while `peerId` must not be dialed. */
  blocked(peerId: string, now: number): boolean {
    const e = this.#entries.get(peerId);
    return e !== undefined && e.until > now;
  }

  /** A dial of `peerId` failed at `now`: it waits twice as long as last time (at most `maxDelayMs`). */
  fail(peerId: string, now: number): number {
    const previous = this.#entries.get(peerId);
    const fresh = previous === undefined || now - previous.until > this.#maxDelayMs;
    const delay = fresh ? this.#initialMs : Math.min(previous.delay * 2, this.#maxDelayMs);
    this.#entries.set(peerId, { until: now + delay, delay });
    if (this.#entries.size > this.#sweepAbove || now - this.#sweptAt >= this.#maxDelayMs) this.sweep(now);
    return delay;
  }

  /** A dial of `peerId` succeeded: forget it. */
  clear(peerId: string): void {
    this.#entries.delete(peerId);
  }

  /** Forgets every entry whose wait ended more than `maxDelayMs` before `now`. */
  sweep(now: number): void {
    this.#sweptAt = now;
    for (const [id, e] of this.#entries) if (now - e.until > this.#maxDelayMs) this.#entries.delete(id);
  }
}
