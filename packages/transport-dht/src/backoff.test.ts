import { describe, expect, it } from 'vitest';
import { PeerBackoff } from './backoff.js';

describe('PeerBackoff', () => {
  it('doubles the wait per failure up to the maximum, and clears on success', () => {
    const b = new PeerBackoff({ maxDelayMs: 8000 });
    expect([b.fail('p', 0), b.fail('p', 1), b.fail('p', 2), b.fail('p', 3), b.fail('p', 4)]).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(b.blocked('p', 5)).toBe(true);
    b.clear('p');
    expect(b.blocked('p', 5)).toBe(false);
    expect(b.size).toBe(0);
  });

  it('forgets peers whose wait ended long ago: the map stays bounded under endless stale records', () => {
    const b = new PeerBackoff({ maxDelayMs: 60_000, sweepAbove: 100 });
    // 100,000 distinct peers fail, one per second of simulated time (stale provider records).
    for (let i = 0; i < 100_000; i++) b.fail(`peer-${i}`, i * 1000);
    // Only peers whose wait is still running or ended within the last maxDelay are kept.
    expect(b.size).toBeLessThanOrEqual(100 + 1 + 61);
    // A peer failing again long after its wait starts over from the initial delay.
    const c = new PeerBackoff({ maxDelayMs: 4000 });
    c.fail('q', 0);
    c.fail('q', 1);
    expect(c.fail('q', 1_000_000)).toBe(1000);
  });
});
