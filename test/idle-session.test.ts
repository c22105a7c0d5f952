// What an idle synced peer session is made of since Session 9 (clisess) (BENCHMARKS.md § Issue 12):
// the session is its peer's meter (one object: traffic ring, RTT, ping bookkeeping, frame and
// byte totals), its yes/no states one field, its outbound queue a shared empty list until
// something is queued, and the database's counters, waiter lists and the node index's observer
// are made on first use. These tests check that what users rely on still holds: a peer synced
// and idle answers pings (RTT in stats), its counters move, it sends and receives after idling,
// a replaced connection and a closed peer leave the totals right, whenSynced waiters come and go,
// and close is clean and idempotent. Two or three replicas over a real relay on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { createRelayServer } from '@rhizome/relay';
import type { RelayServer } from '@rhizome/relay';
import { until } from './sync-helpers.js';
import { idleFixture } from './idle-helpers.js';

const { poll, relay, replica } = idleFixture();

describe('an idle synced peer session (session and meter in one object)', () => {
  it('answers pings with RTT, counts frames and bytes, and still sends and receives after idling', async () => {
    const server = await relay();
    const id = generateDatabaseId();
    const a = await replica(id, server.url);
    const b = await replica(id, server.url);
    await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 20_000 }), b.whenSynced({ minPeers: 1, timeoutMs: 20_000 })]);

    // Idle and synced: pings go out and come back, the RTT and the counters show in stats().
    await poll(() => (a.stats().peers[0]?.pongsReceived ?? 0) >= 3 && (b.stats().peers[0]?.pongsReceived ?? 0) >= 3, 'three pongs each way');
    for (const db of [a, b]) {
      const [peer] = db.stats().peers;
      expect(peer?.synced).toBe(true);
      // Reachable (degraded would only say the loaded machine's RTT passed 2 s: no timing asserted).
      expect(peer?.health).not.toBe('unreachable');
      expect(peer?.rttMs).toBeTypeOf('number');
      expect(Number.isFinite(peer!.rttMs!)).toBe(true);
      expect(peer!.rttMs!).toBeGreaterThanOrEqual(0);
      expect(peer!.pingsSent).toBeGreaterThanOrEqual(peer!.pongsReceived);
      expect(peer!.framesSent).toBeGreaterThan(0);
      expect(peer!.framesReceived).toBeGreaterThan(0);
      expect(peer!.bytesSent).toBeGreaterThan(peer!.framesSent);
      expect(peer!.bytesReceived).toBeGreaterThan(peer!.framesReceived);
      expect(peer!.rates.framesIn).toBeGreaterThan(0);
      expect(peer!.queued).toBe(0);
      expect(peer!.decryptErrors).toBe(0);
      // The database's totals are the sum over its sessions (no session ended yet).
      const totals = db.stats();
      expect(totals.framesReceived).toBe(peer!.framesReceived);
    }
    const before = a.stats().peers[0]!;
    const sentBefore = a.stats().bytesSent;

    // After idling, updates still flow both ways, and the counters move.
    a.put('x', { from: 'a' });
    b.put('y', { from: 'b' });
    await until(b, () => b.get('x')?.['from'] === 'a', 'b to get x');
    await until(a, () => a.get('y')?.['from'] === 'b', 'a to get y');
    const after = a.stats().peers[0]!;
    expect(after.framesReceived).toBeGreaterThan(before.framesReceived);
    // (a's update leaves once for the topic, by the relay's broadcast: counted in the database's totals.)
    expect(a.stats().bytesSent).toBeGreaterThan(sentBefore);

    // whenSynced waiters are made and dropped as needed (one that resolves, one that times out).
    await a.whenSynced({ minPeers: 1, timeoutMs: 5_000 });
    await expect(a.whenSynced({ minPeers: 2, timeoutMs: 100 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await a.whenSynced({ minPeers: 1, timeoutMs: 5_000 });

    // A peer that leaves: its counters go into the database's totals, it is gone from peers().
    const framesWithB = a.stats().framesReceived;
    const left = new Promise<void>((resolve) => {
      const sub = a.events.subscribe();
      void (async () => {
        for await (const e of sub) {
          if (e.type === 'peer-disconnected') {
            sub.unsubscribe();
            resolve();
            return;
          }
        }
      })();
    });
    await b.close();
    await b.close(); // idempotent
    await left;
    expect(a.peers()).toEqual([]);
    expect(a.stats().peers).toEqual([]);
    expect(a.stats().framesReceived).toBeGreaterThanOrEqual(framesWithB);

    // A new peer after that: synced, pinged, updates flow, and the totals keep the old peer's frames.
    const c = await replica(id, server.url);
    await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 20_000 }), c.whenSynced({ minPeers: 1, timeoutMs: 20_000 })]);
    expect(c.get('x')?.['from']).toBe('a');
    await poll(() => a.stats().peers[0]?.rttMs != null, 'an RTT sample with c');
    expect(a.stats().framesReceived).toBeGreaterThan(framesWithB);
    c.put('z', { from: 'c' });
    await until(a, () => a.get('z')?.['from'] === 'c', 'a to get z');
    await a.close();
    await a.close();
  });
});
