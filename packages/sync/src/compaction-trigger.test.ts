// The automatic compaction's trigger (session 10 of issue 12): a compaction at the threshold on the
// next macrotask (the log's bound under writes that never pause), an earlier one when the doc goes
// idle, and thresholds that scale with a large snapshot. Real SQLite files, real timers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { MemoryStore, type DocStore } from '@rhizome/core';
import { openSqliteStore } from '@rhizome/store-sqlite';
import { DEFAULT_COMPACT_AFTER_UPDATES, DEFAULT_COMPACT_IDLE_MS, DocPersistence } from './persistence.js';

const root = mkdtempSync(join(tmpdir(), 'rhizome-compaction-trigger-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshPath = (): string => join(root, `t-${counter++}.db`);
const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A real store that counts compactions (a decorator, not a mock). */
class CountingStore implements DocStore {
  compacts = 0;
  constructor(readonly inner: DocStore) {}
  load(docId: string): ReturnType<DocStore['load']> {
    return this.inner.load(docId);
  }
  append(docId: string, updates: readonly Uint8Array[]): number {
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

/** Polls `check` every few ms until it holds or `ms` passed (bounded in time). */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}

function reload(path: string): Y.Doc {
  const store = openSqliteStore(path);
  const doc = new Y.Doc();
  const persistence = new DocPersistence(store, 'db', doc, { compactIdleMs: Infinity });
  persistence.load();
  persistence.close();
  store.close();
  return doc;
}

describe('automatic compaction trigger', () => {
  it('defaults: 40,000 updates, idle after 1 s', () => {
    expect(DEFAULT_COMPACT_AFTER_UPDATES).toBe(40_000);
    expect(DEFAULT_COMPACT_IDLE_MS).toBe(1000);
  });

  it('a stream of one write per macrotask that never pauses keeps the log at its threshold, and reopens to the same state', async () => {
    const path = freshPath();
    const store = new CountingStore(openSqliteStore(path, { exclusive: true }));
    const threshold = 200;
    const doc = new Y.Doc();
    // The idle compaction is on (a short period) but the stream never leaves it a quiet period.
    const persistence = new DocPersistence(store, 'db', doc, { compactAfterUpdates: threshold, compactIdleMs: 40, watchIntervalMs: 0 });
    persistence.load();
    const nodes = doc.getMap<number>('nodes');
    let maxLog = 0;
    for (let i = 0; i < 3000; i++) {
      nodes.set(`n${i % 700}`, i);
      await nextMacrotask();
      maxLog = Math.max(maxLog, store.stats('db').updates);
    }
    // The compaction runs one macrotask after the flush that reached the threshold: one more write lands.
    expect(maxLog).toBeLessThanOrEqual(threshold + 1);
    expect(store.compacts).toBeGreaterThanOrEqual(Math.floor(3000 / (threshold + 1)));
    expect(store.stats('db').lastSeq).toBe(3000);
    persistence.close();
    store.close();
    const restored = reload(path);
    expect(Buffer.from(Y.encodeStateAsUpdate(restored))).toEqual(Buffer.from(Y.encodeStateAsUpdate(doc)));
    expect(restored.getMap('nodes').get('n99')).toBe(2899);
  });

  it('below the threshold, the log is compacted once the doc sees no write for compactIdleMs — not while writes keep coming', async () => {
    const path = freshPath();
    const store = new CountingStore(openSqliteStore(path));
    const doc = new Y.Doc();
    // Long against the 10 ms between the stream's writes below, so that only a stall of the whole
    // process (> 250 ms) could look idle to it.
    const idleMs = 250;
    const persistence = new DocPersistence(store, 'db', doc, { compactAfterUpdates: 400, compactIdleMs: idleMs, watchIntervalMs: 0 });
    persistence.load();
    const map = doc.getMap<number>('m');
    // 99 updates: under a quarter of 400, nothing is due even when idle.
    for (let i = 0; i < 99; i++) {
      map.set(`k${i % 10}`, i);
      await nextMacrotask();
    }
    await sleep(idleMs * 2);
    expect(store.compacts).toBe(0);
    // The 100th makes a quarter: due at the next idle moment. A write every 10 ms for 3 periods keeps it waiting.
    map.set('k0', 100);
    const streamEnd = Date.now() + idleMs * 3;
    while (Date.now() < streamEnd) {
      map.set('k1', Date.now());
      await sleep(10);
    }
    expect(store.compacts).toBe(0);
    expect(store.stats('db').updates).toBeGreaterThan(100);
    // Then quiet: compacted within a few periods, the log emptied, nothing lost.
    expect(await until(() => store.compacts === 1, idleMs * 20)).toBe(true);
    expect(store.stats('db')).toMatchObject({ updates: 0 });
    expect(store.stats('db').snapshotBytes).toBeGreaterThan(0);
    persistence.close();
    store.close();
    expect(Buffer.from(Y.encodeStateAsUpdate(reload(path)))).toEqual(Buffer.from(Y.encodeStateAsUpdate(doc)));
  });

  it('compactIdleMs: Infinity turns the idle compaction off; close() cancels a pending one', async () => {
    const store = new CountingStore(new MemoryStore());
    const doc = new Y.Doc();
    const off = new DocPersistence(store, 'db', doc, { compactAfterUpdates: 8, compactIdleMs: Infinity });
    for (let i = 0; i < 6; i++) {
      doc.getMap('m').set('k', i);
      await nextMacrotask();
    }
    await sleep(30);
    expect(store.compacts).toBe(0);
    off.close();

    const doc2 = new Y.Doc();
    const pending = new DocPersistence(store, 'db2', doc2, { compactAfterUpdates: 8, compactIdleMs: 20 });
    for (let i = 0; i < 6; i++) {
      doc2.getMap('m').set('k', i);
      await nextMacrotask();
    }
    pending.close();
    await sleep(60);
    expect(store.compacts).toBe(0);
    expect(() => new DocPersistence(store, 'x', new Y.Doc(), { compactIdleMs: 0 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });

  it('above a 4 MiB snapshot, the threshold also waits for the log to hold a quarter of the snapshot (O(1) per byte logged)', async () => {
    const store = new CountingStore(new MemoryStore());
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc, { compactAfterUpdates: 10, compactIdleMs: Infinity });
    doc.getMap<string>('m').set('big', 'x'.repeat(5 * 1024 * 1024));
    await nextMacrotask();
    persistence.compact();
    const snapshotBytes = store.stats('db').snapshotBytes;
    expect(snapshotBytes).toBeGreaterThan(5 * 1024 * 1024);
    expect(store.compacts).toBe(1);
    // 64 KiB per update: 10 updates pass the count, but not a quarter of the snapshot.
    const value = 'y'.repeat(64 * 1024);
    let written = 0;
    let updates = 0;
    while ((written + 2 * 64 * 1024) * 4 < snapshotBytes) {
      doc.getMap<string>('m').set(`k${updates % 3}`, value + updates);
      updates++;
      written += 64 * 1024;
      await nextMacrotask();
    }
    expect(updates).toBeGreaterThan(10);
    await nextMacrotask();
    expect(store.compacts).toBe(1);
    // A few more reach it: compacted on the next macrotask.
    for (let i = 0; i < 3; i++) {
      doc.getMap<string>('m').set('k0', value + i);
      await nextMacrotask();
    }
    await nextMacrotask();
    expect(store.compacts).toBe(2);
    // (The compaction ran one macrotask after the flush that reached it: the last write came after it.)
    expect(store.stats('db').updates).toBeLessThanOrEqual(1);
    persistence.close();
  });

  it('below 4 MiB the snapshot does not hold the threshold back', async () => {
    const store = new CountingStore(new MemoryStore());
    const doc = new Y.Doc();
    const persistence = new DocPersistence(store, 'db', doc, { compactAfterUpdates: 10, compactIdleMs: Infinity });
    doc.getMap<string>('m').set('big', 'x'.repeat(3 * 1024 * 1024));
    await nextMacrotask();
    persistence.compact();
    for (let i = 0; i < 10; i++) {
      doc.getMap<number>('m').set('k', i);
      await nextMacrotask();
    }
    await nextMacrotask();
    expect(store.compacts).toBe(2);
    persistence.close();
  });
});
