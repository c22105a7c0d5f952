import { describe, expect, it } from 'vitest';
import { resolveDhtOptions } from './options.js';

describe('dialConcurrency', () => {
  it('takes a whole number of dials of at least 1, or Infinity', () => {
    expect(resolveDhtOptions({}).dialConcurrency).toBe(3);
    expect(resolveDhtOptions({ dialConcurrency: 1 }).dialConcurrency).toBe(1);
    expect(resolveDhtOptions({ dialConcurrency: Infinity }).dialConcurrency).toBe(Infinity);
    // A fraction below 1 would floor to 0 slots: every provider dial would wait for ever.
    for (const bad of [0.5, 0, -1, Number.NaN, '2'])
      expect(() => resolveDhtOptions({ dialConcurrency: bad as number })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'dialConcurrency' }));
  });
});
