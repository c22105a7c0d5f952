// A few seeds of the chaos harness (scripts/chaos-run.ts) in CI: replicas with SQLite files on a
// fault-injecting network, closes and reopens, a second process on one file; identical state,
// every acknowledged write present, files that hold the same, bounded queues and RSS. The long
// runs (1,000+ seeds) are `npm run chaos -- --seeds N`, recorded in RELIABILITY.md.
import { describe, expect, it } from 'vitest';
import { runSeed } from '../scripts/chaos-run.js';

// Seeds picked to cover every kind of action between them: 3 in-process replicas only; 30 a
// second writer process on r0's file and a relay process (SIGKILLed, restarted) with replica
// processes behind it; 34 a relay process with a replica process behind it; 47 a replica file on a
// small tmpfs that fills up (as root); 50 a second writer alone.
const SEEDS = [3, 30, 34, 47, 50];

describe('chaos harness', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed} converges with every acknowledged write (replay: npm run chaos -- --seeds 1 --seed ${seed})`, async () => {
      const report = await runSeed(seed);
      expect(report.writesChecked).toBeGreaterThan(50);
      expect(report.faults.cut + report.faults.drop + report.faults.delay).toBeGreaterThan(0);
      // runSeed fails the seed when a queue or an RSS passes the harness's bounds (100,000
      // messages, 1.5 GiB); the CI seeds hold far tighter ones (observed over 1,000 seeds: 6
      // messages, 250 MiB), stated here so a regression shows before it reaches those bounds.
      expect(report.maxQueued).toBeLessThanOrEqual(1000);
      expect(report.maxRssBytes).toBeLessThan(768 * 1024 ** 2);
      expect(report.maxRelayRssBytes).toBeLessThan(512 * 1024 ** 2);
      if (seed === 30 || seed === 34) expect(report.maxRelayRssBytes).toBeGreaterThan(0);
      if (seed === 34) expect(report.side.relayStarts * report.side.replicaProcesses).toBeGreaterThan(0);
      if (seed === 50) expect(report.side.writers).toBeGreaterThan(0);
      if (seed === 30) expect(report.side.writers * report.side.relayStarts).toBeGreaterThan(0);
    }, 120_000);
  }
});
