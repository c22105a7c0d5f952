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

describe('HealthMonitor per-peer state', () => {
  /** A session as the monitor reads it: a meter, a queue depth, and the slot the monitor keeps its state in. */
  function fakeSession(peerId: string, now: () => number): PeerSession & { meter: { lastReceivedAt: number } } {
    return {
      peerId,
      closed: false,
      foreign: false,
      canPing: false,
      queued: 0,
      healthState: null,
      meter: { lastReceivedAt: now(), rttMs: null, ackedSeq: 0, lastPingAt: now(), pingsInFlight: 0 },
    } as unknown as PeerSession & { meter: { lastReceivedAt: number } };
  }

  it('keeps healthy peers on one shared record, gives a peer that changes state its own, and publishes its changes', () => {
    let t = 1_000_000;
    const now = (): number => t;
    const events: SyncEvent[] = [];
    const a = fakeSession('a', now);
    const b = fakeSession('b', now);
    const monitor = new HealthMonitor({ ...host(() => [a, b], events), now }, resolveHealthOptions(undefined));
    // Before the first evaluation: no state kept.
    expect(monitor.peer(a)).toEqual({ health: 'healthy', reason: 'connected' });
    expect(a.healthState).toBeNull();
    t += 1000;
    a.meter.lastReceivedAt = t;
    b.meter.lastReceivedAt = t;
    monitor.tick();
    expect(monitor.peer(a)).toEqual({ health: 'healthy', reason: 'responding' });
    expect(a.healthState).not.toBeNull();
    expect(a.healthState).toBe(b.healthState); // one shared record, none per peer
    // a falls silent past the degraded threshold; b keeps talking.
    t += 16_000;
    b.meter.lastReceivedAt = t;
    monitor.tick();
    expect(monitor.peer(a).health).toBe('degraded');
    expect(monitor.peer(b)).toEqual({ health: 'healthy', reason: 'responding' });
    expect(a.healthState).not.toBe(b.healthState);
    expect(events.filter((e) => e.type === 'peer-health')).toEqual([
      { type: 'peer-health', peerId: 'a', health: 'degraded', severity: 'warning', reason: expect.stringContaining('nothing received') as unknown as string },
    ]);
    // a answers again: the recovery is published, and b's shared record was never touched.
    t += 1000;
    a.meter.lastReceivedAt = t;
    b.meter.lastReceivedAt = t;
    monitor.tick();
    expect(monitor.peer(a)).toEqual({ health: 'healthy', reason: 'responding' });
    expect(monitor.peer(b)).toEqual({ health: 'healthy', reason: 'responding' });
    const published = events.filter((e) => e.type === 'peer-health').map((e) => (e as { peerId: string; health: string }).peerId + ':' + (e as { health: string }).health);
    expect(published).toEqual(['a:degraded', 'a:healthy']);
  });
});
