// The turn scheduler's coalescing rules, on a hand-driven event loop and clock: which turn each
// flush happens on (counts of turns and flushes, no timings).
import { describe, expect, it } from 'vitest';
import { LINGER_BYTES, LINGER_MS, TurnScheduler } from './coalesce.js';
import type { Flushable } from './coalesce.js';

/** A fake event loop: `turn()` runs what was queued for the next turn, `clock` is the time. */
function loop(): { runner: (fn: () => void) => void; turn: (work?: () => void) => void; clock: { ms: number } } {
  let next: Array<() => void> = [];
  const clock = { ms: 0 };
  return {
    clock,
    runner: (fn) => next.push(fn),
    // A turn: first the callbacks queued on the previous one (the scheduler's), then the writer's work.
    turn(work) {
      const due = next;
      next = [];
      for (const fn of due) fn();
      work?.();
    },
  };
}

/** A flush target that records the turn number (set by the test) of each flush. */
function target(): Flushable & { flushes: number[]; turn: number } {
  const t = {
    flushes: [] as number[],
    turn: 0,
    flush() {
      t.flushes.push(t.turn);
    },
  };
  return t;
}

describe('TurnScheduler', () => {
  it('flushes an isolated request on the next turn, once however often it was asked', () => {
    const l = loop();
    const s = new TurnScheduler(l.runner, () => l.clock.ms);
    let flushes = 0;
    const t: Flushable = { flush: () => flushes++ };
    l.turn(() => {
      for (let i = 0; i < 100; i++) s.request(t, 10);
    });
    expect(flushes).toBe(0);
    l.turn();
    expect(flushes).toBe(1);
    // Quiet turns in between: the next request is isolated again (no linger).
    for (let i = 0; i < 3; i++) l.turn();
    l.clock.ms += 0.5;
    l.turn(() => s.request(t));
    l.turn();
    expect(flushes).toBe(2);
    expect(s.stats).toEqual({ rounds: 2, lingered: 0 });
  });

  it('a writer that yields after every write gets its writes coalesced until it pauses', () => {
    const l = loop();
    const s = new TurnScheduler(l.runner, () => l.clock.ms);
    const t = target();
    let turn = 0;
    const write = (): void => s.request(t, 20);
    // Turn 0 writes; turn 1 flushes it (isolated) and writes again: streaming from there on.
    for (; turn < 10; turn++) {
      t.turn = turn;
      l.turn(write);
    }
    // The clock does not move: only the pause ends the linger. 10 writes, 2 frames so far.
    expect(t.flushes).toEqual([1]);
    t.turn = turn++;
    l.turn(); // a turn without a write: the writer paused
    t.turn = turn++;
    l.turn();
    expect(t.flushes).toEqual([1, 11]);
    expect(s.stats.lingered).toBe(1);
  });

  it('a linger ends after LINGER_MS or LINGER_BYTES even while the writer keeps writing', () => {
    const l = loop();
    const s = new TurnScheduler(l.runner, () => l.clock.ms);
    const t = target();
    let turn = 0;
    const step = LINGER_MS / 4;
    for (; turn < 20; turn++) {
      t.turn = turn;
      l.clock.ms += step;
      l.turn(() => s.request(t, 1));
    }
    // First flush on turn 1, then one every 4 turns (LINGER_MS at LINGER_MS/4 per turn).
    expect(t.flushes.length).toBeGreaterThanOrEqual(4);
    expect(t.flushes.length).toBeLessThanOrEqual(6);
    for (let i = 2; i < t.flushes.length; i++) expect(t.flushes[i]! - t.flushes[i - 1]!).toBeLessThanOrEqual(5);

    const u = target();
    const s2 = new TurnScheduler(l.runner, () => 0);
    for (turn = 0; turn < 6; turn++) {
      u.turn = turn;
      l.turn(() => s2.request(u, LINGER_BYTES / 2));
    }
    // The clock stands still; the bytes end each linger after two writes.
    expect(u.flushes).toEqual([1, 3, 5]);
  });

  it('slow turns (each longer than LINGER_MS) still pair two writes per flush', () => {
    const l = loop();
    const s = new TurnScheduler(l.runner, () => l.clock.ms);
    const t = target();
    for (let turn = 0; turn < 9; turn++) {
      t.turn = turn;
      l.clock.ms += 5 * LINGER_MS;
      l.turn(() => s.request(t));
    }
    expect(t.flushes).toEqual([1, 3, 5, 7]);
  });
});
