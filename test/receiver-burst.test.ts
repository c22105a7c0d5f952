// What a put burst costs the receiver (issue 10): a writer process puts 40,000 nodes, 1,000 per
// macrotask (each put its own update), through a real relay process on 127.0.0.1 to a receiver
// process with an SQLite file that consumes db.events (as an app or `rhizome sync` does) and is
// frozen (SIGSTOP) for 2 s mid-burst, so it falls behind and the burst backs up towards it.
// The receiver's peak RSS (Linux VmHWM, the kernel's high-water mark) must stay within 1.3x of
// its steady state (RSS once it holds every node, flushed and settled), and within 64 MiB of it:
// the relay window (4 MiB per Connection, granted as the session reads and applies) bounds what
// can be in flight towards it, and received frames are applied and persisted as they are read.
// A memory bound, not a timing bound. Full-size figures (300,000 puts) in RELIABILITY.md,
// from `npm run burst`.
import { describe, expect, it } from 'vitest';
import { runBurst } from '../scripts/burst-run.js';

const MiB = 1024 * 1024;

describe('receiver memory in a put burst', () => {
  it('a receiver that falls behind a 40,000-put burst peaks within 1.3x (and 64 MiB) of its steady state', async () => {
    const r = await runBurst({ count: 40_000, perTick: 1000, stallMs: 2000, receiver: 'events', timeoutMs: 120_000 });
    const f = (b: number): string => `${(b / MiB).toFixed(0)} MiB`;
    console.log(`receiver start ${f(r.startRss)}, steady ${f(r.steady)}, peak ${f(r.peak)} (${r.ratio.toFixed(2)}x); relay peak ${f(r.relayPeak)}`);
    expect(r.samples.length).toBeGreaterThan(10);
    expect(r.steady).toBeGreaterThan(r.startRss);
    expect(r.peak).toBeLessThan(r.steady * 1.3);
    expect(r.peak - r.steady).toBeLessThan(64 * MiB);
  }, 150_000);
});
