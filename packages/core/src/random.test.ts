import { describe, expect, it } from 'vitest';
import { RANDOM_POOL_BYTES, randomId } from './random.js';

describe('randomId', () => {
  it('gives fresh bytes of the asked length, across pool refills and for large requests', () => {
    const seen = new Set<string>();
    let total = 0;
    // Enough 16-byte ids to refill the pool several times, with odd sizes between them.
    for (let i = 0; total < RANDOM_POOL_BYTES * 3; i++) {
      const n = i % 7 === 0 ? 5 : 16;
      const id = randomId(n);
      expect(id).toBeInstanceOf(Uint8Array);
      expect(id.length).toBe(n);
      total += n;
      if (n === 16) {
        const hex = Buffer.from(id).toString('hex');
        expect(seen.has(hex)).toBe(false);
        seen.add(hex);
      }
    }
    // Bytes look random: every byte value turns up, none dominates (a zeroed or reused pool would not).
    const counts = new Array<number>(256).fill(0);
    for (const hex of seen) for (const b of Buffer.from(hex, 'hex')) counts[b]!++;
    expect(Math.min(...counts)).toBeGreaterThan(0);
    expect(Math.max(...counts)).toBeLessThan((seen.size * 16) / 256 * 3);
    const big = randomId(RANDOM_POOL_BYTES * 20);
    expect(big.length).toBe(RANDOM_POOL_BYTES * 20);
    expect(new Set(big).size).toBe(256);
    expect(randomId(0).length).toBe(0);
    expect(() => randomId(-1)).toThrow(RangeError);
  });
});
