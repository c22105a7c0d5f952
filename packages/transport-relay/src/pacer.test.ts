import { afterEach, describe, expect, it, vi } from 'vitest';
import { PACE_BURST_FRACTION, PACE_RATE_FRACTION, SendPacer } from './pacer.js';

const LIMITS = { maxFramesPerSecond: 1000, maxBytesPerSecond: 1_000_000, frameBurst: 10, byteBurst: 10_000 };

describe('SendPacer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('paces at a fraction of the relay rate: the burst at once, then waiters in order as tokens come back; close rejects the rest', async () => {
    vi.useFakeTimers();
    let t = 0;
    const pacer = new SendPacer(LIMITS, () => t);
    const other = new SendPacer(LIMITS, () => t);
    expect(pacer.framesPerMs).toBeCloseTo((1000 * PACE_RATE_FRACTION) / 1000);
    expect(pacer.frameBurst).toBe(10 * PACE_BURST_FRACTION);
    expect(other.bytesPerMs).toBe(pacer.bytesPerMs);
    // The burst (5 frames) goes without waiting.
    for (let i = 0; i < 5; i++) expect(pacer.tryTake(10)).toBe(true);
    expect(pacer.tryTake(10)).toBe(false);
    const order: number[] = [];
    const a = pacer.take(10).then(() => order.push(1));
    const b = pacer.take(10).then(() => order.push(2));
    expect(pacer.waiting).toBe(2);
    // Tokens come back at 0.85 frames/ms: both go within a few ms, in order.
    t += 3;
    await vi.advanceTimersByTimeAsync(3);
    await Promise.all([a, b]);
    expect(order).toEqual([1, 2]);
    expect(pacer.waiting).toBe(0);
    // Drained and idle again: sends go at once, and it waits again past the burst.
    t += 100;
    expect(pacer.tryTake(10)).toBe(true);
    for (let i = 0; i < 4; i++) pacer.charge(1, 10);
    const c = pacer.take(10);
    pacer.close(new Error('session ended'));
    await expect(c).rejects.toThrow('session ended');
    await expect(pacer.take(1)).rejects.toThrow('session ended');
    expect(other.tryTake(10)).toBe(true);
  });
});
