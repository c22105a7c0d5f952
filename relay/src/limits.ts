/**
 * Per-connection rate limiting: two token buckets (frames and bytes) kept as plain numbers on
 * the connection itself (no objects per connection), refilled lazily from a clock the caller
 * passes in, so an idle connection costs no timer.
 */

/** The bucket state a connection carries. */
export interface RateState {
  frameTokens: number;
  byteTokens: number;
  /** When the buckets were last refilled (ms, the caller's clock). */
  refilledAt: number;
}

/** Rates and bursts of {@link spend}. */
export interface RateLimits {
  maxFramesPerSecond: number;
  frameBurst: number;
  maxBytesPerSecond: number;
  byteBurst: number;
}

/** A fresh connection starts with full buckets. */
export function initialRateState(limits: RateLimits, now: number): RateState {
  return { frameTokens: limits.frameBurst, byteTokens: limits.byteBurst, refilledAt: now };
}

/**
 * Spends one frame of `bytes` bytes at time `now` (ms): `'frames'` or `'bytes'` when that bucket
 * is overdrawn, else null.
 */
export function spend(state: RateState, bytes: number, now: number, limits: RateLimits): 'frames' | 'bytes' | null {
  const elapsed = now - state.refilledAt;
  if (elapsed > 0) {
    state.refilledAt = now;
    const f = state.frameTokens + (elapsed * limits.maxFramesPerSecond) / 1000;
    state.frameTokens = f > limits.frameBurst ? limits.frameBurst : f;
    const b = state.byteTokens + (elapsed * limits.maxBytesPerSecond) / 1000;
    state.byteTokens = b > limits.byteBurst ? limits.byteBurst : b;
  }
  if (--state.frameTokens < 0) return 'frames';
  if ((state.byteTokens -= bytes) < 0) return 'bytes';
  return null;
}
