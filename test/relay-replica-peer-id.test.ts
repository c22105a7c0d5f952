// A relay transport that openDatabase makes for one database (a single `{ mode: 'relay' }`
// configuration without a peerId) has the database's replica id as its relay peer id, so a remote
// session keeps one string for the peer's relay id and its replica id (ARCHITECTURE.md § Memory of
// an idle replica). A peerId given in the configuration, a Transport given ready-made and a list of
// transports keep their own ids; the replica id is still the one of the sealed REPLICA message.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport, generateDatabaseId } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';

const WAIT = 20_000;

describe('relay peer id of a database-made relay transport', () => {
  let relay: RelayServer;
  beforeAll(async () => {
    relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => relay.close());

  async function pairOf(a: Database, b: Database): Promise<void> {
    await Promise.all([a.whenSynced({ timeoutMs: WAIT }), b.whenSynced({ timeoutMs: WAIT })]);
    for (const db of [a, b]) {
      const deadline = Date.now() + WAIT;
      while (db.stats().peers.length !== 1 || db.stats().peers[0]!.replicaId === null) {
        if (Date.now() > deadline) throw new Error('no peer with a replica id');
        await db.whenSynced({ timeoutMs: WAIT });
        await new Promise((r) => setImmediate(r));
      }
    }
  }

  it('a single relay configuration: the peer id is the replica id (hex); data flows both ways', async () => {
    const id = generateDatabaseId();
    const a = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url, timeoutMs: WAIT } });
    const b = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url, timeoutMs: WAIT } });
    try {
      await pairOf(a, b);
      expect(a.replicaId).toMatch(/^[0-9a-f]{32}$/);
      expect(a.stats().peers[0]).toMatchObject({ peerId: b.replicaId, replicaId: b.replicaId, transport: 'relay' });
      expect(b.stats().peers[0]).toMatchObject({ peerId: a.replicaId, replicaId: a.replicaId, transport: 'relay' });
      expect(a.peers().map((p) => p.peerId)).toEqual([b.replicaId]);
      a.put('n', { from: 'a' });
      b.put('m', { from: 'b' });
      await Promise.all([a.whenSynced({ timeoutMs: WAIT }), b.whenSynced({ timeoutMs: WAIT })]);
      const deadline = Date.now() + WAIT;
      while (a.get('m') === undefined || b.get('n') === undefined) {
        if (Date.now() > deadline) throw new Error('writes did not cross');
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(a.get('m')).toEqual({ from: 'b' });
      expect(b.get('n')).toEqual({ from: 'a' });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a peerId in the configuration, a ready-made Transport and a list keep their own ids', async () => {
    const id = generateDatabaseId();
    const a = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url, timeoutMs: WAIT, peerId: 'named-a' } });
    const given = createTransport({ mode: 'relay', relayUrl: relay.url, timeoutMs: WAIT });
    const b = await openDatabase({ id, transport: given });
    try {
      await pairOf(a, b);
      expect(b.stats().peers[0]).toMatchObject({ peerId: 'named-a', replicaId: a.replicaId });
      expect(a.stats().peers[0]!.replicaId).toBe(b.replicaId);
      expect(a.stats().peers[0]!.peerId).not.toBe(b.replicaId);
      expect(a.stats().peers[0]!.peerId).toMatch(/^relay-[0-9a-f]{32}$/);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await given.disconnect();
    }
    const id2 = generateDatabaseId();
    const c = await openDatabase({ id: id2, transport: [{ mode: 'relay', relayUrl: relay.url, timeoutMs: WAIT }] });
    const d = await openDatabase({ id: id2, transport: { mode: 'relay', relayUrl: relay.url, timeoutMs: WAIT } });
    try {
      await pairOf(c, d);
      expect(d.stats().peers[0]!.replicaId).toBe(c.replicaId);
      expect(d.stats().peers[0]!.peerId).toMatch(/^relay-[0-9a-f]{32}$/);
      expect(c.stats().peers[0]).toMatchObject({ peerId: d.replicaId, replicaId: d.replicaId });
    } finally {
      await Promise.all([c.close(), d.close()]);
    }
  });
});
