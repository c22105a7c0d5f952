// A Connection's send window (flow.ts WindowedConnection) keeps its credit and whether the peer
// speaks WINDOW in one number (credit * 4 + speaks): against a model holding the two apart, under
// random grants, takes (some larger than the window: credit below zero) and the switch to legacy.
import { describe, expect, it } from 'vitest';
import { INITIAL_WINDOW_BYTES, WindowedConnection } from './flow.js';

class Conn extends WindowedConnection {
  constructor() {
    super('p');
  }
  get topic(): Uint8Array {
    return new Uint8Array(32);
  }
  get transport(): string {
    return 'test';
  }
  protected sendFrame(): Promise<void> {
    return Promise.resolve();
  }
  protected closeRemote(): Promise<void> {
    return Promise.resolve();
  }
}

describe('WindowedConnection window state', () => {
  it('reads as credit and speaks kept apart, credit below zero included', () => {
    for (let seed = 1; seed <= 20; seed++) {
      let x = seed;
      const rand = (): number => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      const c = new Conn();
      let credit = INITIAL_WINDOW_BYTES;
      let speaks: 'unknown' | 'speaks' | 'legacy' = 'unknown';
      for (let step = 0; step < 2_000; step++) {
        const r = rand();
        if (r < 0.4) {
          const g = Math.floor(rand() * 2 * INITIAL_WINDOW_BYTES);
          c.grant(g);
          if (speaks !== 'legacy') {
            speaks = 'speaks';
            credit += g;
          }
        } else if (r < 0.995) {
          const cost = rand() < 0.1 ? INITIAL_WINDOW_BYTES + Math.floor(rand() * INITIAL_WINDOW_BYTES) : Math.floor(rand() * 300_000);
          const want = speaks === 'legacy' || credit >= Math.min(cost, INITIAL_WINDOW_BYTES);
          expect(c.canAcquire(cost)).toBe(want);
          expect(c.tryAcquire(cost)).toBe(want);
          if (want && speaks !== 'legacy') credit -= cost;
        } else {
          c.disable();
          speaks = 'legacy';
        }
        expect(c.credit, `seed ${seed} step ${step}`).toBe(speaks === 'legacy' ? Infinity : credit);
        expect(c.negotiated).toBe(speaks === 'speaks');
      }
    }
  });
});
