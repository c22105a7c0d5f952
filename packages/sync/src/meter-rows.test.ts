// The process's meter rows (meter-rows.ts) and a PeerMeter kept in them: rows are reused after a
// meter gives its row back, a released meter keeps (and still counts) its numbers, one meter's
// numbers never show in another's, traffic totals stay exact past 2^32, and the pages go once no
// row is in use.
import { describe, expect, it } from 'vitest';
import { PeerMeter } from './health.js';
import { ROWS_PER_PAGE, allocRow, meterRowStats, releaseRow } from './meter-rows.js';

/** A meter whose row can be given back, as a session does when it ends. */
class EndingMeter extends PeerMeter {
  end(): void {
    this.releaseMeterRow();
  }
}

/** Everything a meter reports, as one comparable record. */
function readout(m: PeerMeter, now: number): unknown {
  return {
    startedAt: m.startedAt,
    lastReceivedAt: m.lastReceivedAt,
    lastPingAt: m.lastPingAt,
    ackedSeq: m.ackedSeq,
    rttMs: m.rttMs,
    pingsSent: m.pingsSent,
    pongsReceived: m.pongsReceived,
    pingsInFlight: m.pingsInFlight,
    framesSent: m.framesSent,
    framesReceived: m.framesReceived,
    bytesSent: m.bytesSent,
    bytesReceived: m.bytesReceived,
    rates: m.rates(now),
  };
}

/** Drives `m` through a seeded mix of traffic and pings (the same mix for the same seed). */
function drive(m: PeerMeter, seed: number, steps: number): number {
  let x = seed;
  const rand = (n: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  let now = 1_000;
  let seq = 0;
  const ids: number[] = [];
  for (let i = 0; i < steps; i++) {
    now += rand(3_000);
    const what = rand(5);
    if (what === 0) m.received(40 + rand(5_000), now);
    else if (what === 1) m.sent(40 + rand(5_000), now);
    else if (what === 2 && m.pingsInFlight < 4) {
      seq += rand(3);
      const id = m.newPing(seq, now);
      m.pingSent(id, now);
      ids.push(id);
    } else if (what === 3 && ids.length > 0) m.pong(ids.shift()!, now);
  }
  return now;
}

describe('meter rows', () => {
  it('reuses a released row, zeroed, and drops the pages once no row is in use', () => {
    const before = meterRowStats();
    const a = allocRow();
    const b = allocRow();
    expect(meterRowStats().live).toBe(before.live + 2);
    const released = releaseRow(a);
    expect(released.f.length).toBeGreaterThan(0);
    const c = allocRow();
    expect(c).toBe(a);
    releaseRow(b);
    releaseRow(c);
    expect(meterRowStats().live).toBe(before.live);
    if (before.live === 0) expect(meterRowStats()).toEqual({ live: 0, pages: 0, free: 0 });
  });

  it('grows a page at a time', () => {
    const before = meterRowStats();
    const rows: number[] = [];
    for (let i = 0; i < ROWS_PER_PAGE * 3; i++) rows.push(allocRow());
    expect(new Set(rows).size).toBe(rows.length);
    expect(meterRowStats().pages).toBeLessThanOrEqual(before.pages + 3);
    for (const r of rows) releaseRow(r);
    expect(meterRowStats().live).toBe(before.live);
  });
});

describe('PeerMeter in a row', () => {
  it('reads the same before and after its row is given back, and a new meter in that row starts fresh', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const m = new EndingMeter(500, 7);
      const twin = new PeerMeter(500, 7);
      let now = drive(m, seed, 400);
      drive(twin, seed, 400);
      expect(readout(m, now)).toEqual(readout(twin, now));
      const live = meterRowStats().live;
      m.end();
      m.end(); // once only
      expect(meterRowStats().live).toBe(live - 1);
      expect(readout(m, now)).toEqual(readout(twin, now));

      // The next meter takes the released row: it starts as any new meter, and neither meter's
      // traffic shows in the other.
      const next = new PeerMeter(now, 3);
      expect(readout(next, now)).toEqual(readout(new PeerMeter(now, 3), now));
      next.received(100, now + 1);
      now += 10;
      m.sent(50, now);
      twin.sent(50, now);
      expect(readout(m, now)).toEqual(readout(twin, now));
      expect(next.framesReceived).toBe(1);
      expect(next.framesSent).toBe(0);
      expect(next.ackedSeq).toBe(3);
    }
  });

  it('keeps traffic totals exact past 2^32 (a carry per total), and the next meter in its row starts without its carries', () => {
    const m = new EndingMeter(0, 0);
    const step = 2 ** 31 + 12_345;
    let expected = 0;
    for (let i = 0; i < 9; i++) {
      m.received(step, i * 1_000);
      m.sent(step - 1, i * 1_000);
      expected += step;
      expect(m.bytesReceived).toBe(expected);
      expect(m.bytesSent).toBe(expected - (i + 1));
    }
    expect(m.framesReceived).toBe(9);
    expect(m.framesSent).toBe(9);
    m.end();
    expect(m.bytesReceived).toBe(expected);
    const next = new PeerMeter(20_000, 0);
    next.received(10, 20_001);
    expect(next.bytesReceived).toBe(10);
    expect(next.bytesSent).toBe(0);
  });

  it('keeps its start, RTT, ping time and acknowledged sequence as given', () => {
    const m = new PeerMeter(1_234.75, 2 ** 40);
    expect(m.startedAt).toBe(1_234);
    expect(m.connectedAt).toBe(1_234);
    expect(m.lastReceivedAt).toBe(1_234);
    expect(m.ackedSeq).toBe(2 ** 40);
    expect(m.lastPingAt).toBe(-Infinity);
    expect(m.rttMs).toBeNull();
    m.lastPingAt = 5_000.5;
    expect(m.lastPingAt).toBe(5_000);
    m.lastPingAt = -Infinity;
    expect(m.lastPingAt).toBe(-Infinity);
    m.rttMs = 12.3456;
    expect(m.rttMs).toBe(12.346);
    m.lastReceivedAt = 9_999;
    expect(m.lastReceivedAt).toBe(9_999);
    const id = m.newPing(2 ** 40 + 5, 6_000);
    m.pingSent(id, 6_000);
    m.pong(id, 6_010);
    expect(m.ackedSeq).toBe(2 ** 40 + 5);
    expect(m.pongsReceived).toBe(1);
  });
});
