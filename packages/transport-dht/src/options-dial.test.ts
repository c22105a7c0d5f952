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

describe('session 7 options: link monitor, yamux window updates, start-up order', () => {
  it('have their defaults, take valid values and name the field of a bad one', () => {
    const d = resolveDhtOptions({});
    expect([d.linkPingIntervalMs, d.pingSessionLinks, d.eagerWindowUpdates, d.announceDeferMs, d.startupWalkDelayMs]).toEqual([10_000, false, false, 1000, 3000]);
    const set = resolveDhtOptions({ linkPingIntervalMs: 500, pingSessionLinks: true, eagerWindowUpdates: true, announceDeferMs: 0, startupWalkDelayMs: 0 });
    expect([set.linkPingIntervalMs, set.pingSessionLinks, set.eagerWindowUpdates, set.announceDeferMs, set.startupWalkDelayMs]).toEqual([500, true, true, 0, 0]);
    const bad: Array<[string, unknown]> = [
      ['linkPingIntervalMs', 0],
      ['pingSessionLinks', 'yes'],
      ['eagerWindowUpdates', 1],
      ['announceDeferMs', -1],
      ['startupWalkDelayMs', Number.NaN],
    ];
    for (const [field, value] of bad)
      expect(() => resolveDhtOptions({ [field]: value })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field }));
  });
});
