// What an idle replica makes only on first use (BENCHMARKS.md § Issue 12, Session 7 (climem)): the
// update-rate windows, the node index, the health monitor's per-peer record. Two replicas over a
// real relay on 127.0.0.1: synced and idle first, then each lazily made part is used and works.
import { afterEach, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { createRelayServer } from '@rhizome/relay';
import type { RelayServer } from '@rhizome/relay';
import { until } from './sync-helpers.js';
import { idleFixture } from './idle-helpers.js';

const { poll, relay, replica } = idleFixture();

describe('an idle replica makes its machinery on first use', () => {
  it('rates, node index and peer health work once used after the replicas synced and idled', async () => {
    const server = await relay();
    const id = generateDatabaseId();
    const a = await replica(id, server.url);
    const b = await replica(id, server.url);
    await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 20_000 }), b.whenSynced({ minPeers: 1, timeoutMs: 20_000 })]);
    // Idle and synced: no update counted, no node indexed.
    expect(a.stats().rates).toEqual({ localUpdates: 0, remoteUpdates: 0 });
    expect(a.list()).toEqual([]);
    a.delete('absent'); // a delete with no index made yet is a no-op
    expect(a.stats().localUpdates).toBe(0);
    // Health pings run (every 100 ms here): both peers get evaluated and answer.
    await poll(() => (a.stats().peers[0]?.pongsReceived ?? 0) > 0 && a.stats().peers[0]?.healthReason === 'responding', 'a pong from b');
    expect(a.stats().peers[0]?.health).toBe('healthy');
    // First writes: the windows and the index are made, and the changes travel both ways.
    a.put('n1', { v: 1, w: 'x' });
    await until(b, () => b.get('n1')?.['v'] === 1, 'b to get n1');
    expect(b.get('n1')).toEqual({ v: 1, w: 'x' });
    expect(a.stats().rates.localUpdates).toBeGreaterThan(0);
    expect(b.stats().rates.remoteUpdates).toBeGreaterThan(0);
    b.delete('n1');
    await until(a, () => a.get('n1') === undefined, 'a to see n1 deleted');
    expect(a.list()).toEqual([]);
    expect(b.stats().rates.localUpdates).toBeGreaterThan(0);
  });
});
