// Storage benchmark: persisted Yjs writes through DocPersistence on an SQLite file, against raw
// better-sqlite3 inserts measured in the same run; reopen time of a large doc; compaction.
//
//   npm run bench -- --only store [--quick]
//   npm exec -- node --conditions=rhizome-source --import tsx bench/store.ts [--quick]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import * as Y from 'yjs';
import { openSqliteStore } from '@rhizome/store-sqlite';
import { DocPersistence, compactStoredDoc } from '@rhizome/sync';
import { createContext, fmt, fmtStats, machineLine, summarize, type BenchContext } from './harness.js';

function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function kib(bytes: number): string {
  return `${fmt(bytes / 1024)} KiB`;
}

function fileBytes(path: string): number {
  let total = 0;
  for (const suffix of ['', '-wal']) total += statSync(path + suffix, { throwIfNoEntry: false })?.size ?? 0;
  return total;
}

/** Writes/s of `n` Y.Map sets through DocPersistence on a fresh file; `perTick` sets per macrotask. */
async function persistedWrites(
  dir: string,
  n: number,
  perTick: number,
  compaction = true,
  synchronous: 'normal' | 'full' = 'normal',
): Promise<number> {
  const path = join(dir, `w-${Math.random().toString(36).slice(2)}.db`);
  const store = openSqliteStore(path, { synchronous });
  const doc = new Y.Doc();
  // Default compaction thresholds (10,000 updates / 8 MiB), or none.
  const options = compaction ? {} : { compactAfterUpdates: Infinity, compactAfterBytes: Infinity };
  const persistence = new DocPersistence(store, 'bench', doc, options);
  persistence.load();
  const map = doc.getMap<number>('nodes');
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    map.set(`n${i}`, i);
    if ((i + 1) % perTick === 0) await nextMacrotask(); // the tick's writes are committed by now
  }
  persistence.flush();
  const ms = performance.now() - start;
  persistence.close();
  store.close();
  return n / (ms / 1000);
}

/** Writes/s of the same Y.Map sets without persistence: the cost of Yjs alone. */
async function yjsOnly(n: number, perTick: number): Promise<number> {
  const doc = new Y.Doc();
  const map = doc.getMap<number>('nodes');
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    map.set(`n${i}`, i);
    if ((i + 1) % perTick === 0) await nextMacrotask();
  }
  return n / ((performance.now() - start) / 1000);
}

/** Inserts/s of ~30-byte blobs with raw better-sqlite3 (WAL, synchronous=NORMAL), `batch` per transaction. */
function rawInserts(dir: string, n: number, batch: number): number {
  const path = join(dir, `raw-${Math.random().toString(36).slice(2)}.db`);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE log (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO log (id, data) VALUES (?, ?)');
  const tx = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) insert.run(i + 1, payload);
  });
  const payload = new Uint8Array(30).fill(7);
  const start = performance.now();
  for (let i = 0; i < n; i += batch) tx.immediate(i, Math.min(n, i + batch));
  const ms = performance.now() - start;
  db.close();
  return n / (ms / 1000);
}

/** Builds a file whose doc holds `entries` map entries written as `entries` separate updates. */
function buildLog(path: string, entries: number, keys = entries): { logBytes: number; doc: Y.Doc } {
  const store = openSqliteStore(path);
  const doc = new Y.Doc();
  const persistence = new DocPersistence(store, 'bench', doc, { compactAfterUpdates: Infinity, compactAfterBytes: Infinity });
  const map = doc.getMap<string>('nodes');
  for (let i = 0; i < entries; i++) {
    map.set(`node-${i % keys}`, `value ${i}`);
    if ((i + 1) % 1000 === 0) persistence.flush();
  }
  persistence.close();
  const logBytes = store.stats('bench').updateBytes;
  store.close();
  return { logBytes, doc };
}

/** Milliseconds to open the file (header + quick_check + migrations) and load the doc. */
function reopenMs(path: string, integrityCheck: 'quick' | 'none' = 'quick'): number {
  const start = performance.now();
  const store = openSqliteStore(path, { integrityCheck });
  const doc = new Y.Doc();
  const persistence = new DocPersistence(store, 'bench', doc);
  persistence.load();
  const ms = performance.now() - start;
  persistence.close();
  store.close();
  return ms;
}

/** The storage benchmark area (see BENCHMARKS.md § Storage). */
export async function run(ctx: BenchContext): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-bench-store-'));
  try {
    const writes = ctx.quick ? 10_000 : 100_000;
    const entries = ctx.quick ? 10_000 : 100_000;
    ctx.note(`\n${fmt(writes)} writes per measurement, ${ctx.runs} run(s) interleaved, median (min–max); load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}.`);

    // Interleaved (one of each per round) so that load from other processes hits all alike.
    const samples = { rawSingle: [], rawBatch: [], perTick1: [], perTick1NoCompaction: [], perTick1Full: [], perTick100: [], yjs1: [], yjs100: [] } as Record<
      'rawSingle' | 'rawBatch' | 'perTick1' | 'perTick1NoCompaction' | 'perTick1Full' | 'perTick100' | 'yjs1' | 'yjs100',
      number[]
    >;
    const fullWrites = ctx.quick ? 500 : 2000; // an fsync per write: far fewer
    for (let r = 0; r < ctx.runs; r++) {
      samples.rawSingle.push(rawInserts(dir, writes, 1));
      samples.rawBatch.push(rawInserts(dir, writes, 1000));
      samples.perTick1.push(await persistedWrites(dir, writes, 1));
      samples.perTick1NoCompaction.push(await persistedWrites(dir, writes, 1, false));
      samples.perTick1Full.push(await persistedWrites(dir, fullWrites, 1, true, 'full'));
      samples.perTick100.push(await persistedWrites(dir, writes, 100));
      samples.yjs1.push(await yjsOnly(writes, 1));
      samples.yjs100.push(await yjsOnly(writes, 100));
    }
    const rawSingle = summarize(samples.rawSingle);
    const rawBatch = summarize(samples.rawBatch);
    const perTick1 = summarize(samples.perTick1);
    const perTick1NoCompaction = summarize(samples.perTick1NoCompaction);
    const perTick100 = summarize(samples.perTick100);
    const perTick1Full = summarize(samples.perTick1Full);
    const yjs1 = summarize(samples.yjs1);
    const yjs100 = summarize(samples.yjs100);
    ctx.table('Write throughput (writes/s)', [
      { what: 'raw better-sqlite3 INSERT, 1 per transaction (baseline)', 'writes/s': fmtStats(rawSingle, 0), ratio: '1.00' },
      { what: 'raw better-sqlite3 INSERT, 1,000 per transaction', 'writes/s': fmtStats(rawBatch, 0), ratio: fmt(rawBatch.median / rawSingle.median, 2) },
      { what: 'Y.Map.set + DocPersistence, 1 write per tick (1 transaction each)', 'writes/s': fmtStats(perTick1, 0), ratio: fmt(perTick1.median / rawSingle.median, 2) },
      { what: 'same, automatic compaction off', 'writes/s': fmtStats(perTick1NoCompaction, 0), ratio: fmt(perTick1NoCompaction.median / rawSingle.median, 2) },
      { what: `same, synchronous: 'full' (fsync per commit; ${fmt(fullWrites)} writes)`, 'writes/s': fmtStats(perTick1Full, 0), ratio: fmt(perTick1Full.median / rawSingle.median, 2) },
      { what: 'Y.Map.set + DocPersistence, 100 writes per tick (1 transaction per tick)', 'writes/s': fmtStats(perTick100, 0), ratio: fmt(perTick100.median / rawSingle.median, 2) },
      { what: 'Y.Map.set alone, 1 per tick (no persistence)', 'writes/s': fmtStats(yjs1, 0), ratio: fmt(yjs1.median / rawSingle.median, 2) },
      { what: 'Y.Map.set alone, 100 per tick (no persistence)', 'writes/s': fmtStats(yjs100, 0), ratio: fmt(yjs100.median / rawSingle.median, 2) },
    ]);

    // Reopen and compaction on a doc of `entries` map entries, each written as its own update.
    const rows: Array<Record<string, string | number>> = [];
    const logReopen: number[] = [];
    const logReopenNoCheck: number[] = [];
    const snapReopen: number[] = [];
    const liveCompact: number[] = [];
    const offlineCompact: number[] = [];
    let logBytes = 0;
    let snapshotBytes = 0;
    let fileBefore = 0;
    let fileAfter = 0;
    for (let r = 0; r < ctx.runs; r++) {
      const path = join(dir, `reopen-${r}.db`);
      const built = buildLog(path, entries);
      logBytes = built.logBytes;
      logReopen.push(reopenMs(path));
      logReopenNoCheck.push(reopenMs(path, 'none'));
      fileBefore = fileBytes(path);

      // Offline compaction (the CLI path): apply the log to a fresh doc in one transaction.
      const copy = join(dir, `offline-${r}.db`);
      buildLog(copy, entries);
      const offline = openSqliteStore(copy);
      let start = performance.now();
      compactStoredDoc(offline, 'bench');
      offlineCompact.push(performance.now() - start);
      offline.close();

      // Live compaction: encode the loaded doc.
      const store = openSqliteStore(path);
      const doc = new Y.Doc();
      const persistence = new DocPersistence(store, 'bench', doc, { compactAfterUpdates: Infinity, compactAfterBytes: Infinity });
      persistence.load();
      start = performance.now();
      persistence.compact();
      liveCompact.push(performance.now() - start);
      const stats = persistence.stats();
      snapshotBytes = stats.snapshotBytes;
      if (stats.updates !== 0) throw new Error('compaction left updates in the log');
      persistence.close();
      store.checkpoint();
      store.close();
      fileAfter = fileBytes(path);
      snapReopen.push(reopenMs(path));
    }
    const s = (values: number[]): string => fmtStats(summarize(values), 1);
    rows.push(
      { what: `reopen (open + quick_check + load), ${fmt(entries)} updates in the log`, value: `${s(logReopen)} ms` },
      { what: 'same without the integrity check (integrityCheck: none)', value: `${s(logReopenNoCheck)} ms` },
      { what: `reopen from the snapshot after compaction`, value: `${s(snapReopen)} ms` },
      { what: 'compaction of the live doc (encodeStateAsUpdate + one transaction)', value: `${s(liveCompact)} ms` },
      { what: 'offline compaction, compactStoredDoc (load + apply in one transaction + encode)', value: `${s(offlineCompact)} ms` },
      { what: 'log bytes before compaction (sum of updates)', value: kib(logBytes) },
      { what: 'snapshot bytes after compaction (log empty)', value: kib(snapshotBytes) },
      { what: 'file + WAL bytes before / after compaction and checkpoint (no VACUUM)', value: `${kib(fileBefore)} / ${kib(fileAfter)}` },
    );
    ctx.table(`Reopen and compaction, ${fmt(entries)}-entry Y.Map`, rows);

    // The same number of writes on few keys (each overwritten 100 times): what compaction saves
    // when most of the log is superseded.
    const keys = entries / 100;
    const overwritePath = join(dir, 'overwrite.db');
    const overwrite = buildLog(overwritePath, entries, keys);
    const before = reopenMs(overwritePath);
    const ow = openSqliteStore(overwritePath);
    const owCompact = compactStoredDoc(ow, 'bench');
    ow.close();
    const after = reopenMs(overwritePath);
    ctx.table(`${fmt(entries)} writes over ${fmt(keys)} keys (each overwritten ${fmt(entries / keys)} times), offline compaction`, [
      { what: 'log bytes before compaction', value: kib(overwrite.logBytes) },
      { what: 'snapshot bytes after compaction', value: kib(owCompact.after.snapshotBytes) },
      { what: 'reopen before / after compaction', value: `${fmt(before)} ms / ${fmt(after)} ms` },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  console.log(`# Rhizome storage benchmark${quick ? ' (quick)' : ''}\n\n${machineLine()}`);
  await run(createContext(quick));
}
