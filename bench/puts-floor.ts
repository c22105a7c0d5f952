// The floor of "one put per macrotask, persisted" (issue 12: >= 40k/s, i.e. 25 µs per put), as a
// minimal reproduction: what the durability contract costs with no Rhizome at all, broken into its
// parts, against Rhizome's db.put. Two parts:
//
// - `commits`: one SQLite commit of a 90-byte update per macrotask (better-sqlite3, WAL,
//   synchronous=NORMAL: the durability the contract needs against a killed process) under every
//   knob that keeps that durability: the store's transaction (BEGIN IMMEDIATE + last-seq SELECT +
//   INSERT + COMMIT) or one autocommit INSERT (prepared once, as everywhere here), a
//   single-statement append that reads the last seq inside the INSERT, locking_mode=EXCLUSIVE,
//   page_size, wal_autocheckpoint (0 = no checkpoint in the window: its fsyncs leave the put path),
//   mmap. `strace -f -c` over one variant gives its syscalls per commit (BENCHMARKS.md).
// - `puts`: the layers of a put — the macrotask alone, the database's Yjs layout written as Rhizome
//   writes it (nodes.ts setEntry) with and without its update encoded, the floor (layout + update +
//   one autocommit INSERT per macrotask, the exclusive variant of it), the same with the doc as a
//   database makes it since session 9 (DatabaseDoc + useFastUpdates: the update encoded in
//   JavaScript) and 1 KiB pages, and Rhizome's db.put on a file (default, exclusive: true on a new
//   file, the same without automatic compaction, exclusive: true on an existing file of 4 KiB
//   pages) and in memory.
//
// Rounds interleave every variant (order rotated per round), so all of them see the same machine
// load; each line gives the median wall rate, the median main-thread CPU per put
// (process.threadCpuUsage: GC threads and other processes excluded) and the median of wall minus
// main-thread CPU per put (time the thread was not running: checkpoint fsyncs, preemption).
// BENCHMARKS.md § Issue 12, Sessions 5, 8 and 9 (puts) read it.
//
// node_modules/node/bin/node --conditions=rhizome-source --import tsx bench/puts-floor.ts \
//   [--part commits|puts|all] [--puts 20000] [--rounds 5] [--only '<regexp over variant names>']
// (without --conditions=rhizome-source it measures the built dist/)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Y from 'yjs';
import Sqlite from 'better-sqlite3';
import { openDatabase } from '@rhizome/sync';
import { openSqliteStore } from '@rhizome/store-sqlite';
import { setEntry } from '../packages/sync/src/nodes.js';
import { DatabaseDoc } from '../packages/sync/src/database-doc.js';
import { useFastUpdates } from '../packages/sync/src/doc-updates.js';
import { flag } from './args.js';
import { node } from './floor-writer.js';

const PUTS = Number(flag('--puts', '20000'));
const ROUNDS = Number(flag('--rounds', '5'));
const PART = flag('--part', 'all');
const ONLY = flag('--only', '');
const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const dir = mkdtempSync(join(tmpdir(), 'rhizome-puts-floor-'));
let files = 0;
const file = (): string => join(dir, `f${files++}.db`);
const blob = new Uint8Array(90).fill(7);

/** SQLite settings of one commit variant; every one keeps WAL + synchronous=NORMAL. */
interface Knobs {
  /** 'store': the store's BEGIN IMMEDIATE / SELECT last seq / INSERT / COMMIT; 'insert': one autocommit INSERT, seq from memory; 'one': one autocommit INSERT that reads the last seq itself; 'sqlite-store': Rhizome's own store (`SqliteStore.append`, `exclusive` passed on; the other knobs ignored). */
  append: 'store' | 'insert' | 'one' | 'sqlite-store';
  exclusive?: boolean;
  pageSize?: number;
  autocheckpoint?: number;
  mmap?: number;
  /** 'rowid': the log as the store's schema version 2 has it (session 10): a rowid table keyed `(doc << 44) + seq`, instead of version 1's `(doc, seq)` WITHOUT ROWID table. 'insert' only. */
  table?: 'rowid';
}

/** A file with the store's schema and settings plus `knobs`; returns the per-commit write. */
function committer(knobs: Knobs): { commit: (data: Uint8Array) => void; close: () => void } {
  if (knobs.append === 'sqlite-store') {
    const store = openSqliteStore(file(), { exclusive: knobs.exclusive === true });
    return { commit: (data) => void store.append('d', [data]), close: () => store.close() };
  }
  const sql = new Sqlite(file());
  if (knobs.pageSize !== undefined) sql.pragma(`page_size = ${knobs.pageSize}`);
  sql.pragma('busy_timeout = 5000');
  sql.pragma('journal_mode = WAL');
  sql.pragma('synchronous = NORMAL');
  // As the store does it: after WAL mode is on (the WAL index stays in -shm).
  if (knobs.exclusive === true) sql.pragma('locking_mode = EXCLUSIVE');
  if (knobs.autocheckpoint !== undefined) sql.pragma(`wal_autocheckpoint = ${knobs.autocheckpoint}`);
  if (knobs.mmap !== undefined) sql.pragma(`mmap_size = ${knobs.mmap}`);
  sql.exec(`
    CREATE TABLE docs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, snapshot BLOB, snapshot_seq INTEGER NOT NULL DEFAULT 0);
    ${knobs.table === 'rowid'
      ? 'CREATE TABLE updates (key INTEGER PRIMARY KEY, data BLOB NOT NULL);'
      : 'CREATE TABLE updates (doc INTEGER NOT NULL REFERENCES docs(id), seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (doc, seq)) WITHOUT ROWID;'}
    INSERT INTO docs (name) VALUES ('d');`);
  let commit: (data: Uint8Array) => void;
  if (knobs.append === 'store') {
    const lastSeq = 'max(snapshot_seq, coalesce((SELECT max(seq) FROM updates WHERE doc = docs.id), 0))';
    const select = sql.prepare<[string], { id: number; last_seq: number }>(`SELECT id, ${lastSeq} AS last_seq FROM docs WHERE name = ?`);
    const insert = sql.prepare('INSERT INTO updates (doc, seq, data) VALUES (?, ?, ?)');
    const append = sql.transaction((name: string, updates: readonly Uint8Array[]) => {
      const row = select.get(name)!;
      let seq = row.last_seq;
      for (const update of updates) insert.run(row.id, ++seq, update);
      return seq;
    });
    commit = (data) => append.immediate('d', [data]);
  } else if (knobs.append === 'one') {
    const insert = sql.prepare('INSERT INTO updates (doc, seq, data) VALUES (?, (SELECT coalesce(max(seq), 0) FROM updates WHERE doc = ?) + 1, ?)');
    commit = (data) => insert.run(1, 1, data);
  } else {
    const insert = sql.prepare(knobs.table === 'rowid' ? 'INSERT INTO updates (key, data) VALUES ((1 << 44) + ?, ?)' : 'INSERT INTO updates (doc, seq, data) VALUES (1, ?, ?)');
    let seq = 0;
    commit = (data) => insert.run(++seq, data);
  }
  return { commit, close: () => sql.close() };
}

const commitVariants: Array<[string, Knobs]> = [
  ['store transaction (BEGIN IMMEDIATE, SELECT last seq, INSERT, COMMIT): the default store', { append: 'store' }],
  ['single statement: INSERT reading the last seq itself', { append: 'one' }],
  ['autocommit INSERT, seq from memory', { append: 'insert' }],
  ['autocommit INSERT, wal_autocheckpoint=8192', { append: 'insert', autocheckpoint: 8192 }],
  ['autocommit INSERT, wal_autocheckpoint=0 (no checkpoint in the window)', { append: 'insert', autocheckpoint: 0 }],
  ['EXCLUSIVE, store transaction', { append: 'store', exclusive: true }],
  ['EXCLUSIVE, autocommit INSERT, seq from memory: exclusive: true', { append: 'insert', exclusive: true }],
  ['EXCLUSIVE, autocommit INSERT, page_size=1024', { append: 'insert', exclusive: true, pageSize: 1024 }],
  ['EXCLUSIVE, autocommit INSERT, page_size=65536', { append: 'insert', exclusive: true, pageSize: 65536 }],
  ['EXCLUSIVE, autocommit INSERT, mmap_size=256 MiB', { append: 'insert', exclusive: true, mmap: 256 << 20 }],
  ['EXCLUSIVE, autocommit INSERT, wal_autocheckpoint=0', { append: 'insert', exclusive: true, autocheckpoint: 0 }],
  ['EXCLUSIVE, autocommit INSERT, page_size=1024, wal_autocheckpoint=0', { append: 'insert', exclusive: true, pageSize: 1024, autocheckpoint: 0 }],
  // Session 10: an append to a WITHOUT ROWID table that fills a 1 KiB leaf rebalances it with its
  // siblings (SQLite's balance_quick is for rowid tables only): ~2.4 WAL frames per commit; a rowid
  // table appends a new page instead.
  ['EXCLUSIVE, autocommit INSERT, page_size=1024, a rowid table (schema version 2)', { append: 'insert', exclusive: true, pageSize: 1024, table: 'rowid' }],
  ['EXCLUSIVE, autocommit INSERT, page_size=4096, a rowid table (schema version 2)', { append: 'insert', exclusive: true, table: 'rowid' }],
  // Session 10: the same WAL in bytes as 4 KiB pages get by default (1,000 pages = 4 MiB), i.e. a checkpoint every ~4,000 one-frame commits.
  ['EXCLUSIVE, autocommit INSERT, page_size=1024, wal_autocheckpoint=4096 (4 MiB, as 4 KiB pages by default)', { append: 'insert', exclusive: true, pageSize: 1024, autocheckpoint: 4096 }],
  // Session 11: the store itself, one update per append (a shared store numbers it from memory,
  // checked by the file, since session 11; before, a BEGIN IMMEDIATE transaction).
  ['SqliteStore.append of one update, shared file (the default)', { append: 'sqlite-store' }],
  ['SqliteStore.append of one update, exclusive: true', { append: 'sqlite-store', exclusive: true }],
  ['autocommit INSERT, rowid table (schema version 2), seq from memory: not multi-process safe', { append: 'insert', table: 'rowid' }],
];

/**
 * A bare Y.Doc with the database's layout (a marker and one `fields` entry per field), written as
 * Rhizome writes it. `rhizomeDoc`: the doc as a database makes it since session 9 — a
 * `DatabaseDoc` (no garbage per event emitted without a listener) with `useFastUpdates` (every
 * local update encoded in JavaScript, Yjs's own encoding skipped).
 */
function layoutDoc(rhizomeDoc = false): { doc: Y.Doc; put: (i: number) => void } {
  const doc = rhizomeDoc ? new DatabaseDoc() : new Y.Doc();
  if (rhizomeDoc) useFastUpdates(doc);
  const nodes = doc.getMap('nodes');
  const fields = doc.getMap('fields');
  return {
    doc,
    put(i) {
      const data = node(i);
      const id = `n${i}`;
      doc.transact((tr) => {
        setEntry(tr, nodes, id, true);
        for (const field in data) setEntry(tr, fields, id + '\u0000' + field, data[field as keyof typeof data]);
      });
    },
  };
}

/** The floor: the layout, its update encoded by Yjs (or as Rhizome does: `rhizomeDoc`), one commit per update from a microtask at the end of the task. */
async function floor(knobs: Knobs, rhizomeDoc = false): Promise<void> {
  const { commit, close } = committer(knobs);
  const { doc, put } = layoutDoc(rhizomeDoc);
  const queue: Uint8Array[] = [];
  let scheduled = false;
  doc.on('update', (update: Uint8Array) => {
    queue.push(update);
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      for (const u of queue) commit(u);
      queue.length = 0;
    });
  });
  for (let i = 0; i < PUTS; i++) {
    put(i);
    await nextMacrotask();
  }
  close();
}

/** An existing empty SQLite file of 4 KiB pages (as SQLite makes it; an exclusive store keeps an existing file's page size). */
function pages4k(): string {
  const path = file();
  const sql = new Sqlite(path);
  sql.pragma('page_size = 4096');
  sql.exec('CREATE TABLE t (x); DROP TABLE t');
  sql.close();
  return path;
}

async function rhizome(options: { path?: string; exclusive?: boolean; persistence?: { compactAfterUpdates?: number; compactIdleMs?: number } }): Promise<void> {
  const db = await openDatabase({ id: 'floor', ...options });
  for (let i = 0; i < PUTS; i++) {
    db.put(`n${i}`, node(i));
    await nextMacrotask();
  }
  await db.close();
}

const putVariants: Array<[string, () => Promise<void>]> = [
  ['await setImmediate alone', async () => {
    for (let i = 0; i < PUTS; i++) await nextMacrotask();
  }],
  ['layout (setEntry), no update encoded, no SQLite', async () => {
    const { put } = layoutDoc();
    for (let i = 0; i < PUTS; i++) {
      put(i);
      await nextMacrotask();
    }
  }],
  ['layout + update encoded (Yjs), no SQLite', async () => {
    const { doc, put } = layoutDoc();
    let bytes = 0;
    doc.on('update', (update: Uint8Array) => (bytes += update.length));
    for (let i = 0; i < PUTS; i++) {
      put(i);
      await nextMacrotask();
    }
    if (bytes === 0) throw new Error('no update');
  }],
  ['layout (setEntry) in a DatabaseDoc, no update encoded, no SQLite', async () => {
    const { put } = layoutDoc(true);
    for (let i = 0; i < PUTS; i++) {
      put(i);
      await nextMacrotask();
    }
  }],
  ['layout in a DatabaseDoc + update encoded in JS (useFastUpdates), no SQLite', async () => {
    const { doc, put } = layoutDoc(true);
    let bytes = 0;
    doc.on('update', (update: Uint8Array) => (bytes += update.length));
    for (let i = 0; i < PUTS; i++) {
      put(i);
      await nextMacrotask();
    }
    if (bytes === 0) throw new Error('no update');
  }],
  ['FLOOR: layout + update + store transaction per macrotask (shared file)', () => floor({ append: 'store' })],
  ['FLOOR: layout + update + autocommit INSERT per macrotask (shared file, seq from memory: not multi-process safe)', () => floor({ append: 'insert' })],
  ['FLOOR, exclusive: layout + update + EXCLUSIVE autocommit INSERT per macrotask', () => floor({ append: 'insert', exclusive: true })],
  ['FLOOR, exclusive, cheapest known: DatabaseDoc layout + JS update + EXCLUSIVE autocommit INSERT, page_size=1024', () => floor({ append: 'insert', exclusive: true, pageSize: 1024 }, true)],
  ['FLOOR, exclusive, cheapest known, schema version 2 (the log a rowid table keyed (doc << 44) + seq)', () => floor({ append: 'insert', exclusive: true, pageSize: 1024, table: 'rowid' }, true)],
  ['FLOOR, shared file, schema version 2 (DatabaseDoc layout + JS update + autocommit INSERT, seq from memory: not multi-process safe)', () => floor({ append: 'insert', table: 'rowid' }, true)],
  ['Rhizome db.put, SQLite file (default)', () => rhizome({ path: file() })],
  ['Rhizome db.put, SQLite file, exclusive: true', () => rhizome({ path: file(), exclusive: true })],
  ['Rhizome db.put, in memory (no SQLite)', () => rhizome({})],
  ['Rhizome db.put, SQLite file, exclusive: true, no automatic compaction (compactAfterUpdates: Infinity)', () => rhizome({ path: file(), exclusive: true, persistence: { compactAfterUpdates: Infinity } })],
  ['Rhizome db.put, SQLite file, exclusive: true, an existing file of 4 KiB pages', () => rhizome({ path: pages4k(), exclusive: true })],
  // Session 10: the automatic compaction waits for an idle moment once the log holds a quarter of
  // a threshold, and a stream that never pauses compacts at the threshold (default 40,000 updates).
  // These keep the trigger of sessions 1-9 (every 10,000 updates, on the next macrotask) to compare.
  ['Rhizome db.put, SQLite file, exclusive: true, compaction as before session 10 (every 10,000 updates, no idle compaction)', () =>
    rhizome({ path: file(), exclusive: true, persistence: { compactAfterUpdates: 10_000, compactIdleMs: Infinity } })],
  ['Rhizome db.put, SQLite file (default), compaction as before session 10 (every 10,000 updates, no idle compaction)', () =>
    rhizome({ path: file(), persistence: { compactAfterUpdates: 10_000, compactIdleMs: Infinity } })],
];

const variants: Array<[string, () => Promise<void>]> = [];
if (PART === 'commits' || PART === 'all') {
  for (const [name, knobs] of commitVariants) {
    variants.push([`commit: ${name}`, async () => {
      const { commit, close } = committer(knobs);
      for (let i = 0; i < PUTS; i++) {
        commit(blob);
        await nextMacrotask();
      }
      close();
    }]);
  }
}
if (PART === 'puts' || PART === 'all') variants.push(...putVariants);
const chosen = variants.filter(([name]) => ONLY === '' || new RegExp(ONLY).test(name));

interface Samples {
  rate: number[];
  cpu: number[];
  wait: number[];
}
const results = new Map<string, Samples>();
try {
  for (let round = 0; round < ROUNDS; round++) {
    const shift = round % chosen.length;
    for (const [name, run] of [...chosen.slice(shift), ...chosen.slice(0, shift)]) {
      const cpu0 = process.threadCpuUsage();
      const t0 = performance.now();
      await run();
      const us = (performance.now() - t0) * 1000;
      const cpu = process.threadCpuUsage(cpu0);
      const r = results.get(name) ?? { rate: [], cpu: [], wait: [] };
      const cpuPerPut = (cpu.user + cpu.system) / PUTS;
      r.rate.push((PUTS / us) * 1e6);
      r.cpu.push(cpuPerPut);
      r.wait.push(us / PUTS - cpuPerPut);
      results.set(name, r);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
process.stdout.write(`One commit or put per macrotask, ${PUTS} each (puts of a 3-field node, commits of 90 B), ${ROUNDS} rotated rounds (medians)\n\n`);
process.stdout.write('| variant | per s (wall) | main-thread CPU µs each | wall − CPU µs each |\n| --- | --- | --- | --- |\n');
for (const [name] of chosen) {
  const r = results.get(name)!;
  process.stdout.write(`| ${name} | ${Math.round(median(r.rate)).toLocaleString('en-US')} | ${median(r.cpu).toFixed(2)} | ${median(r.wait).toFixed(2)} |\n`);
}
process.stdout.write('\n40k puts/s is 25 µs per put.\n');
