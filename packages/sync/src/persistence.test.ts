import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { MemoryStore, type DocStore } from '@rhizome/core';
import { openSqliteStore, type SqliteStore } from '@rhizome/store-sqlite';
import { DocPersistence, EXTERNAL_ORIGIN, PERSISTENCE_ORIGIN, compactStoredDoc } from './persistence.js';

const root = mkdtempSync(join(tmpdir(), 'rhizome-persistence-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
function freshPath(): string {
  return join(root, `p-${counter++}.db`);
}

/** Resolves in the next macrotask: everything queued in this tick's microtasks has run. */
function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function state(doc: Y.Doc): Buffer {
  return Buffer.from(Y.encodeStateAsUpdate(doc));
}

/** A real store that counts the calls going through it (a decorator, not a mock). */
class CountingStore implements DocStore {
  appends = 0;
  compacts = 0;
  constructor(readonly inner: DocStore) {}
  load(docId: string): ReturnType<DocStore['load']> {
    return this.inner.load(docId);
  }
  append(docId: string, updates: readonly Uint8Array[]): number {
    this.appends++;
    return this.inner.append(docId, updates);
  }
  compact(docId: string, snapshot: Uint8Array, throughSeq: number): void {
    this.compacts++;
    this.inner.compact(docId, snapshot, throughSeq);
  }
  stats(docId: string): ReturnType<DocStore['stats']> {
    return this.inner.stats(docId);
  }
  docIds(): string[] {
    return this.inner.docIds();
  }
  close(): void {
    this.inner.close();
  }
}

/** Opens `path` in a fresh doc, loads it, returns the doc (store closed again). */
function reload(path: string, docId: string): Y.Doc {
  const store = openSqliteStore(path);
  const doc = new Y.Doc();
  const persistence = new DocPersistence(store, docId, doc);
  persistence.load();
  persistence.close();
  store.close();
  return doc;
}

describe('DocPersistence', () => {
  it('writes every update of a tick in one transaction, in SQLite before the next macrotask', async () => {
    const path = freshPath();
    const store = new CountingStore(openSqliteStore(path));
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc);
    persistence.load();
    const nodes = doc.getMap('nodes');
    for (let i = 0; i < 100; i++) nodes.set(`n${i}`, i);
    expect(store.appends).toBe(0);
    expect(persistence.pendingUpdates).toBe(100);
    await nextMacrotask();
    expect(store.appends).toBe(1);
    expect(persistence.pendingUpdates).toBe(0);
    // A second connection to the file (as another process would) sees all 100.
    const other = openSqliteStore(path);
    expect(other.stats('db')).toMatchObject({ updates: 100, lastSeq: 100 });
    other.close();
    persistence.close();
    store.close();
  });

  it('listen: false writes what the owner hands to noteUpdate, and from listen() on every update of the doc itself', async () => {
    const store = new MemoryStore();
    const doc = new Y.Doc();
    const p = new DocPersistence(store, 'd', doc, { listen: false });
    p.load();
    doc.getMap('m').set('a', 1); // nobody hands it over: not written
    await nextMacrotask();
    expect(store.stats('d').updates).toBe(0);
    const forwarded = (update: Uint8Array, origin: unknown): void => p.noteUpdate(update, origin);
    doc.on('update', forwarded);
    doc.getMap('m').set('b', 2);
    doc.transact(() => doc.getMap('m').set('own', 0), PERSISTENCE_ORIGIN); // its own origin: skipped
    await nextMacrotask();
    expect(store.stats('d').updates).toBe(1);
    doc.off('update', forwarded);
    p.listen();
    p.listen(); // idempotent: one listener
    doc.getMap('m').set('c', 3);
    await nextMacrotask();
    expect(store.stats('d').updates).toBe(2);
    p.close();
    doc.getMap('m').set('d', 4); // closed: no longer listening
    await nextMacrotask();
    expect(store.stats('d').updates).toBe(2);
    // A read-only binding writes nothing, handed over or not.
    const ro = new DocPersistence(store, 'd', new Y.Doc(), { listen: false, readOnly: true });
    ro.noteUpdate(Y.encodeStateAsUpdate(doc), 'remote');
    ro.listen();
    await nextMacrotask();
    expect(store.stats('d').updates).toBe(2);
  });

  it('reopen after close restores identical Yjs state', async () => {
    const path = freshPath();
    const store = openSqliteStore(path);
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc);
    persistence.load();
    const nodes = doc.getMap('nodes');
    for (let i = 0; i < 500; i++) {
      const node = new Y.Map<unknown>();
      node.set('title', `node ${i}`);
      node.set('n', i);
      nodes.set(`n${i % 300}`, node);
      if (i % 7 === 0) nodes.delete(`n${(i * 13) % 300}`);
      if (i % 50 === 0) await nextMacrotask();
    }
    doc.getText('notes').insert(0, 'hello');
    persistence.close();
    store.close();
    const restored = reload(path, 'db');
    expect(state(restored).equals(state(doc))).toBe(true);
    expect(restored.getMap('nodes').toJSON()).toEqual(nodes.toJSON());
    expect(restored.getText('notes').toString()).toBe('hello');
  });

  it('load applies snapshot and log in one Yjs transaction with PERSISTENCE_ORIGIN and writes nothing back', async () => {
    const path = freshPath();
    const store = openSqliteStore(path);
    const writer = new Y.Doc();
    const p1 = new DocPersistence(store, 'db', writer);
    for (let i = 0; i < 20; i++) writer.getMap('m').set(`k${i}`, i);
    p1.compact();
    for (let i = 20; i < 30; i++) writer.getMap('m').set(`k${i}`, i);
    p1.close();
    expect(store.stats('db')).toMatchObject({ updates: 10, lastSeq: 30 });

    const reader = new Y.Doc();
    const origins: unknown[] = [];
    reader.on('afterTransaction', (tr: Y.Transaction) => origins.push(tr.origin));
    const p2 = new DocPersistence(store, 'db', reader);
    const result = p2.load();
    expect(origins).toEqual([PERSISTENCE_ORIGIN]);
    expect(result.updates).toBe(10);
    expect(result.bytes).toBe(store.stats('db').updateBytes + store.stats('db').snapshotBytes);
    expect(Object.keys(reader.getMap('m').toJSON())).toHaveLength(30);
    await nextMacrotask();
    expect(store.stats('db').lastSeq).toBe(30);
    p2.close();
    store.close();
  });

  it('persists remote updates (any origin but its own) and skips its own origin', async () => {
    const store = new MemoryStore();
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc);
    const remote = new Y.Doc();
    remote.getMap('m').set('from', 'remote');
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(remote), 'some-connection');
    await nextMacrotask();
    expect(store.stats('db').updates).toBe(1);
    remote.getMap('m').set('again', 1);
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(remote, Y.encodeStateVector(doc)), PERSISTENCE_ORIGIN);
    await nextMacrotask();
    expect(store.stats('db').updates).toBe(1);
    persistence.close();
  });

  it('binding a doc that already holds state persists that state too', async () => {
    const path = freshPath();
    const store = openSqliteStore(path);
    const doc = new Y.Doc();
    doc.getMap('m').set('before', 1);
    const persistence = new DocPersistence(store, 'db', doc);
    doc.getMap('m').set('after', 2);
    await nextMacrotask();
    persistence.close();
    store.close();
    expect(reload(path, 'db').getMap('m').toJSON()).toEqual({ before: 1, after: 2 });
  });

  it('flush writes the queue synchronously; close flushes and stops listening, leaving the store open', () => {
    const store = new MemoryStore();
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc);
    doc.getMap('m').set('a', 1);
    persistence.flush();
    expect(store.stats('db').updates).toBe(1);
    doc.getMap('m').set('b', 2);
    persistence.close();
    expect(store.stats('db').updates).toBe(2);
    doc.getMap('m').set('c', 3);
    persistence.flush();
    expect(store.stats('db').updates).toBe(2);
    expect(() => persistence.compact()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(store.docIds()).toEqual(['db']);
  });

  it('compact replaces the log by a snapshot of the live doc', () => {
    const path = freshPath();
    const store = openSqliteStore(path);
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc, { compactAfterUpdates: Infinity, compactAfterBytes: Infinity });
    for (let i = 0; i < 1000; i++) doc.getMap('m').set(`k${i % 100}`, i);
    const before = persistence.stats();
    expect(before).toMatchObject({ updates: 1000, snapshotBytes: 0, lastSeq: 1000 });
    persistence.compact();
    const after = persistence.stats();
    expect(after).toMatchObject({ updates: 0, updateBytes: 0, lastSeq: 1000 });
    expect(after.snapshotBytes).toBeGreaterThan(0);
    expect(after.snapshotBytes).toBeLessThan(before.updateBytes);
    doc.getMap('m').set('later', true);
    persistence.close();
    store.close();
    const restored = reload(path, 'db');
    expect(state(restored).equals(state(doc))).toBe(true);
  });

  it('compaction keeps updates another handle of the file appended (interleaved or compacted away)', () => {
    const path = freshPath();
    const options = { compactAfterUpdates: Infinity, compactAfterBytes: Infinity };
    // Two handles of one file stand for two processes (an always-on replica and a CLI put).
    const storeA = openSqliteStore(path);
    const storeB = openSqliteStore(path);
    const docA = new Y.Doc();
    const a = new DocPersistence(storeA, 'db', docA, options);
    a.load();
    docA.getMap('m').set('a1', 1);
    a.flush();
    // B writes between A's appends: its update gets a sequence number below A's next one.
    const docB = new Y.Doc();
    const b = new DocPersistence(storeB, 'db', docB, options);
    b.load();
    docB.getMap('m').set('b1', 1);
    b.flush();
    docA.getMap('m').set('a2', 2);
    a.compact();
    // B writes again and compacts the file itself; then A compacts with nothing new to append.
    docB.getMap('m').set('b2', 2);
    b.compact();
    a.compact();
    b.close();
    a.close();
    storeA.close();
    storeB.close();
    const restored = reload(path, 'db');
    expect(restored.getMap('m').toJSON()).toEqual({ a1: 1, a2: 2, b1: 1, b2: 2 });
  });

  it('a compaction that loses a race with another handle re-reads instead of replacing the newer snapshot (issue 10 defect 1)', () => {
    const path = freshPath();
    const options = { compactAfterUpdates: Infinity, compactAfterBytes: Infinity, watchIntervalMs: 0 };
    const storeA = openSqliteStore(path);
    const storeB = openSqliteStore(path);
    const docB = new Y.Doc();
    const b = new DocPersistence(storeB, 'db', docB, options);
    b.load();
    // A's store lets B run between A's read of the store and A's compaction, as another process
    // does (a decorator that injects the interleaving, on the real file).
    let raced = false;
    const racing = new CountingStore(storeA);
    racing.compact = (docId, snapshot, throughSeq) => {
      racing.compacts++;
      if (!raced) {
        raced = true;
        docB.getMap('m').set('b1', 'from B');
        b.compact();
      }
      storeA.compact(docId, snapshot, throughSeq);
    };
    const docA = new Y.Doc();
    const a = new DocPersistence(racing, 'db', docA, options);
    a.load();
    docA.getMap('m').set('a1', 'from A');
    a.compact();
    expect(raced).toBe(true);
    // A lost the race once, read B's snapshot in, and compacted again.
    expect(racing.compacts).toBe(2);
    expect(a.status().compactionConflicts).toBe(1);
    expect(docA.getMap('m').toJSON()).toEqual({ a1: 'from A', b1: 'from B' });
    a.close();
    b.close();
    storeA.close();
    storeB.close();
    expect(reload(path, 'db').getMap('m').toJSON()).toEqual({ a1: 'from A', b1: 'from B' });
  });

  it('the store watch applies what another handle appends, with EXTERNAL_ORIGIN, and writes nothing back', async () => {
    const path = freshPath();
    const storeA = openSqliteStore(path);
    const storeB = openSqliteStore(path);
    const docA = new Y.Doc();
    const a = new DocPersistence(storeA, 'db', docA, { watchIntervalMs: 20 });
    a.load();
    const origins: unknown[] = [];
    docA.on('update', (_u: Uint8Array, origin: unknown) => origins.push(origin));
    const docB = new Y.Doc();
    const b = new DocPersistence(storeB, 'db', docB, { watchIntervalMs: 0 });
    b.load();
    const seen = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the watch did not apply B\'s write within 5 s')), 5000);
      docA.getMap('m').observe(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    docB.getMap('m').set('k', 'v');
    await seen;
    expect(docA.getMap('m').toJSON()).toEqual({ k: 'v' });
    expect(origins).toEqual([EXTERNAL_ORIGIN]);
    expect(a.status()).toMatchObject({ health: 'ok', externalUpdates: 1, pendingUpdates: 0 });
    await nextMacrotask();
    expect(storeA.stats('db').lastSeq).toBe(1);
    // B compacts; A's next write and compaction keep everything.
    docB.getMap('m').set('k2', 'v2');
    b.compact();
    docA.getMap('m').set('a', 1);
    a.compact();
    a.close();
    b.close();
    storeA.close();
    storeB.close();
    expect(reload(path, 'db').getMap('m').toJSON()).toEqual({ k: 'v', k2: 'v2', a: 1 });
  });

  it('keeps the log bounded over 50,000 writes by compacting in the background', async () => {
    const path = freshPath();
    const store = new CountingStore(openSqliteStore(path));
    const threshold = 1000;
    const batch = 100;
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc, { compactAfterUpdates: threshold });
    persistence.load();
    const nodes = doc.getMap<number>('nodes');
    const expected = new Map<string, number>();
    let maxLog = 0;
    for (let i = 0; i < 50_000; i++) {
      const key = `n${(i * 7919) % 3000}`;
      nodes.set(key, i);
      expected.set(key, i);
      if ((i + 1) % batch === 0) {
        await nextMacrotask();
        maxLog = Math.max(maxLog, store.stats('db').updates);
      }
    }
    persistence.close();
    const final = store.stats('db');
    maxLog = Math.max(maxLog, final.updates);
    expect(final.lastSeq).toBe(50_000);
    // The scheduled compaction runs one macrotask after the flush that crossed the threshold,
    // so at most one more batch lands meanwhile.
    expect(maxLog).toBeLessThanOrEqual(threshold + batch);
    expect(store.compacts).toBeGreaterThanOrEqual(45);
    store.close();

    const restored = reload(path, 'db');
    expect(state(restored).equals(state(doc))).toBe(true);
    expect(new Map(Object.entries(restored.getMap<number>('nodes').toJSON()))).toEqual(expected);
  });

  it('the byte threshold triggers compaction too', async () => {
    const store = new MemoryStore();
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc, { compactAfterBytes: 64 * 1024 });
    for (let i = 0; i < 40; i++) {
      doc.getMap('m').set(`k${i % 4}`, 'x'.repeat(8 * 1024));
      await nextMacrotask();
    }
    await nextMacrotask();
    expect(store.stats('db').updateBytes).toBeLessThan(64 * 1024 + 8 * 1024 + 200);
    expect(store.stats('db').snapshotBytes).toBeGreaterThan(0);
    persistence.close();
  });

  it('a lone first update (a cold sync: the whole document) is not compacted again; what follows it is counted', async () => {
    const limit = 64 * 1024;
    const source = new Y.Doc();
    for (let i = 0; i < 4000; i++) source.getMap('m').set(`k${i}`, `value ${i}`);
    const whole = Y.encodeStateAsUpdate(source);
    expect(whole.length).toBeGreaterThan(limit);

    const path = freshPath();
    const store = new CountingStore(openSqliteStore(path));
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc, { compactAfterBytes: limit, compactAfterUpdates: 3 });
    Y.applyUpdate(doc, whole, 'peer');
    await nextMacrotask();
    await nextMacrotask();
    expect(store.compacts).toBe(0); // the log's one row already is the whole state
    expect(store.stats('db')).toMatchObject({ updates: 1, snapshotBytes: 0 });

    // Updates after it count against the thresholds (here 3 updates), as after a snapshot.
    for (let i = 0; i < 3; i++) {
      doc.getMap('m').set('later', i);
      await nextMacrotask();
    }
    await nextMacrotask();
    expect(store.compacts).toBe(1);
    expect(store.stats('db').snapshotBytes).toBeGreaterThan(0);
    persistence.close();
    store.close();
    expect(state(reload(path, 'db')).equals(state(doc))).toBe(true);

    // Reopened with a lone first row and no snapshot, the same holds.
    const path2 = freshPath();
    const first = openSqliteStore(path2);
    first.append('db', [whole]);
    first.close();
    const store2 = new CountingStore(openSqliteStore(path2));
    const doc2 = new Y.Doc();
    const p2 = new DocPersistence(store2, 'db', doc2, { compactAfterBytes: limit });
    p2.load();
    await nextMacrotask();
    expect(store2.compacts).toBe(0);
    p2.close();
    store2.close();
  });

  it('a failed background write is reported to onError and kept queued for the next flush', async () => {
    const store = openSqliteStore(':memory:');
    const doc = new Y.Doc();
    const errors: unknown[] = [];
    const persistence = new DocPersistence(store, 'db', doc, { onError: (e) => errors.push(e) });
    store.close();
    doc.getMap('m').set('a', 1);
    await nextMacrotask();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'ERR_CLOSED' });
    expect(persistence.pendingUpdates).toBe(1);
    // The same with an object sink (a database passes its host's reportError).
    const store2 = new MemoryStore();
    const doc2 = new Y.Doc();
    const reported: unknown[] = [];
    new DocPersistence(store2, 'db', doc2, { onError: { reportError: (e) => reported.push(e) } });
    store2.close();
    doc2.getMap('m').set('a', 1);
    await nextMacrotask();
    expect(reported).toHaveLength(1);
    expect(reported[0]).toMatchObject({ code: 'ERR_CLOSED' });
  });

  it('without onError, a failed background write is thrown by the next flush', async () => {
    const store = new MemoryStore();
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc);
    store.close();
    doc.getMap('m').set('a', 1);
    await nextMacrotask();
    expect(() => persistence.flush()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    // Reported once; the update stays queued and the next flush tries (and fails) again.
    expect(persistence.pendingUpdates).toBe(1);
    expect(() => persistence.flush()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });

  it('a stored update that is not Yjs makes load throw ERR_STORE_CORRUPT', () => {
    const store = new MemoryStore();
    const source = new Y.Doc();
    source.getMap('m').set('a', 1);
    store.append('db', [Y.encodeStateAsUpdate(source), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02)]);
    const persistence = new DocPersistence(store, 'db', new Y.Doc());
    expect(() => persistence.load()).toThrow(expect.objectContaining({ code: 'ERR_STORE_CORRUPT' }));
    expect(() => compactStoredDoc(store, 'db')).toThrow(expect.objectContaining({ code: 'ERR_STORE_CORRUPT' }));
    expect(store.stats('db').updates).toBe(2);
  });

  it('rejects bad options with ERR_INVALID_ARGUMENT', () => {
    const store = new MemoryStore();
    const code = expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' });
    expect(() => new DocPersistence(store, 'db', new Y.Doc(), { compactAfterUpdates: 0 })).toThrow(code);
    expect(() => new DocPersistence(store, 'db', new Y.Doc(), { compactAfterBytes: Number.NaN })).toThrow(code);
    expect(() => new DocPersistence(store, 7 as unknown as string, new Y.Doc())).toThrow(code);
  });
});

describe('compactStoredDoc', () => {
  it('compacts a stored log offline into the same state, without a live doc', () => {
    const path = freshPath();
    let store: SqliteStore = openSqliteStore(path);
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc, { compactAfterUpdates: Infinity });
    for (let i = 0; i < 5000; i++) doc.getMap('m').set(`k${i % 500}`, i);
    persistence.compact(); // a snapshot and then a log: both must end up in the new snapshot
    for (let i = 0; i < 3000; i++) doc.getArray('a').push([i]);
    persistence.close();
    store.close();

    store = openSqliteStore(path);
    const { before, after } = compactStoredDoc(store, 'db');
    expect(before.updates).toBe(3000);
    expect(after).toMatchObject({ updates: 0, updateBytes: 0, lastSeq: 8000 });
    expect(compactStoredDoc(store, 'db').after).toEqual(after);
    store.close();
    expect(state(reload(path, 'db')).equals(state(doc))).toBe(true);
  });
});
