// Sessions keep their meters in the process's meter rows (packages/sync/src/meter-rows.ts,
// BENCHMARKS.md § Issue 12, Session 13 (peerpark)): one row per session while it runs, given back
// when its peer leaves (the ended session's numbers stay readable), and taken by the next session,
// which starts from zero. Relay replicas with fast health pings: pings answered and counted, then
// a replica leaves, another joins.
import { describe, expect, it } from 'vitest';
import type { Database } from '@rhizome/sync';
import { meterRowStats } from '../packages/sync/src/meter-rows.js';
import { idleFixture } from './idle-helpers.js';

const { poll, relay, replica } = idleFixture();

function peerOf(db: Database, other: Database) {
  return db.stats().peers.find((p) => p.replicaId === other.replicaId);
}

describe('meter rows of sessions', () => {
  it('holds one row per running session, gives it back when the peer leaves, and a new session starts from zero in a reused row', async () => {
    const base = meterRowStats().live;
    const server = await relay();
    const id = `meter-rows-${Math.random()}`;
    const a = await replica(id, server.url);
    const b = await replica(id, server.url);
    const c = await replica(id, server.url);
    await poll(() => [a, b, c].every((db) => db.stats().peers.length === 2 && db.stats().peers.every((p) => p.synced)), 'three replicas synced');
    expect(meterRowStats().live).toBe(base + 6);

    // Pings answered from both sides, counted in the rows.
    await poll(() => [a, b, c].every((db) => db.stats().peers.every((p) => p.pongsReceived >= 3 && p.rttMs !== null)), 'pongs');
    for (const db of [a, b, c]) {
      for (const p of db.stats().peers) {
        expect(p.pingsSent).toBeGreaterThanOrEqual(p.pongsReceived);
        expect(p.framesReceived).toBeGreaterThanOrEqual(p.pongsReceived);
        expect(p.bytesReceived).toBeGreaterThan(p.framesReceived);
        expect(p.health).toBe('healthy');
      }
    }

    // C leaves: its two sessions and the two sessions to it give their rows back.
    const pages = meterRowStats().pages;
    await c.close({ flushTimeoutMs: 0 });
    await poll(() => a.stats().peers.length === 1 && b.stats().peers.length === 1, 'c gone');
    await poll(() => meterRowStats().live === base + 2, 'rows of the ended sessions given back');
    const ab = peerOf(a, b)!;
    await poll(() => peerOf(a, b)!.pongsReceived > ab.pongsReceived, 'pings go on between a and b');

    // D joins: its sessions take the released rows (no new page) and start from zero.
    const joinedAt = Date.now();
    const d = await replica(id, server.url);
    await poll(() => [a, b, d].every((db) => db.stats().peers.length === 2 && db.stats().peers.every((p) => p.synced)), 'd synced');
    expect(meterRowStats().live).toBe(base + 6);
    expect(meterRowStats().pages).toBeLessThanOrEqual(pages);
    const ad = peerOf(a, d)!;
    const abNow = peerOf(a, b)!;
    expect(ad.connectedAt).toBeGreaterThanOrEqual(joinedAt - 5);
    expect(ad.pingsSent).toBeLessThan(abNow.pingsSent);
    expect(ad.framesReceived).toBeLessThan(abNow.framesReceived);
    expect(ad.bytesReceived).toBeLessThan(abNow.bytesReceived);
    await poll(() => peerOf(a, d)!.pongsReceived >= 2 && peerOf(d, a)!.pongsReceived >= 2, 'pings between a and d');
  });
});
