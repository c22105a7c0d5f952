import { describe, expect, it } from 'vitest';
import { SlotMap } from './slot-map.js';

describe('SlotMap', () => {
  it('behaves as a Map under random operations (reference: Map)', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 50; round++) {
      const map = new Map<number, string>();
      const slot = new SlotMap<number, string>();
      for (let op = 0; op < 200; op++) {
        const key = rand(6);
        const kind = rand(10);
        if (kind < 5) {
          map.set(key, `v${op}`);
          slot.set(key, `v${op}`);
        } else if (kind < 9) {
          expect(slot.delete(key)).toBe(map.delete(key));
        } else {
          map.clear();
          slot.clear();
        }
        expect(slot.size).toBe(map.size);
        for (let k = 0; k < 6; k++) {
          expect(slot.get(k)).toBe(map.get(k));
          expect(slot.has(k)).toBe(map.has(k));
        }
        expect([...slot.values()].sort()).toEqual([...map.values()].sort());
      }
    }
  });
});
