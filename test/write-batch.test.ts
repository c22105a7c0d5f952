// Automatic write batching (sync/src/put-batch.ts, ARCHITECTURE § Write batching): puts and
// deletes made outside a transaction are applied at the end of the task as one Yjs transaction.
// These tests pin what users can rely on: reads see their own writes, order is kept (also with
// deletes and explicit transactions), validation errors are thrown by the call, the batch is one
// SQLite row in the file before the next macrotask, and close() writes a batch still pending.
// (Crash durability of batched puts/deletes under SIGKILL: test/durability-database.test.ts.)
import { join } from 'node:path';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '@rhizome/store-sqlite';
import { openDatabase } from '@rhizome/sync';
import { collectEvents, tempDir, until } from './sync-helpers.js';

const { dir, cleanup } = tempDir('rhizome-write-batch-');
afterAll(cleanup);
let files = 0;
const nextFile = (): string => join(dir, `b${files++}.db`);

/** Rows of the update log of `id` in the file, read through a second handle of it. */
function storedUpdates(path: string, id: string): number {
  const store = openSqliteStore(path, { readOnly: true });
  try {
    return store.stats(id).updates;
  } finally {
    store.close();
  }
}

describe('write batching', () => {
  it('reads see the writes of the same task: get, list, size, doc', async () => {
    const db = await openDatabase({ id: 'rw' });
    try {
      db.put('a', { n: 1 });
      db.put('b', { n: 2, tags: ['x'] });
      expect(db.get('a')).toEqual({ n: 1 });
      db.put('a', { m: 3 }); // fields merge, also across a flush by a read
      expect(db.get('a')).toEqual({ m: 3, n: 1 });
      db.put('c', { n: 4 });
      expect(db.size).toBe(3);
      db.put('d', { n: 5 });
      expect(db.list().map((e) => e.id)).toEqual(['a', 'b', 'c', 'd']);
      db.put('e', { n: 6 });
      expect(db.doc.getMap('fields').get('e\u0000n')).toBe(6);
    } finally {
      await db.close();
    }
  });

  it('applies the puts and deletes of one task in order, as one update, and keeps node events', async () => {
    const path = nextFile();
    const db = await openDatabase({ id: 'order', path });
    const events = collectEvents(db);
    let updates = 0;
    db.doc.on('update', () => updates++);
    db.put('keep', { v: 1 });
    db.put('gone', { v: 1 });
    db.delete('gone'); // delete after put in the same batch
    db.put('back', { v: 1 });
    db.delete('back');
    db.put('back', { v: 2 }); // put after delete in the same batch
    for (let i = 0; i < 100; i++) db.put(`n${i}`, { i });
    db.delete('never-existed'); // a no-op
    expect(updates).toBe(0); // applied at the end of the task, not inside the calls
    await nextMacrotask();
    expect(updates).toBe(1);
    expect(db.get('gone')).toBeUndefined();
    expect(db.get('back')).toEqual({ v: 2 });
    expect(db.size).toBe(102);
    // One SQLite row for the whole batch, in the file before this macrotask (a second handle reads it).
    expect(storedUpdates(path, 'order')).toBe(1);
    await until(db, () => events.events.filter((e) => e.type === 'node-upsert').length >= 102, 'node events');
    const upserts = events.events.filter((e) => e.type === 'node-upsert').map((e) => (e as { id: string }).id);
    expect(new Set(upserts)).toEqual(new Set(['keep', 'back', ...Array.from({ length: 100 }, (_, i) => `n${i}`)]));
    expect(events.events.some((e) => e.type === 'node-upsert' && e.id === 'gone')).toBe(false);
    expect(db.stats().localUpdates).toBe(107); // a batch counts as the writes it holds (6 + 100 + 1)
    events.stop();
    await db.close();
    const again = await openDatabase({ id: 'order', path });
    try {
      expect(again.size).toBe(102);
      expect(again.get('gone')).toBeUndefined();
      expect(again.get('back')).toEqual({ v: 2 });
      expect(again.get('n99')).toEqual({ i: 99 });
    } finally {
      await again.close();
    }
  });

  it('applies a batch at once when it holds MAX_BATCH_WRITES writes', async () => {
    const path = nextFile();
    const db = await openDatabase({ id: 'full', path });
    try {
      let updates = 0;
      db.doc.on('update', () => updates++);
      for (let i = 0; i < 2500; i++) db.put(`n${i}`, { i });
      expect(updates).toBe(2); // at the 1,000th and the 2,000th put, from inside the call
      await nextMacrotask();
      expect(updates).toBe(3);
      expect(storedUpdates(path, 'full')).toBe(3); // one row per update, written in one append
      expect(db.size).toBe(2500);
    } finally {
      await db.close();
    }
  });

  it('keeps order with transact, putMany and direct doc transactions', async () => {
    const db = await openDatabase({ id: 'mixed' });
    try {
      let updates = 0;
      db.doc.on('update', () => updates++);
      db.put('x', { v: 'batched' });
      db.transact(() => {
        db.put('x', { v: 'transact' }); // joins the transaction at once
        expect(db.doc.getMap('fields').get('x\u0000v')).toBe('transact');
      });
      expect(updates).toBe(2); // the pending batch first, then the transaction
      expect(db.get('x')).toEqual({ v: 'transact' });
      db.put('y', { v: 'batched' });
      db.putMany([['y', { v: 'many' }]]);
      expect(db.get('y')).toEqual({ v: 'many' });
      db.put('z', { v: 'batched' });
      db.doc.transact(() => db.delete('z'));
      expect(db.get('z')).toBeUndefined();
      // A transaction opened through a Yjs reference held from before (no db call to apply the
      // queue first): the queued write joins it ahead of the write made inside it.
      const doc = db.doc;
      db.put('w', { v: 'batched' });
      doc.transact(() => db.put('w', { v: 'held doc' }));
      expect(db.get('w')).toEqual({ v: 'held doc' });
      // A write made through a Yjs type held from before, right after a put of the same field:
      // the queued put goes first, the direct write last (it wins).
      const fields = db.doc.getMap('fields');
      db.put('h', { v: 'batched' });
      fields.set('h\u0000v', 'direct');
      await nextMacrotask();
      expect(db.get('h')).toEqual({ v: 'direct' });
      expect(db.get('x')).toEqual({ v: 'transact' });
      expect(db.get('y')).toEqual({ v: 'many' });
      expect(db.get('z')).toBeUndefined();
    } finally {
      await db.close();
    }
  });

  it('throws validation errors from the call and applies the valid writes around them', async () => {
    const db = await openDatabase({ id: 'invalid' });
    try {
      db.put('ok-1', { v: 1 });
      expect(() => db.put('bad', { v: () => 1 } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
      expect(() => db.put('', { v: 1 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
      expect(() => db.delete(42 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
      db.put('ok-2', { v: 2 });
      await nextMacrotask();
      expect(db.list().map((e) => e.id)).toEqual(['ok-1', 'ok-2']);
    } finally {
      await db.close();
    }
    expect(() => db.put('late', { v: 1 })).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });

  it('reports an error thrown by an app observer while a batch is applied, with the writes in place', async () => {
    const db = await openDatabase({ id: 'observer' });
    const events = collectEvents(db);
    try {
      db.doc.getMap('nodes').observe(() => {
        throw new Error('observer failed');
      });
      db.put('a', { v: 1 });
      await nextMacrotask();
      expect(db.get('a')).toEqual({ v: 1 });
      await until(db, () => events.events.some((e) => e.type === 'error'), 'the error event');
      const error = events.events.find((e) => e.type === 'error') as { error: Error } | undefined;
      expect(error?.error.message).toBe('observer failed');
    } finally {
      events.stop();
      await db.close();
    }
  });

  it('close() writes a batch still pending', async () => {
    const path = nextFile();
    const db = await openDatabase({ id: 'closing', path });
    db.put('last', { v: 1 });
    db.delete('last');
    db.put('last', { v: 2 });
    await db.close();
    const again = await openDatabase({ id: 'closing', path });
    try {
      expect(again.get('last')).toEqual({ v: 2 });
      expect(storedUpdates(path, 'closing')).toBe(1);
    } finally {
      await again.close();
    }
  });
});
