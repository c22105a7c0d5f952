// Sealing end to end: replicas with different secrets on one topic never apply each other's
// frames, both report ERR_DECRYPT and carry on; the right secret syncs; a peer that breaks the
// reassembly bound gets a typed error and a closed connection.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport, deriveTopic, generateDatabaseId } from '@rhizome/core';
import type { Connection, SyncEvent } from '@rhizome/core';
import { FrameSealer, keyMaterial, openDatabase, toFrames } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { collectEvents, nextEvent, uniqueHub, until } from './sync-helpers.js';

const open: Database[] = [];
const transports: MemoryTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
  await Promise.all(transports.splice(0).map((t) => t.disconnect()));
});

const isDecrypt = (e: SyncEvent): boolean => e.type === 'error' && e.error.code === 'ERR_DECRYPT';

describe('sealing between databases', () => {
  it('different secrets: no frame is applied, both report ERR_DECRYPT, neither crashes; the right secret syncs', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const a = await openDatabase({ id, secret: 'alpha secret', transport: { mode: 'memory', hub, peerId: 'a' } });
    open.push(a);
    const aEvents = collectEvents(a);
    const b = await openDatabase({ id, secret: 'bravo secret', transport: { mode: 'memory', hub, peerId: 'b' } });
    open.push(b);
    const bEvents = collectEvents(b);
    a.put('from-a', { v: 1 });
    b.put('from-b', { v: 2 });
    // Each side's step 1 fails to open on the other: both report ERR_DECRYPT.
    await until(a, () => aEvents.events.some(isDecrypt), 'ERR_DECRYPT on a');
    await until(b, () => bEvents.events.some(isDecrypt), 'ERR_DECRYPT on b');
    // More traffic: still nothing applied, connections still up, databases still usable.
    a.put('more-a', { v: 3 });
    await until(b, () => b.stats().decryptErrors >= 2, 'second frame refused on b');
    expect(a.list().map((n) => n.id)).toEqual(['from-a', 'more-a']);
    expect(b.list().map((n) => n.id)).toEqual(['from-b']);
    expect(a.peers().map((p) => p.peerId)).toEqual(['b']);
    expect(b.peers().map((p) => p.peerId)).toEqual(['a']);
    expect(a.stats().peers[0]!.synced).toBe(false);
    // A peer without the key never completes an exchange, so it does not hold whenSynced up…
    await a.whenSynced({ timeoutMs: 1_000 });
    // …and does not count as a synced peer either.
    await expect(a.whenSynced({ timeoutMs: 100, minPeers: 1 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(aEvents.events.filter((e) => e.type === 'node-upsert' && e.origin === 'remote')).toEqual([]);
    expect(bEvents.events.filter((e) => e.type === 'node-upsert' && e.origin === 'remote')).toEqual([]);
    for (const e of [...aEvents.events, ...bEvents.events]) {
      if (e.type === 'error') expect(e.error.code).toBe('ERR_DECRYPT');
    }

    // A third replica with a's secret syncs with a (and still cannot read b).
    const c = await openDatabase({ id, secret: 'alpha secret', transport: { mode: 'memory', hub, peerId: 'c' } });
    open.push(c);
    await until(c, () => c.get('more-a') !== undefined, 'a state on c');
    expect(c.list().map((n) => n.id)).toEqual(['from-a', 'more-a']);
    expect(c.get('from-b')).toBeUndefined();
    aEvents.stop();
    bEvents.stop();
  });

  it('without a secret the database id is the key: another id on a colliding topic cannot read', async () => {
    // Same topic, different key material: simulate a peer that knows only the topic (a relay).
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const d = await openDatabase({ id, transport: { mode: 'memory', hub, peerId: 'd' } });
    open.push(d);
    d.put('secret-node', { pin: 1234 });
    const eve = new MemoryTransport({ hub, peerId: 'eve' });
    transports.push(eve);
    const conns = (await eve.connect(deriveTopic(id)))[Symbol.asyncIterator]();
    const conn = (await conns.next()).value as Connection;
    const first = (await conn.receive())!;
    // What eve sees is sealed: the node's content is not in the bytes.
    expect(Buffer.from(first).includes(Buffer.from('secret-node'))).toBe(false);
    // A forgery sealed under the topic alone (no id) is refused.
    const forger = new FrameSealer(keyMaterial(Buffer.from(deriveTopic(id)).toString('hex')), deriveTopic(id));
    const refused = nextEvent(d, isDecrypt, 'ERR_DECRYPT for the forgery');
    await conn.send(forger.seal(toFrames(new Uint8Array([3, 0]), 1 << 16)[0]!));
    await refused;
    // Garbage is refused the same way, and d carries on.
    const refused2 = nextEvent(d, isDecrypt, 'ERR_DECRYPT for garbage');
    await conn.send(new Uint8Array([1, 2, 3]));
    await refused2;
    d.put('after', {});
    expect(d.get('after')).toEqual({});
    expect(conn.closed).toBe(false);
  });

  it('a key holder announcing a message above the reassembly bound: ERR_FRAME_TOO_LARGE and a closed connection', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const d = await openDatabase({ id, transport: { mode: 'memory', hub, peerId: 'd' }, limits: { maxMessageBytes: 100_000 } });
    open.push(d);
    const rogue = new MemoryTransport({ hub, peerId: 'rogue' });
    transports.push(rogue);
    const conn = (await (await rogue.connect(d.topic))[Symbol.asyncIterator]().next()).value as Connection;
    const sealer = new FrameSealer(keyMaterial(id), d.topic);
    const tooBig = nextEvent(d, (e) => e.type === 'error' && e.error.code === 'ERR_FRAME_TOO_LARGE', 'ERR_FRAME_TOO_LARGE');
    const gone = nextEvent(d, (e) => e.type === 'peer-disconnected' && e.peerId === 'rogue', 'rogue dropped');
    await conn.send(sealer.seal(toFrames(new Uint8Array(200_000), 60_000)[0]!));
    await tooBig;
    expect(await gone).toMatchObject({ reason: expect.stringContaining('ERR_FRAME_TOO_LARGE') });
    expect(await conn.receive().then(async function drain(m): Promise<null> {
      return m === null ? null : drain(await conn.receive());
    })).toBeNull();
    expect(d.peers()).toEqual([]);
  });
});

describe('protocol errors from a key holder', () => {
  it('skips unknown message types (reported) but closes on malformed known ones', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const d = await openDatabase({ id, transport: { mode: 'memory', hub, peerId: 'd' } });
    open.push(d);
    const peer = new MemoryTransport({ hub, peerId: 'peer' });
    transports.push(peer);
    const conn = (await (await peer.connect(d.topic))[Symbol.asyncIterator]().next()).value as Connection;
    const sealer = new FrameSealer(keyMaterial(id), d.topic);
    const skipped = nextEvent(d, (e) => e.type === 'error' && e.error.code === 'ERR_PROTOCOL', 'unknown type reported');
    await conn.send(sealer.seal(toFrames(new Uint8Array([0x7f, 1, 2, 3]), 1 << 16)[0]!));
    await skipped;
    expect(d.peers().map((p) => p.peerId)).toEqual(['peer']);
    const gone = nextEvent(d, (e) => e.type === 'peer-disconnected', 'peer dropped');
    // An updates message whose count runs past its bytes.
    await conn.send(sealer.seal(toFrames(new Uint8Array([0x03, 9, 1]), 1 << 16)[0]!));
    expect(await gone).toMatchObject({ reason: expect.stringContaining('ERR_PROTOCOL') });
    d.put('still', {});
    expect(d.get('still')).toEqual({});
  });
});
