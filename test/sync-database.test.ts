// The Database API over the memory transport: node API, events and origins, no echo,
// whenSynced, close, chunked sync under a 64 KiB frame cap. Real SQLite files where a path is used.
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import * as Y from 'yjs';
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import type { SyncEvent } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database, DatabaseOptions } from '@rhizome/sync';
import { TapTransport, collectEvents, nextEvent, tempDir, uniqueHub, until } from './sync-helpers.js';

const open: Database[] = [];
const cleanups: Array<() => void> = [];

async function db(options: DatabaseOptions): Promise<Database> {
  const d = await openDatabase(options);
  open.push(d);
  return d;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
  for (const c of cleanups.splice(0)) c();
});

/** Two (or more) replicas of one database on a fresh hub, each waiting until it sees the others. */
async function replicas(n: number, extra: Partial<DatabaseOptions> = {}, transportOptions: { maxMessageSize?: number } = {}): Promise<Database[]> {
  const hub = uniqueHub();
  const id = generateDatabaseId();
  const out: Database[] = [];
  for (let i = 0; i < n; i++) {
    out.push(await db({ id, ...extra, transport: { mode: 'memory', hub, peerId: `p${i}`, ...transportOptions } }));
  }
  await Promise.all(out.map((d) => d.whenSynced({ minPeers: n - 1, timeoutMs: 20_000 })));
  return out;
}

describe('node API', () => {
  it('puts, merges fields, gets, lists and deletes', async () => {
    const d = await db({ id: 'local-only' });
    d.put('b', { title: 'B', n: 1 });
    d.put('a', { title: 'A' });
    d.put('b', { done: true });
    expect(d.get('b')).toEqual({ title: 'B', n: 1, done: true });
    expect(d.list().map((x) => x.id)).toEqual(['a', 'b']);
    d.delete('a');
    expect(d.get('a')).toBeUndefined();
    expect(d.list()).toEqual([{ id: 'b', data: { done: true, n: 1, title: 'B' } }]);
    d.delete('nope');
  });

  it('returns copies: mutating put input or get output does not touch the document', async () => {
    const d = await db({ id: 'copies' });
    const input = { tags: ['x'] };
    d.put('n', input);
    input.tags.push('y');
    const got = d.get('n')!;
    (got.tags as string[]).push('z');
    expect(d.get('n')).toEqual({ tags: ['x'] });
  });

  it('rejects bad node ids and non-JSON data with ERR_INVALID_ARGUMENT', async () => {
    const d = await db({ id: 'validation' });
    const bad: unknown[][] = [
      ['', {}],
      [42, {}],
      ['a\u0000b', {}],
      ['x'.repeat(1025), {}],
      ['\uD800', {}],
      ['n', null],
      ['n', []],
      ['n', 'text'],
      ['n', { v: undefined }],
      ['n', { v: Number.NaN }],
      ['n', { v: Infinity }],
      ['n', { v: 1n }],
      ['n', { v: () => 1 }],
      ['n', { v: new Date() }],
      ['n', { v: new Uint8Array(2) }],
      ['n', { v: Object.defineProperty({}, '__proto__', { value: 1, enumerable: true }) }],
      ['n', JSON.parse('{"__proto__": {"polluted": true}}') as unknown],
      ['n', { v: 'lone \uDC00 surrogate' }],
      ['n', { v: [1, , 3] }],
    ];
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    bad.push(['n', { v: cyclic }]);
    for (const [id, data] of bad) {
      expect(() => d.put(id as string, data as never), `put(${String(id)}, …)`).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
    expect(() => d.get('' as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => d.delete(7 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(d.list()).toEqual([]);
    // -0 is stored as 0 (the wire encoding would make it 0 on other replicas).
    d.put('z', { v: -0 });
    expect(Object.is(d.get('z')!.v, 0)).toBe(true);
  });

  it('validates options with ERR_INVALID_CONFIG naming the field', async () => {
    await expect(openDatabase({ id: '' })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'id' });
    await expect(openDatabase({ id: 'x', secret: '' })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'secret' });
    await expect(openDatabase({ id: 'x', transport: { mode: 'memory', encryption: false } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG' });
    await expect(openDatabase({ id: 'x', transport: { mode: 'nope' as never } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'mode' });
    await expect(openDatabase({ id: 'x', limits: { maxFrameBytes: 100 } })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'limits.maxFrameBytes' });
    const tiny = new MemoryTransport({ hub: uniqueHub(), maxMessageSize: 80 });
    await expect(openDatabase({ id: 'x', transport: tiny })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'transport.maxMessageSize' });
    await tiny.disconnect();
    const d = await db({ id: 'x' });
    await expect(d.whenSynced({ minPeers: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('close is idempotent, flushes to the file, and later calls throw ERR_CLOSED', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const path = join(dir, 'a.db');
    const d = await openDatabase({ id: 'closing', path });
    d.put('n', { v: 1 });
    await Promise.all([d.close(), d.close()]);
    await d.close();
    expect(() => d.put('n', { v: 2 })).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(() => d.list()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    await expect(d.whenSynced()).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    const again = await db({ id: 'closing', path });
    expect(again.get('n')).toEqual({ v: 1 });
  });

  it('close() called by a listener while close() is starting is the same close (one run, one promise)', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const d = await openDatabase({ id: 'closing-reentry', path: join(dir, 'a.db') });
    d.put('n', { v: 1 });
    d.awareness.setLocalState({ name: 'a' });
    // close() removes the local awareness state synchronously: an app listener reacting to it by
    // closing the database (as one would on 'error') re-enters close() before it has returned.
    let inner: Promise<void> | undefined;
    d.awareness.on('change', () => {
      inner ??= d.close();
    });
    const outer = d.close();
    expect(inner).toBe(outer);
    await outer;
    expect((await db({ id: 'closing-reentry', path: join(dir, 'a.db') })).get('n')).toEqual({ v: 1 });
  });

  it('keeps several databases apart in one file', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const path = join(dir, 'shared.db');
    const a = await openDatabase({ id: 'one', path });
    const b = await openDatabase({ id: 'two', path });
    a.put('n', { from: 'one' });
    b.put('n', { from: 'two' });
    await a.close();
    await b.close();
    expect((await db({ id: 'one', path })).get('n')).toEqual({ from: 'one' });
    expect((await db({ id: 'two', path })).get('n')).toEqual({ from: 'two' });
  });
});

describe('sync over the memory transport', () => {
  it('converges two replicas, with local and remote origins on the events', async () => {
    const [a, b] = (await replicas(2)) as [Database, Database];
    const aEvents = collectEvents(a);
    const seen = nextEvent(b, (e) => e.type === 'node-upsert' && e.id === 'n1', 'n1 on b');
    a.put('n1', { title: 'hello' });
    const remote = await seen;
    expect(remote).toEqual({ type: 'node-upsert', id: 'n1', data: { title: 'hello' }, origin: 'remote' });
    expect(aEvents.events).toContainEqual({ type: 'node-upsert', id: 'n1', data: { title: 'hello' }, origin: 'local' });
    const gone = nextEvent(a, (e) => e.type === 'node-delete', 'delete on a');
    b.delete('n1');
    expect(await gone).toEqual({ type: 'node-delete', id: 'n1', origin: 'remote' });
    aEvents.stop();
    expect(a.list()).toEqual([]);
    expect(a.peers().map((p) => p.peerId)).toEqual(['p1']);
  });

  it('keeps concurrent puts of different fields of one new node', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    // Both create node n while apart (each only on its own hub), then meet.
    const a = await openDatabase({ id });
    const b = await openDatabase({ id });
    a.put('n', { x: 1 });
    b.put('n', { y: 2 });
    const stateA = Y.encodeStateAsUpdate(a.doc);
    const stateB = Y.encodeStateAsUpdate(b.doc);
    await a.close();
    await b.close();
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    // Reload each side's state into file-backed replicas on one hub.
    const seed = async (name: string, state: Uint8Array, peerId: string): Promise<Database> => {
      const path = join(dir, `${name}.db`);
      const d0 = await openDatabase({ id, path });
      Y.applyUpdate(d0.doc, state);
      await d0.close();
      return db({ id, path, transport: { mode: 'memory', hub, peerId } });
    };
    const ra = await seed('a', stateA, 'a');
    const rb = await seed('b', stateB, 'b');
    await Promise.all([ra.whenSynced({ minPeers: 1 }), rb.whenSynced({ minPeers: 1 })]);
    expect(ra.get('n')).toEqual({ x: 1, y: 2 });
    expect(rb.get('n')).toEqual({ x: 1, y: 2 });
  });

  it('does not echo updates back to the peer they came from', async () => {
    const [a, b] = (await replicas(2)) as [Database, Database];
    const before = { aSent: a.stats().framesSent, bSent: b.stats().framesSent, aRecv: a.stats().framesReceived };
    for (let i = 0; i < 50; i++) a.put(`n${i}`, { i });
    await until(b, () => b.size === 50, '50 nodes on b');
    // A marker from b: anything b echoed would travel ahead of it on the same ordered connection.
    const marker = nextEvent(a, (e) => e.type === 'node-upsert' && e.id === 'marker', 'marker on a');
    b.put('marker', {});
    await marker;
    expect(b.stats().framesSent - before.bSent).toBe(1);
    expect(a.stats().framesReceived - before.aRecv).toBe(1);
    expect(a.stats().framesSent - before.aSent).toBeGreaterThanOrEqual(1);
  });

  it('relays updates through a middle replica without loops (three peers)', async () => {
    const [a, b, c] = (await replicas(3)) as [Database, Database, Database];
    for (let i = 0; i < 20; i++) [a, b, c][i % 3]!.put(`n${i % 7}`, { [`f${i % 3}`]: i });
    await Promise.all([a, b, c].map((d) => until(d, () => d.size === 7 && d.list().every((n) => Object.keys(n.data).length >= 1), 'nodes')));
    const marker = (d: Database): Promise<SyncEvent> => nextEvent(d, (e) => e.type === 'node-upsert' && e.id === 'end', 'end marker');
    const waits = [marker(b), marker(c)];
    a.put('end', {});
    await Promise.all(waits);
    expect(b.list()).toEqual(a.list());
    expect(c.list()).toEqual(a.list());
  });

  it('whenSynced rejects with ERR_TIMEOUT when a peer never answers', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    // A silent peer: joins the topic on the hub but never speaks the protocol.
    const silent = new MemoryTransport({ hub, peerId: 'silent' });
    const d = await db({ id, transport: { mode: 'memory', hub, peerId: 'me' } });
    const conns = await silent.connect(d.topic);
    const it0 = conns[Symbol.asyncIterator]();
    await it0.next();
    await expect(d.whenSynced({ timeoutMs: 200, minPeers: 1 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await expect(d.whenSynced({ timeoutMs: 100, minPeers: 2 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await silent.disconnect();
  });

  it('reports peer-disconnected and drops the peer when it closes', async () => {
    const [a, b] = (await replicas(2)) as [Database, Database];
    b.awareness.setLocalStateField('user', 'bob');
    if (a.awareness.getStates().size < 2) {
      await new Promise<void>((resolve) => {
        const onChange = (): void => {
          if (a.awareness.getStates().size < 2) return;
          a.awareness.off('change', onChange);
          resolve();
        };
        a.awareness.on('change', onChange);
      });
    }
    expect([...a.awareness.getStates().values()]).toContainEqual({ user: 'bob' });
    const left = nextEvent(a, (e) => e.type === 'peer-disconnected', 'peer-disconnected');
    await b.close();
    expect(await left).toMatchObject({ type: 'peer-disconnected', peerId: 'p1' });
    expect(a.peers()).toEqual([]);
    expect(a.awareness.getStates().size).toBe(1);
  });

  it('splits large states into frames under a 64 KiB cap and reassembles them', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const t1 = new MemoryTransport({ hub, peerId: 'src', maxMessageSize: 65536 });
    const t2 = new MemoryTransport({ hub, peerId: 'fresh', maxMessageSize: 65536 });
    cleanups.push(() => void t1.disconnect(), () => void t2.disconnect());
    const source = await db({ id, transport: t1 });
    const N = 20_000;
    source.doc.transact(() => {
      for (let i = 0; i < N; i++) source.put(`node-${i}`, { i, title: `title ${i}`, tags: ['a', 'b'] });
    });
    const state = Y.encodeStateAsUpdate(source.doc).length;
    expect(state).toBeGreaterThan(65536 * 4);
    const fresh = await db({ id, transport: t2 });
    await fresh.whenSynced({ minPeers: 1, timeoutMs: 30_000 });
    expect(fresh.size).toBe(N);
    expect(fresh.get('node-123')).toEqual({ i: 123, title: 'title 123', tags: ['a', 'b'] });
    const peer = fresh.stats().peers[0]!;
    expect(peer.framesReceived).toBeGreaterThan(state / 65536);
    expect(peer.bytesReceived).toBeLessThan(state * 1.1 + 4096);
  });
});

describe('network events after open', () => {
  it('a subscription made right after openDatabase sees the first peer-connected and early transport errors', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const shared = new MemoryTransport({ hub, peerId: 'shared' });
    const first = await db({ id, transport: shared });
    const second = await db({ id, transport: shared }); // same topic twice on one transport
    const failed = nextEvent(second, (e) => e.type === 'error' && e.error.code === 'ERR_TOPIC_ALREADY_JOINED', 'ERR_TOPIC_ALREADY_JOINED');
    const other = await db({ id, transport: { mode: 'memory', hub, peerId: 'other' } });
    const connected = nextEvent(other, (e) => e.type === 'peer-connected', 'peer-connected on other');
    await failed;
    expect(await connected).toMatchObject({ type: 'peer-connected', peerId: 'shared' });
    await first.close();
    await shared.disconnect();
  });
});

describe('one session per peer', () => {
  it('a second connection from the same peer id replaces the first', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const tap = new TapTransport(new MemoryTransport({ hub, peerId: 'me' }));
    tap.peerIdOverride = 'same-peer';
    const me = await db({ id, transport: tap });
    const events = collectEvents(me);
    const p1 = await db({ id, transport: { mode: 'memory', hub, peerId: 'p1' } });
    await until(me, () => me.stats().peers.some((p) => p.synced), 'first session synced');
    const replaced = nextEvent(me, (e) => e.type === 'peer-disconnected' && e.reason === 'replaced by a new connection', 'replacement');
    const p2 = await db({ id, transport: { mode: 'memory', hub, peerId: 'p2' } });
    await replaced;
    expect(me.peers()).toEqual([{ peerId: 'same-peer', addresses: [] }]);
    await me.whenSynced({ minPeers: 1 });
    p2.put('from-p2', {});
    await until(me, () => me.get('from-p2') !== undefined, 'from-p2');
    events.stop();
    expect(events.events.filter((e) => e.type === 'peer-connected')).toHaveLength(2);
    // p1 (whose session with me was replaced) still gets it, from p2 directly.
    await until(p1, () => p1.get('from-p2') !== undefined, 'from-p2 on p1');
    expect(p1.get('from-p2')).toEqual({});
    await tap.disconnect();
  });
});

describe('transport ownership', () => {
  it('disconnects a transport it created from a config, but not one passed in', async () => {
    const hub = uniqueHub();
    const id = generateDatabaseId();
    const owned = await openDatabase({ id, transport: { mode: 'memory', hub, peerId: 'owned' } });
    const mine = new MemoryTransport({ hub, peerId: 'mine' });
    const borrowed = await openDatabase({ id, transport: mine });
    await Promise.all([owned.whenSynced({ minPeers: 1 }), borrowed.whenSynced({ minPeers: 1 })]);
    await owned.close();
    await borrowed.close();
    await expect(owned.transport.lookup(owned.topic)).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
    // The borrowed transport is still usable (the database left its topic, nothing more).
    await expect(mine.lookup(borrowed.topic)).resolves.toEqual([]);
    const again = await db({ id, transport: mine });
    expect(again.transport).toBe(mine);
    await again.close();
    await mine.disconnect();
  });
});
