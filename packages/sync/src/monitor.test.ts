import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '@rhizome/core';
import { PeerMeter, resolveHealthOptions } from './health.js';
import { HealthMonitor, MAX_PINGS_IN_FLIGHT, TICK_CHUNK, type MonitorHost } from './monitor.js';
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
  it(`ticks every monitor of a round, at most ${TICK_CHUNK} per turn of the event loop, and skips one stopped mid-round`, async () => {
    const options = resolveHealthOptions({ checkIntervalMs: 30, pingIntervalMs: 30 });
    const count = 2 * TICK_CHUNK + 5;
    const rounds = new Array<number>(count).fill(0);
    let ticked = 0;
    /** Monitors ticked in the round before a turn queued by the round's first tick ran (null: not yet known). */
    let beforeNextTurn: number | null = null;
    let firstRoundTicks = 0;
    const stopMidRound = TICK_CHUNK + 1;
    let stoppedAt: number | null = null;
    const monitors: HealthMonitor[] = [];
    let started = false;
    for (let i = 0; i < count; i++) {
      const h = host(() => [], []);
      // `now` is read once per tick: the tick's hook.
      h.now = () => {
        if (!started) return Date.now(); // the constructor's read
        ticked++;
        rounds[i]!++;
        if (i === 0 && beforeNextTurn === null) {
          // What a database's flush does: work on the next turn. It must not wait for the whole round.
          const at = ticked;
          setImmediate(() => (beforeNextTurn = ticked - at + 1));
          // Stopped before its chunk's turn: the round skips it.
          monitors[stopMidRound]!.stop();
          stoppedAt = rounds[stopMidRound]!;
        }
        if (beforeNextTurn === null) firstRoundTicks++;
        return Date.now();
      };
      monitors.push(new HealthMonitor(h, options));
    }
    started = true;
    for (const m of monitors) m.start();
    try {
      const deadline = Date.now() + 10_000;
      while (rounds.some((r, i) => i !== stopMidRound && r < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } finally {
      for (const m of monitors) m.stop();
    }
    expect(rounds.filter((r, i) => i !== stopMidRound && r < 2)).toEqual([]);
    expect(beforeNextTurn).not.toBeNull();
    expect(beforeNextTurn!).toBeLessThanOrEqual(TICK_CHUNK);
    expect(firstRoundTicks).toBeLessThanOrEqual(TICK_CHUNK);
    expect(rounds[stopMidRound]).toBe(stoppedAt);
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

/**
 * A session as the monitor sees it: `canPing` once its step 2 has left, a real {@link PeerMeter},
 * and `ping` recording the tick it was queued in (the database's sessions' frames of one tick leave
 * through the relay link as one socket write).
 */
class SessionStub {
  closed = false;
  foreign = false;
  queued = 0;
  canPing = false;
  healthState: unknown = null;
  readonly meter: PeerMeter;
  readonly pings: number[] = [];
  constructor(
    readonly peerId: string,
    private readonly clock: { now: number },
  ) {
    this.meter = new PeerMeter(clock.now, 0);
  }
  ping(seq: number): void {
    const id = this.meter.newPing(seq, this.clock.now);
    this.meter.pingSent(id, this.clock.now);
    this.pings.push(this.clock.now);
  }
}

describe('HealthMonitor ping rounds', () => {
  const options = resolveHealthOptions({ pingIntervalMs: 5_000, checkIntervalMs: 1_000 });
  function setup(n: number): { clock: { now: number }; sessions: SessionStub[]; monitor: HealthMonitor; tick: () => void } {
    const clock = { now: 0 };
    const sessions = Array.from({ length: n }, (_, i) => new SessionStub(`p${i}`, clock));
    const h: MonitorHost = { ...host(() => sessions as unknown as PeerSession[], []), now: () => clock.now };
    const monitor = new HealthMonitor(h, options);
    // Pongs come back at once: the round trip is not what is tested here.
    const tick = (): void => {
      monitor.tick();
      for (const s of sessions) while (s.meter.pingsInFlight > 0) s.meter.pong(s.meter.pingsSent, clock.now);
    };
    return { clock, sessions, monitor, tick };
  }

  it('sends no ping during the opening: the first goes out one check period after step 2 has left', () => {
    const { clock, sessions, tick } = setup(1);
    const s = sessions[0]!;
    for (; clock.now < 3_000; clock.now += 1_000) tick(); // step 2 not gone yet
    s.canPing = true;
    tick(); // 3 s: the monitor first sees it able to ping — not in this round
    expect(s.pings).toEqual([]);
    clock.now += 1_000;
    tick(); // 4 s: the next round (so `rttMs` is there for a one-shot status)
    expect(s.pings).toEqual([4_000]);
    for (clock.now += 1_000; clock.now <= 30_000; clock.now += 1_000) tick();
    expect(s.pings).toEqual([4_000, 9_000, 14_000, 19_000, 24_000, 29_000]);
  });

  it('pings the peers of a database in one tick, however their sessions started', () => {
    const { clock, sessions, tick } = setup(4);
    // Sessions whose step 2 left at 0, 1, 2 and 4 s (peers that joined one after another).
    const startAt = [0, 1_000, 2_000, 4_000];
    for (; clock.now <= 60_000; clock.now += 1_000) {
      sessions.forEach((s, i) => (s.canPing ||= clock.now >= startAt[i]!));
      tick();
    }
    // Each session's first ping has its own phase; from the first session's third round on,
    // every session is pinged in the same ticks.
    const rounds = sessions[0]!.pings.slice(2);
    expect(rounds.length).toBeGreaterThanOrEqual(10);
    for (const s of sessions) expect(s.pings.slice(-rounds.length)).toEqual(rounds);
    // No peer waits longer than an interval between pings, none is pinged more often than every half interval.
    for (const s of sessions) {
      // The first ping: the round after the one that first saw the session able to ping.
      expect(s.pings[0]! - startAt[sessions.indexOf(s)]!).toBe(options.checkIntervalMs);
      for (let i = 1; i < s.pings.length; i++) {
        const gap = s.pings[i]! - s.pings[i - 1]!;
        expect(gap).toBeLessThanOrEqual(options.pingIntervalMs);
        expect(gap).toBeGreaterThanOrEqual(options.pingIntervalMs / 2);
      }
    }
  });

  it('a peer that answers nothing is pinged at most ' + MAX_PINGS_IN_FLIGHT + ' times and does not hold back the others', () => {
    const { clock, sessions, monitor } = setup(2);
    for (const s of sessions) s.canPing = true;
    const [silent, live] = sessions as [SessionStub, SessionStub];
    for (; clock.now <= 60_000; clock.now += 1_000) {
      monitor.tick();
      while (live.meter.pingsInFlight > 0) live.meter.pong(live.meter.pingsSent, clock.now);
    }
    expect(silent.pings.length).toBe(MAX_PINGS_IN_FLIGHT);
    expect(live.pings.length).toBeGreaterThanOrEqual(11);
  });
});
