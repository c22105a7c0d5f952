// Health: RTT from sealed pings, lag from pong acknowledgements, peer health states from silence,
// rate-limited peer-health events, and the database's own health. Memory transport with a
// fault-injecting link (delay, stall, heal) on both replicas.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import type { HealthState, SyncEvent } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database, DatabaseOptions, HealthOptions } from '@rhizome/sync';
import { createRelayServer } from '@rhizome/relay';
import { FaultyTransport, LinkFaults } from './faulty-link.js';
import { collectEvents, uniqueHub } from './sync-helpers.js';

const open: Database[] = [];
const transports: MemoryTransport[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
  await Promise.all(transports.splice(0).map((t) => t.disconnect()));
});

/** Polls `check` every 20 ms until it holds; fails after `timeoutMs`. */
async function poll(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const FAST: HealthOptions = {
  pingIntervalMs: 100,
  checkIntervalMs: 25,
  degradedSilenceMs: 400,
  unreachableSilenceMs: 900,
  eventBurst: 50,
  eventRefillMs: 60_000,
};

/** Two replicas on one hub, both links through one {@link LinkFaults}. */
async function pair(health: HealthOptions = FAST, extra: Partial<DatabaseOptions> = {}): Promise<{ a: Database; b: Database; faults: LinkFaults }> {
  const hub = uniqueHub('health');
  const id = generateDatabaseId();
  const faults = new LinkFaults();
  const dbs: Database[] = [];
  for (const peerId of ['a', 'b']) {
    const inner = new MemoryTransport({ hub, peerId });
    transports.push(inner);
    const d = await openDatabase({ id, transport: new FaultyTransport(inner, faults), health, ...extra });
    open.push(d);
    dbs.push(d);
  }
  const [a, b] = dbs as [Database, Database];
  await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 10_000 }), b.whenSynced({ minPeers: 1, timeoutMs: 10_000 })]);
  return { a, b, faults };
}

function peerHealthOf(events: SyncEvent[], peerId: string): HealthState[] {
  return events.flatMap((e) => (e.type === 'peer-health' && e.peerId === peerId ? [e.health] : []));
}

describe('round-trip time', () => {
  it('is measured by sealed pings and reflects the link delay', async () => {
    const { a, b, faults } = await pair();
    await poll(() => a.stats().peers[0]?.rttMs != null, 'a first RTT sample');
    const fast = a.stats().peers[0]?.rttMs as number;
    expect(fast).toBeGreaterThanOrEqual(0);
    expect(fast).toBeLessThan(500);

    // 60 ms added on each side's inbound: a ping and its pong cross the link once each.
    faults.delayMs = 60;
    await poll(() => (a.stats().peers[0]?.pongsReceived ?? 0) >= 8 && (a.stats().peers[0]?.rttMs ?? 0) >= 100, 'RTT to grow with the delay');
    const peer = a.stats().peers[0];
    expect(peer?.rttMs).toBeGreaterThanOrEqual(100);
    expect(peer?.rttMs).toBeLessThan(2_000);
    expect(peer?.transport).toBe('memory');
    expect(peer?.health).toBe('healthy');
    expect(b.stats().peers[0]?.pongsReceived).toBeGreaterThan(0);
  });

  it('stats carry traffic rates, connection time and database counters', async () => {
    const { a, b } = await pair();
    const before = Date.now();
    for (let i = 0; i < 20; i++) a.put(`n${i}`, { i });
    await poll(() => b.size === 20, 'b to hold 20 nodes');
    const sa = a.stats();
    const peer = sa.peers[0];
    expect(peer?.connectedAt).toBeLessThanOrEqual(before);
    expect(peer?.rates.bytesOut).toBeGreaterThan(0);
    expect(peer?.rates.framesOut).toBeGreaterThan(0);
    expect(peer?.idleMs).toBeGreaterThanOrEqual(0);
    expect(sa.localUpdates).toBe(20);
    expect(sa.rates.localUpdates).toBeGreaterThan(0);
    expect(sa.uptimeMs).toBeGreaterThanOrEqual(0);
    expect(sa.persistence.pendingUpdates).toBe(0);
    expect(b.stats().remoteUpdates).toBeGreaterThan(0);
    expect(b.stats().rates.remoteUpdates).toBeGreaterThan(0);
  });
});

describe('lag', () => {
  it('counts local updates the peer has not acknowledged, and drops to 0 once it has', async () => {
    const { a, b, faults } = await pair();
    await poll(() => (a.stats().peers[0]?.pongsReceived ?? 0) > 0, 'a first pong');
    await poll(() => a.stats().peers[0]?.unackedUpdates === 0, 'nothing unacknowledged');
    faults.stall();
    for (let i = 0; i < 5; i++) a.put(`lag-${i}`, { i });
    expect(a.stats().peers[0]?.unackedUpdates).toBe(5);
    expect(a.stats().health.unsentLocalUpdates).toBe(5);
    faults.heal();
    await poll(() => a.stats().peers[0]?.unackedUpdates === 0, 'the peer to acknowledge the 5 updates');
    expect(b.get('lag-4')).toEqual({ i: 4 });
  });
});

describe('acknowledgements through a relay (live updates go out as one sealed broadcast)', () => {
  it('a pong never acknowledges an update the peer does not hold yet', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
    try {
      const id = generateDatabaseId();
      const health = { ...FAST, pingIntervalMs: 5, checkIntervalMs: 5 };
      const a = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url }, health });
      const b = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url }, health });
      open.push(a, b);
      await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 20_000 }), b.whenSynced({ minPeers: 1, timeoutMs: 20_000 })]);
      const base = a.stats().localUpdates;
      let checks = 0;
      let maxAcked = 0;
      // Node i is local update base + i + 1 of A; whatever A counts as acknowledged, B holds.
      for (let i = 0; i < 3_000; i += 150) {
        for (let j = i; j < i + 150; j++) a.put(`n${j}`, { j });
        await new Promise((resolve) => setTimeout(resolve, 1));
        const peer = a.stats().peers[0];
        if (!peer) continue;
        const acked = a.stats().localUpdates - peer.unackedUpdates - base;
        maxAcked = Math.max(maxAcked, acked);
        checks++;
        expect(b.size).toBeGreaterThanOrEqual(acked);
      }
      await poll(() => a.stats().peers[0]?.unackedUpdates === 0, 'every update acknowledged', 20_000);
      expect(b.size).toBe(3_000);
      expect(checks).toBeGreaterThan(10);
    } finally {
      await Promise.all(open.splice(0).map((d) => d.close()));
      await relay.close();
    }
  });
});

describe('peer health', () => {
  it('a link that stops delivering makes the peer degraded, then unreachable, and healthy when it heals', async () => {
    const { a, faults } = await pair();
    const seen = collectEvents(a);
    await poll(() => (a.stats().peers[0]?.pongsReceived ?? 0) > 0, 'a first pong');
    faults.stall();
    await poll(() => a.stats().peers[0]?.health === 'unreachable', 'the peer to become unreachable');
    faults.heal();
    await poll(() => a.stats().peers[0]?.health === 'healthy' && peerHealthOf(seen.events, 'b').at(-1) === 'healthy', 'the peer to be healthy again');
    seen.stop();
    expect(peerHealthOf(seen.events, 'b')).toEqual(['degraded', 'unreachable', 'healthy']);
    const events = seen.events.filter((e): e is Extract<SyncEvent, { type: 'peer-health' }> => e.type === 'peer-health');
    expect(events.map((e) => e.severity)).toEqual(['warning', 'critical', 'info']);
    expect(events[0]?.reason).toMatch(/nothing received for \d+ ms/);
  });

  it('a flapping link produces a bounded number of events', async () => {
    const { a, faults } = await pair({ ...FAST, degradedSilenceMs: 60, unreachableSilenceMs: 120, eventBurst: 3, eventRefillMs: 60_000 });
    const seen = collectEvents(a);
    for (let i = 0; i < 12; i++) {
      faults.stall();
      await poll(() => a.stats().peers[0]?.health !== 'healthy', `flap ${i}: not healthy`);
      faults.heal();
      await poll(() => a.stats().peers[0]?.health === 'healthy', `flap ${i}: healthy`);
    }
    seen.stop();
    // 12 round trips through degraded and back: 24+ state changes, at most `eventBurst` events.
    expect(peerHealthOf(seen.events, 'b').length).toBe(3);
  });

  it('refuses bad health options with ERR_INVALID_CONFIG naming the field', async () => {
    await expect(openDatabase({ id: generateDatabaseId(), health: { pingIntervalMs: 0 } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', message: expect.stringContaining('health.pingIntervalMs') });
    await expect(openDatabase({ id: generateDatabaseId(), health: { degradedSilenceMs: 500, unreachableSilenceMs: 400 } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' });
    await expect(openDatabase({ id: generateDatabaseId(), health: { bogus: 1 } as HealthOptions })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', message: expect.stringContaining('health.bogus') });
  });
});

describe('database health', () => {
  it('is unreachable (critical) while local writes wait and no peer is reachable, healthy once a peer acknowledges them', async () => {
    const hub = uniqueHub('health-db');
    const id = generateDatabaseId();
    const health = { ...FAST, offlineAlertMs: 200 };
    const lone = new MemoryTransport({ hub, peerId: 'lone' });
    transports.push(lone);
    const a = await openDatabase({ id, transport: lone, health });
    open.push(a);
    const seen = collectEvents(a);
    const dbHealth = (): Array<[string, string]> =>
      seen.events.flatMap((e) => (e.type === 'health' ? [[e.health, e.severity] as [string, string]] : []));
    a.put('offline-1', { v: 1 });
    // The monitor's timer publishes the change; stats() shows it as soon as it holds.
    await poll(() => dbHealth().length === 1, 'the database health event');
    expect(dbHealth()).toEqual([['unreachable', 'critical']]);
    expect(a.stats().health).toMatchObject({ health: 'unreachable', severity: 'critical', unsentLocalUpdates: 1 });

    const other = new MemoryTransport({ hub, peerId: 'other' });
    transports.push(other);
    const b = await openDatabase({ id, transport: other, health });
    open.push(b);
    await poll(() => dbHealth().length === 2, 'the database to be healthy again');
    // The peer acknowledges the waiting update with its first pong.
    await poll(() => a.stats().health.unsentLocalUpdates === 0, 'the update to be acknowledged');
    seen.stop();
    expect(dbHealth()).toEqual([
      ['unreachable', 'critical'],
      ['healthy', 'info'],
    ]);
    expect(a.stats().health).toMatchObject({ health: 'healthy', unsentLocalUpdates: 0 });
    expect(b.get('offline-1')).toEqual({ v: 1 });
  });

  it('a local-only database never alerts about delivery', async () => {
    const d = await openDatabase({ id: generateDatabaseId(), health: { ...FAST, offlineAlertMs: 50 } });
    open.push(d);
    const seen = collectEvents(d);
    d.put('x', { v: 1 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    seen.stop();
    expect(d.stats().health).toMatchObject({ health: 'healthy', unsentLocalUpdates: 0 });
    expect(seen.events.filter((e) => e.type === 'health')).toEqual([]);
  });
});
