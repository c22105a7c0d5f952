import { describe, expect, it } from 'vitest';
import { PeerMeter, RateWindow } from './health.js';

describe('RateWindow', () => {
  it('keeps channels apart and averages each over the minute', () => {
    const w = new RateWindow(0, 3);
    w.add(600, 1_000, 0);
    w.add(60, 2_000, 2);
    w.add(6_000, 61_000, 1);
    // 61 s after start: the span is the whole minute; bucket 0 (0–5 s) has just been reused.
    expect(w.perSecond(61_000, 0)).toBe(0);
    expect(w.perSecond(61_000, 1)).toBe(100);
    expect(w.perSecond(61_000, 2)).toBe(0);
    const v = new RateWindow(0, 3);
    v.add(600, 1_000, 0);
    v.add(60, 2_000, 2);
    expect(v.perSecond(30_000, 0)).toBe(20);
    expect(v.perSecond(30_000, 1)).toBe(0);
    expect(v.perSecond(30_000, 2)).toBe(2);
  });

  it('holds no buckets until something is counted, and drops them after a window without traffic', () => {
    const w = new RateWindow(0, 4);
    expect(w.allocated).toBe(false);
    w.add(0, 1_000, 1);
    expect(w.allocated).toBe(false);
    w.add(5, 1_000, 3);
    expect(w.allocated).toBe(true);
    expect(w.perSecond(50_000, 3)).toBeCloseTo(5 / 50);
    expect(w.allocated).toBe(true);
    expect(w.perSecond(115_000, 3)).toBe(0); // 65 s after the last look: a whole window without traffic
    expect(w.allocated).toBe(false);
  });
  it('sums exactly the buckets of the last minute over a seeded random run', () => {
    // Reference: every amount counted in its bucket; a rate sums the buckets of the last minute.
    const width = RateWindow.BUCKET_MS;
    const buckets = RateWindow.BUCKETS;
    expect(width * buckets).toBe(60_000);
    let seed = 12;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const w = new RateWindow(0, 4);
    const counted: Array<{ bucket: number; channel: number; amount: number }> = [];
    let now = 0;
    for (let step = 0; step < 2_000; step++) {
      // Mostly small steps, sometimes a long silence (the window empties).
      now += rand() < 0.02 ? Math.floor(rand() * 120_000) : Math.floor(rand() * 3_000);
      const channel = Math.floor(rand() * 4);
      if (rand() < 0.7) {
        const amount = Math.floor(rand() * 5) === 0 ? 0 : Math.floor(rand() * 70_000);
        w.add(amount, now, channel);
        counted.push({ bucket: Math.floor(now / width), channel, amount });
      } else {
        const bucket = Math.floor(now / width);
        const sum = counted.filter((c) => c.channel === channel && c.bucket > bucket - buckets).reduce((a, c) => a + c.amount, 0);
        expect(w.perSecond(now, channel)).toBeCloseTo(sum / Math.min(60, Math.max(1, now / 1_000)), 9);
        if (!w.allocated) expect(sum).toBe(0);
      }
    }
  });
});

describe('PeerMeter', () => {
  it('reads the same rates in its small form and its full ring, and holds no array while traffic is small', () => {
    // Reference: every frame counted in its 10 s bucket; a rate sums the buckets of the last minute
    // (what the full ring computes). Mostly ping-sized frames, sometimes a large one (the meter
    // moves to its full ring), sometimes a long silence (it empties and goes back to the small form).
    const width = PeerMeter.BUCKET_MS;
    const buckets = PeerMeter.BUCKETS;
    for (let seed = 1; seed <= 30; seed++) {
      let x = seed;
      const rand = (): number => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      const m = new PeerMeter(0, 0);
      const counted: Array<{ bucket: number; dir: 'in' | 'out'; bytes: number }> = [];
      let now = 0;
      let smallSeen = 0;
      let fullSeen = 0;
      for (let step = 0; step < 3_000; step++) {
        now += rand() < 0.01 ? Math.floor(rand() * 130_000) : Math.floor(rand() * 2_500);
        const r = rand();
        if (r < 0.6) {
          const bytes = rand() < 0.03 ? Math.floor(rand() * 70_000) : 40 + Math.floor(rand() * 40);
          const dir = rand() < 0.5 ? 'in' : 'out';
          if (dir === 'in') m.received(bytes, now);
          else m.sent(bytes, now);
          counted.push({ bucket: Math.floor(now / width), dir, bytes });
        } else {
          const bucket = Math.floor(now / width);
          const recent = counted.filter((c) => c.bucket > bucket - buckets);
          const span = Math.min(60, Math.max(1, now / 1_000));
          const sum = (dir: 'in' | 'out', f: (c: { bytes: number }) => number): number => recent.filter((c) => c.dir === dir).reduce((acc, c) => acc + f(c), 0) / span;
          const want = { bytesIn: sum('in', (c) => c.bytes), bytesOut: sum('out', (c) => c.bytes), framesIn: sum('in', () => 1), framesOut: sum('out', () => 1) };
          const got = m.rates(now);
          if (JSON.stringify(got) !== JSON.stringify(want)) expect(got, `seed ${seed} step ${step} at ${now}`).toEqual(want);
          if (m.allocated) fullSeen++;
          else smallSeen++;
          // The small form holds at most 2047 bytes and 15 frames per bucket and direction.
          const perBucket = new Map<string, { bytes: number; frames: number }>();
          for (const c of recent) {
            const k = `${c.bucket} ${c.dir}`;
            const e = perBucket.get(k) ?? { bytes: 0, frames: 0 };
            e.bytes += c.bytes;
            e.frames++;
            perBucket.set(k, e);
          }
          const fits = [...perBucket.values()].every((e) => e.bytes <= 2047 && e.frames <= 15);
          // Every bucket of the last minute fits the small form: the meter holds no array (it went
          // back at the first new bucket after the last one that did not fit left the window).
          if (fits) expect(m.allocated, `seed ${seed} step ${step}`).toBe(false);
        }
      }
      expect(smallSeen).toBeGreaterThan(0);
      expect(fullSeen).toBeGreaterThan(0);
    }
  });

  it('reports the four traffic rates from one window', () => {
    const m = new PeerMeter(0, 0);
    m.received(1_000, 1_000);
    m.received(500, 2_000);
    m.sent(300, 3_000);
    expect(m.rates(10_000)).toEqual({ bytesIn: 150, bytesOut: 30, framesIn: 0.2, framesOut: 0.1 });
    expect(m.lastReceivedAt).toBe(2_000);
    expect(m.framesSent).toBe(1);
  });

  it('tracks pings in flight and acknowledges in order', () => {
    const m = new PeerMeter(0, 0);
    expect(m.pingsInFlight).toBe(0);
    m.pong(1, 10); // unknown: ignored
    expect(m.pongsReceived).toBe(0);
    const a = m.newPing(5, 100);
    const b = m.newPing(9, 200);
    m.pingSent(a, 100);
    m.pingSent(b, 200);
    expect(m.pingsInFlight).toBe(2);
    m.pong(b, 260); // answers a too (pongs come back in order)
    expect(m.pingsInFlight).toBe(0);
    expect(m.ackedSeq).toBe(9);
    expect(m.rttMs).toBe(60);
    const c = m.newPing(12, 300);
    expect(m.pingsInFlight).toBe(1);
    m.pong(c, 320); // queued but never sent: acknowledges, no RTT sample
    expect(m.ackedSeq).toBe(12);
    expect(m.rttMs).toBe(60);
    expect(m.pongsReceived).toBe(2);
  });
});

describe('PeerMeter traffic window (bytes and frames packed per bucket)', () => {
  it('reports the same rates as four plain channels under random traffic', () => {
    let seed = 11;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 20; round++) {
      const m = new PeerMeter(0, 0);
      const ref = new RateWindow(0, 4);
      let now = 0;
      for (let op = 0; op < 300; op++) {
        now += rand(4000);
        const bytes = rand(3) === 0 ? rand(2_000_000) : rand(200);
        if (rand(2) === 0) {
          m.received(bytes, now);
          ref.add(bytes, now, 0);
          ref.add(1, now, 2);
        } else {
          m.sent(bytes, now);
          ref.add(bytes, now, 1);
          ref.add(1, now, 3);
        }
        if (op % 7 === 0) {
          const at = now + rand(30_000);
          expect(m.rates(at)).toEqual({ bytesIn: ref.perSecond(at, 0), bytesOut: ref.perSecond(at, 1), framesIn: ref.perSecond(at, 2), framesOut: ref.perSecond(at, 3) });
          now = at;
        }
      }
    }
  });

  it('saturates a bucket at 2^32 - 1 bytes rather than corrupting its frame count', () => {
    const m = new PeerMeter(0, 0);
    for (let i = 0; i < 3; i++) m.received(2 ** 31, 1_000 + i);
    m.received(10, 1_010);
    const r = m.rates(50_000);
    expect(r.bytesIn).toBe((2 ** 32 - 1) / 50);
    expect(r.framesIn).toBe(4 / 50);
    expect(r.bytesOut).toBe(0);
  });
});

describe('PeerMeter pings in flight (pairs of numbers, not a Map)', () => {
  it('matches a Map of id -> {seq, sentAt} under random pings, sends and pongs (also stale and unknown ids)', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 50; round++) {
      const m = new PeerMeter(0, 0);
      const ref = new Map<number, { seq: number; sentAt: number }>();
      let refAcked = 0;
      let refRtt: number | null = null;
      let refPongs = 0;
      let nextId = 1;
      let now = 0;
      let seq = 0;
      const ids: number[] = [];
      for (let op = 0; op < 200; op++) {
        now += rand(50);
        const what = rand(3);
        if (what === 0 && ref.size < 6) {
          seq += rand(3);
          const id = m.newPing(seq, now);
          expect(id).toBe(nextId++);
          ref.set(id, { seq, sentAt: Number.NaN });
          ids.push(id);
        } else if (what === 1 && ids.length > 0) {
          const id = ids[rand(ids.length)]!;
          m.pingSent(id, now);
          const p = ref.get(id);
          if (p) p.sentAt = now;
        } else if (ids.length > 0) {
          // Mostly ids in flight, sometimes answered ones or ids never sent.
          const id = rand(5) === 0 ? 1000 + rand(10) : ids[rand(ids.length)]!;
          m.pong(id, now);
          const p = ref.get(id);
          if (p) {
            for (const key of [...ref.keys()]) {
              ref.delete(key);
              if (key === id) break;
            }
            refPongs++;
            if (p.seq > refAcked) refAcked = p.seq;
            if (!Number.isNaN(p.sentAt)) refRtt = refRtt === null ? now - p.sentAt : refRtt * 0.75 + (now - p.sentAt) * 0.25;
          }
        }
        expect(m.pingsInFlight).toBe(ref.size);
        expect(m.ackedSeq).toBe(refAcked);
        expect(m.pongsReceived).toBe(refPongs);
        if (refRtt === null) expect(m.rttMs).toBeNull();
        else expect(m.rttMs).toBeCloseTo(refRtt, 2);
      }
    }
  });
});
