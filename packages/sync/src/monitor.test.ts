import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '@rhizome/core';
import { resolveHealthOptions } from './health.js';
import { HealthMonitor, type MonitorHost } from './monitor.js';
import type { PeerSession } from './session.js';

function host(sessions: () => Iterable<PeerSession>, events: SyncEvent[]): MonitorHost {
  return {
    sessions,
    localSeq: () => 0,
    networked: true,
    storageError: () => null,
    publish: (event) => events.push(event),
    now: () => Date.now(),
  };
}

describe('HealthMonitor on the shared timer', () => {
  it('reports a round that throws as that database’s error and keeps ticking the others', async () => {
    const options = resolveHealthOptions({ checkIntervalMs: 20, pingIntervalMs: 20 });
    const brokenEvents: SyncEvent[] = [];
    const goodEvents: SyncEvent[] = [];
    let goodRounds = 0;
    const broken = new HealthMonitor(host(() => { throw new Error('sessions exploded'); }, brokenEvents), options);
    const good = new HealthMonitor(host(() => { goodRounds++; return []; }, goodEvents), options);
    broken.start(); // first on the shared timer: its throw must not skip `good`
    good.start();
    try {
      const deadline = Date.now() + 10_000;
      while ((goodRounds < 2 || brokenEvents.length < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } finally {
      broken.stop();
      good.stop();
    }
    expect(goodRounds).toBeGreaterThanOrEqual(2);
    const errors = brokenEvents.filter((e) => e.type === 'error');
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect((errors[0] as { error: Error }).error.message).toBe('sessions exploded');
    expect(goodEvents.filter((e) => e.type === 'error')).toEqual([]);
  });
});
