/**
 * A token bucket: `rate` tokens per second, at most `burst` saved up. `take` spends tokens
 * and reports whether the bucket stayed non-negative. Refilled lazily from the caller's clock,
 * so an idle connection costs no timer.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;
  readonly #ratePerMs: number;
  readonly #burst: number;

  constructor(ratePerSecond: number, burst: number, now: number) {
    this.#ratePerMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** Spends `n` tokens at time `now` (ms); false once the bucket is overdrawn. */
  take(n: number, now: number): boolean {
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      this.#last = now;
      const t = this.#tokens + elapsed * this.#ratePerMs;
      this.#tokens = t > this.#burst ? this.#burst : t;
    }
    this.#tokens -= n;
    return this.#tokens >= 0;
  }
}
