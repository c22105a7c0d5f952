// One database on several transports at once (issue 13): each remote replica is one session,
// over the better path, whichever transports reach it; the other path waits as a standby and
// takes over, losing nothing, when the better one ends. Real relay and libp2p nodes on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTransport, createTransport, generateDatabaseId, type SyncEvent } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';
import { DhtTransport } from '@rhizome/transport-dht';
import type { preferred } from '@rhizome/sync';
import { MultiTransport, ReplicaRouter, decodeReplica, encodeReplica } from '@rhizome/sync';
import { collectEvents, tempDir, uniqueHub, until } from './sync-helpers.js';

const WAIT = 20_000;
let relay: RelayServer;
const tmp = tempDir('rhizome-multi-');
const open: Database[] = [];

beforeAll(async () => {
  relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await Promise.allSettled(open.map((db) => db.close()));
  await relay.close();
  tmp.cleanup();
});

function relayConfig(): { mode: 'relay'; relayUrl: string; timeoutMs: number } {
  return { mode: 'relay', relayUrl: relay.url, timeoutMs: WAIT };
}

async function openDb(id: string, transport: NonNullable<Parameters<typeof openDatabase>[0]['transport']>, name: string): Promise<Database> {
  const db = await openDatabase({ id, path: `${tmp.dir}/${name}-${generateDatabaseId().slice(0, 8)}.db`, transport });
  open.push(db);
  return db;
}

function paths(db: Database): string[] {
  return db.stats().peers.map((p) => p.path).sort();
}

describe('replica identity in the sealed handshake', () => {
  it('encodes as 0x07, version 1, 16 id bytes; a truncated one is ERR_PROTOCOL', () => {
    const id = Uint8Array.from({ length: 16 }, (_, i) => i);
    const bytes = encodeReplica(id);
    expect([...bytes.subarray(0, 2)]).toEqual([0x07, 1]);
    expect(bytes.length).toBe(18);
    expect(decodeReplica(bytes)).toBe('000102030405060708090a0b0c0d0e0f');
    expect(() => decodeReplica(bytes.subarray(0, 10))).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL' }));
  });

  it('the router keeps the better path and promotes the standby when it ends', () => {
    type S = { conn: { transport: string; path: 'direct' | 'relay' | 'circuit' }; replicaId: string; closed: boolean };
    const mk = (transport: string, path: S['conn']['path']): S => ({ conn: { transport, path }, replicaId: 'r', closed: false });
    const router = new ReplicaRouter<S & Parameters<typeof preferred>[0]>();
    const circuit = mk('dht', 'circuit') as never;
    const ws = mk('relay', 'relay') as never;
    const direct = mk('dht', 'direct') as never;
    expect(router.bind(circuit)).toBeNull();
    expect(router.bind(ws)).toBe(circuit); // the WebSocket relay beats a circuit relay
    expect(router.bind(direct)).toBe(ws); // direct beats both
    expect(router.isStandby(ws)).toBe(true);
    expect(router.unbind(direct)).toBe(ws); // the best standby takes over
    expect(router.unbind(ws)).toBe(circuit);
    expect(router.unbind(circuit)).toBeNull();
  });
});

describe('one database, several transports', () => {
  it('memory + relay: one session per replica on the better path; the relay takes over when it ends, losing nothing', async () => {
    const id = generateDatabaseId();
    const hub = uniqueHub('multi');
    const memA = new MemoryTransport({ hub, peerId: 'a' });
    const memB = new MemoryTransport({ hub, peerId: 'b' });
    const a = await openDb(id, [memA, relayConfig()], 'a');
    const b = await openDb(id, [memB, relayConfig()], 'b');
    expect(a.transport).toBeInstanceOf(MultiTransport);
    a.put('n1', { from: 'a' });
    b.put('n2', { from: 'b' });
    // Both paths come up; each side ends with exactly one session, on the in-process path.
    await until(a, () => a.stats().peers.length === 1 && a.stats().peers[0]!.path === 'memory' && a.get('n2') !== undefined, 'a on the memory path with n2', WAIT);
    await until(b, () => b.stats().peers.length === 1 && b.stats().peers[0]!.path === 'memory' && b.get('n1') !== undefined, 'b on the memory path with n1', WAIT);
    await a.whenSynced({ timeoutMs: WAIT, minPeers: 1 });
    expect(a.stats().peers[0]!.replicaId).toBe(b.replicaId);
    expect(b.stats().peers[0]!.replicaId).toBe(a.replicaId);

    // The memory path ends: the standby relay session is promoted on both sides.
    const events = collectEvents(b);
    await memA.disconnect();
    await until(a, () => paths(a).join() === 'relay', 'a promoted to the relay path', WAIT);
    await until(b, () => paths(b).join() === 'relay', 'b promoted to the relay path', WAIT);
    // Writes made while the sessions switch arrive too.
    for (let i = 0; i < 50; i++) a.put(`late-${i}`, { i });
    await until(b, () => b.get('late-49') !== undefined, 'b sees the writes made across the switch', WAIT);
    expect(b.list().filter((n) => n.id.startsWith('late-')).length).toBe(50);
    events.stop();
    const connected = events.events.filter((e): e is Extract<SyncEvent, { type: 'peer-connected' }> => e.type === 'peer-connected');
    expect(connected.length).toBeGreaterThanOrEqual(1);
    await memB.disconnect();
  });

  it('dht + relay on 127.0.0.1: both replicas end on the direct libp2p path with one session each', async () => {
    const id = generateDatabaseId();
    const dhtA = new DhtTransport({ listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true, mdns: false, timeoutMs: WAIT });
    await dhtA.start();
    const dhtB = new DhtTransport({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      allowPrivateAddresses: true,
      mdns: false,
      timeoutMs: WAIT,
      bootstrap: dhtA.multiaddrs(),
    });
    try {
      const a = await openDb(id, [dhtA, createTransport(relayConfig())], 'da');
      const b = await openDb(id, [dhtB, createTransport(relayConfig())], 'db');
      a.put('x', { v: 1 });
      await until(b, () => b.get('x') !== undefined, 'b has x', WAIT);
      await until(a, () => paths(a).join() === 'direct', 'a on the direct path only', WAIT);
      await until(b, () => paths(b).join() === 'direct', 'b on the direct path only', WAIT);
      expect(a.stats().peers).toHaveLength(1);
      expect(b.stats().peers).toHaveLength(1);
      expect(a.stats().peers[0]!.transport).toBe('dht');
      b.put('y', { v: 2 });
      await until(a, () => a.get('y') !== undefined, 'a has y', WAIT);
      await Promise.all([a.close(), b.close()]);
    } finally {
      await Promise.allSettled([dhtA.disconnect(), dhtB.disconnect()]);
    }
  });

  it('rejects an empty transport list and a bad entry with ERR_INVALID_CONFIG naming it', async () => {
    await expect(openDatabase({ id: 'x', transport: [] })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' });
    await expect(openDatabase({ id: 'x', transport: [{ mode: 'memory' }, 7 as never] })).rejects.toThrow(/transport\[1\]/);
  });
});
