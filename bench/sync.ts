// Sync benchmarks: local write throughput (persisted to an SQLite file), a fresh replica syncing a
// large database over the memory transport (time and wire bytes vs the Yjs snapshot), and live
// update throughput between two replicas. Baselines are measured in the same run.
//
// npm run bench -- --only sync [--quick]
// or: npm exec -- node --conditions=rhizome-source --import tsx bench/sync.ts [--quick]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import * as Y from 'yjs';
import Sqlite from 'better-sqlite3';
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { createContext, fmt, fmtStats, machineLine, repeat, rssMiB, summarize } from './harness.js';
import type { BenchContext, Stats } from './harness.js';
import { untilSize } from '../test/sync-helpers.js';
import { floorWriter, node } from './floor-writer.js';


/** One row of {@link Rounds}: its figures once the rounds ran. */
interface Planned {
  readonly stats: Stats;
}

/**
 * Rows measured in rounds: every round runs each row once, in the order they were added, rotated by
 * one per round (no row always follows the same one, nor always runs first), after `warmup`
 * untimed rounds. So every row sees the process in the same state, as the ratios between rows
 * (a row against its floor) assume.
 */
class Rounds {
  readonly #runs: number;
  readonly #warmup: number;
  readonly #rows: Array<{ fn: () => Promise<number>; values: number[]; stats: Stats | null }> = [];

  constructor(runs: number, warmup: number) {
    this.#runs = runs;
    this.#warmup = warmup;
  }

  /** Adds a row; `fn` measures one run and returns its figure. */
  add(fn: () => Promise<number>): Planned {
    const entry: { fn: () => Promise<number>; values: number[]; stats: Stats | null } = { fn, values: [], stats: null };
    this.#rows.push(entry);
    return {
      get stats(): Stats {
        if (entry.stats === null) throw new Error('Rounds.run() has not finished');
        return entry.stats;
      },
    };
  }

  async run(): Promise<void> {
    const n = this.#rows.length;
    for (let round = -this.#warmup; round < this.#runs; round++) {
      for (let k = 0; k < n; k++) {
        const entry = this.#rows[(k + Math.max(0, round)) % n]!;
        const value = await entry.fn();
        if (round >= 0) entry.values.push(value);
      }
    }
    for (const entry of this.#rows) entry.stats = summarize(entry.values);
  }
}

export async function run(ctx: BenchContext): Promise<void> {
  const N = ctx.quick ? 10_000 : 100_000;
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-bench-sync-'));
  try {
    // ---- 1. local writes, persisted ----------------------------------------------------------
    // The rows run interleaved, one run of each per round (the order rotated by one every round),
    // after one untimed round of all of them: measured one row after another, the first rows of
    // the process paid for its cold start (code not yet optimized, the heap still growing: twice
    // the page faults and system time per put) and the floors, measured last, did not
    // (BENCHMARKS.md § Issue 12, Session 14 (puts)).
    const rounds = new Rounds(ctx.runs, ctx.quick ? 0 : 1);
    let file = 0;
    const tight = rounds.add(async () => {
      const db = await openDatabase({ id: 'bench', path: join(dir, `w${file++}.db`) });
      const t0 = performance.now();
      for (let i = 0; i < N; i++) db.put(`n${i}`, node(i));
      await db.flush();
      const ms = performance.now() - t0;
      await db.close();
      return (N / ms) * 1000;
    });
    const many = rounds.add(async () => {
      const db = await openDatabase({ id: 'bench', path: join(dir, `w${file++}.db`) });
      const entries: Array<[string, ReturnType<typeof node>]> = [];
      for (let i = 0; i < N; i++) entries.push([`n${i}`, node(i)]);
      const t0 = performance.now();
      // The batch API: one Yjs transaction, one update, one SQLite row.
      db.putMany(entries);
      await db.flush();
      const ms = performance.now() - t0;
      await db.close();
      return (N / ms) * 1000;
    });
    const transacted = rounds.add(async () => {
      const db = await openDatabase({ id: 'bench', path: join(dir, `w${file++}.db`) });
      const t0 = performance.now();
      // db.transact: the app's own loop of puts, as one transaction per 1,000 puts.
      for (let i = 0; i < N; i += 1000) {
        db.transact(() => {
          for (let j = i; j < i + 1000 && j < N; j++) db.put(`n${j}`, node(j));
        });
      }
      await db.flush();
      const ms = performance.now() - t0;
      await db.close();
      return (N / ms) * 1000;
    });
    const batched = rounds.add(async () => {
      const db = await openDatabase({ id: 'bench', path: join(dir, `w${file++}.db`) });
      const t0 = performance.now();
      // Bulk load: all puts in one Yjs transaction (one update, one SQLite row).
      db.doc.transact(() => {
        for (let i = 0; i < N; i++) db.put(`n${i}`, node(i));
      });
      await db.flush();
      const ms = performance.now() - t0;
      await db.close();
      return (N / ms) * 1000;
    });
    const paced = rounds.add(async () => {
      const db = await openDatabase({ id: 'bench', path: join(dir, `w${file++}.db`) });
      const t0 = performance.now();
      // 100 puts per macrotask: each tick's updates are one SQLite transaction.
      for (let i = 0; i < N; i += 100) {
        for (let j = i; j < i + 100 && j < N; j++) db.put(`n${j}`, node(j));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const ms = performance.now() - t0;
      await db.close();
      return (N / ms) * 1000;
    });
    const oneEach = (exclusive: boolean): Planned => rounds.add(async () => {
      const db = await openDatabase({ id: 'bench', path: join(dir, `w${file++}.db`), exclusive });
      const M = Math.min(N, 20_000);
      const t0 = performance.now();
      // One put per macrotask: one SQLite transaction per put.
      for (let i = 0; i < M; i++) {
        db.put(`n${i}`, node(i));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const ms = performance.now() - t0;
      await db.close();
      return (M / ms) * 1000;
    });
    const oneEachShared = oneEach(false);
    // The file held by this database alone (openDatabase({ exclusive: true })): no file locks per
    // commit, sequence numbers from memory.
    const oneEachExclusive = oneEach(true);
    const floorOne = rounds.add(async () => {
      const w = floorWriter(join(dir, `w${file++}.db`));
      const M = Math.min(N, 20_000);
      const t0 = performance.now();
      for (let i = 0; i < M; i++) {
        w.put(i, 1);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const ms = performance.now() - t0;
      w.close();
      return (M / ms) * 1000;
    });
    const floorTight = (encoder: 'yjs' | 'js'): Planned => rounds.add(async () => {
      const w = floorWriter(join(dir, `w${file++}.db`), encoder);
      const t0 = performance.now();
      for (let i = 0; i < N; i += 1000) w.put(i, Math.min(1000, N - i));
      await Promise.resolve(); // the microtask that writes the updates
      const ms = performance.now() - t0;
      w.close();
      return (N / ms) * 1000;
    });
    const floorBatch = floorTight('yjs');
    const floorBatchJs = floorTight('js');
    const perCall = rounds.add(async () => {
      const db = await openDatabase({ id: 'bench', path: join(dir, `w${file++}.db`) });
      const t0 = performance.now();
      // Every put its own transaction (what db.put did before write batching).
      for (let i = 0; i < N; i++) db.transact(() => db.put(`n${i}`, node(i)));
      await db.flush();
      const ms = performance.now() - t0;
      await db.close();
      return (N / ms) * 1000;
    });
    const bare = rounds.add(async () => {
      const doc = new Y.Doc();
      const map = doc.getMap('m');
      const t0 = performance.now();
      for (let i = 0; i < N; i++) map.set(`n${i}`, node(i));
      return (N / (performance.now() - t0)) * 1000;
    });
    const sameLayout = rounds.add(async () => {
      // The database's layout (a marker and one map entry per field, one transaction per put) on a
      // bare doc: what the node model costs before validation and persistence.
      const doc = new Y.Doc();
      const nodes = doc.getMap('nodes');
      const fields = doc.getMap('fields');
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        const data = node(i);
        doc.transact(() => {
          nodes.set(`n${i}`, true);
          for (const [k, v] of Object.entries(data)) fields.set(`n${i}\u0000${k}`, v);
        });
      }
      return (N / (performance.now() - t0)) * 1000;
    });
    await rounds.run();
    const row = (workload: string, planned: Planned, floorPlanned?: Planned): Record<string, string> => {
      const st = planned.stats;
      const floor = floorPlanned?.stats;
      return {
        workload,
        'puts/s': fmtStats(st, 0),
        'vs its floor': floor ? `${fmt(st.median / floor.median, 2)}×` : '-',
        'vs bare Y.Map.set': `${fmt(st.median / bare.stats.median, 2)}×`,
      };
    };
    const M1 = fmt(Math.min(N, 20_000), 0);
    ctx.table(`Local writes: ${fmt(N, 0)} puts of a 3-field node, persisted to an SQLite file (puts/s)`, [
      row('db.put in a tight loop (batched: one transaction and one SQLite row per 1,000 puts)', tight, floorBatchJs),
      row('db.putMany of N nodes (batch API: one update, one row)', many, floorBatchJs),
      row('db.put inside db.transact, 1,000 per transaction (in one tick)', transacted, floorBatchJs),
      row('db.put × N inside one db.doc.transact (bulk load: one update, one row)', batched, floorBatchJs),
      row('db.put, each in its own db.transact (one Yjs transaction per put, as before batching)', perCall, floorBatchJs),
      row('db.put, 100 per macrotask (one transaction per tick)', paced),
      row(`db.put, 1 per macrotask (${M1} puts, one transaction each)`, oneEachShared, floorOne),
      row(`db.put, 1 per macrotask, exclusive: true (the file held by this database alone; ${M1} puts)`, oneEachExclusive, floorOne),
      row(`floor, 1 per macrotask: bare Y.Doc, same layout, 1 autocommit INSERT per macrotask (${M1} puts)`, floorOne, floorOne),
      row("floor, tight loop: bare Y.Doc, same layout, 1,000 puts per transaction, 1 INSERT each (Yjs's 'update' encoding)", floorBatch, floorBatchJs),
      row('floor, tight loop, as above with entries written and updates encoded as Rhizome does (nodes.ts setEntry, doc-updates.ts: same bytes)', floorBatchJs, floorBatchJs),
      row('baseline: the same layout on a bare Y.Doc (4 map sets per put, one transaction each), no persistence', sameLayout),
      row('baseline: one Y.Map.set of the whole object per put, bare Y.Doc, no persistence', bare),
    ]);

    // ---- 2. a fresh replica syncs a large database ---------------------------------------------
    const sourcePath = join(dir, 'source.db');
    const id = generateDatabaseId();
    {
      const db = await openDatabase({ id, path: sourcePath });
      db.doc.transact(() => {
        for (let i = 0; i < N; i++) db.put(`n${i}`, node(i));
      });
      await db.close();
    }
    const rows: Array<Record<string, string | number>> = [];
    let snapshotBytes = 0;
    for (const maxMessageSize of [undefined, 65536]) {
      let bytes = 0;
      let frames = 0;
      const time = await repeat(ctx.runs, async (r) => {
        const hub = `bench-${randomUUID()}`;
        const t1 = new MemoryTransport(maxMessageSize ? { hub, peerId: 'src', maxMessageSize } : { hub, peerId: 'src' });
        const t2 = new MemoryTransport(maxMessageSize ? { hub, peerId: 'fresh', maxMessageSize } : { hub, peerId: 'fresh' });
        const source = await openDatabase({ id, path: sourcePath, transport: t1 });
        snapshotBytes = Y.encodeStateAsUpdate(source.doc).length;
        const t0 = performance.now();
        const fresh = await openDatabase({ id, path: join(dir, `fresh-${maxMessageSize ?? 0}-${r}.db`), transport: t2 });
        await fresh.whenSynced({ minPeers: 1, timeoutMs: 120_000 });
        const ms = performance.now() - t0;
        if (fresh.size !== N) throw new Error(`fresh replica has ${fresh.size}/${N} nodes`);
        const peer = fresh.stats().peers[0]!;
        bytes = peer.bytesReceived;
        frames = peer.framesReceived;
        await fresh.close();
        await source.close();
        await t1.disconnect();
        await t2.disconnect();
        return ms;
      });
      rows.push({
        transport: maxMessageSize ? 'memory, 64 KiB frame cap' : 'memory, default (frames ≤ 1 MiB)',
        'time to synced (ms)': fmtStats(time, 0),
        'bytes received': fmt(bytes, 0),
        frames,
        'bytes vs Y.encodeStateAsUpdate': `${fmt(bytes / snapshotBytes, 3)}×`,
      });
    }
    const baseline = await repeat(ctx.runs, async () => {
      const db = await openDatabase({ id, path: sourcePath });
      const t0 = performance.now();
      const update = Y.encodeStateAsUpdate(db.doc);
      const doc = new Y.Doc();
      Y.applyUpdate(doc, update);
      const ms = performance.now() - t0;
      await db.close();
      return ms;
    });
    rows.push({
      transport: 'baseline: Y.encodeStateAsUpdate + Y.applyUpdate to a bare doc, in memory',
      'time to synced (ms)': fmtStats(baseline, 0),
      'bytes received': fmt(snapshotBytes, 0),
      frames: '-',
      'bytes vs Y.encodeStateAsUpdate': '1×',
    });
    ctx.table(`A fresh replica syncs a ${fmt(N, 0)}-node database (file-backed on both sides)`, rows);

    // ---- 3. live updates between two connected replicas ----------------------------------------
    const M = ctx.quick ? 10_000 : 100_000;
    let rss = 0;
    const live = await repeat(ctx.runs, async (r) => {
      const hub = `bench-${randomUUID()}`;
      const lid = generateDatabaseId();
      const a = await openDatabase({ id: lid, path: join(dir, `live-a-${r}.db`), transport: { mode: 'memory', hub, peerId: 'a' } });
      const b = await openDatabase({ id: lid, path: join(dir, `live-b-${r}.db`), transport: { mode: 'memory', hub, peerId: 'b' } });
      await Promise.all([a.whenSynced({ minPeers: 1 }), b.whenSynced({ minPeers: 1 })]);
      const t0 = performance.now();
      for (let i = 0; i < M; i++) a.put(`n${i}`, node(i));
      await untilSize(b, M, 120_000);
      const ms = performance.now() - t0;
      rss = Math.max(rss, rssMiB());
      await a.close();
      await b.close();
      return (M / ms) * 1000;
    });
    const liveBaseline = await repeat(ctx.runs, async () => {
      const da = new Y.Doc();
      const db = new Y.Doc();
      const updates: Uint8Array[] = [];
      da.on('update', (u: Uint8Array) => updates.push(u));
      const map = da.getMap('m');
      const t0 = performance.now();
      for (let i = 0; i < M; i++) map.set(`n${i}`, node(i));
      for (const u of updates) Y.applyUpdate(db, u);
      return (M / (performance.now() - t0)) * 1000;
    });
    ctx.table(`Live updates: ${fmt(M, 0)} puts in a tight loop on A until B has them all (memory transport, both file-backed)`, [
      { workload: 'Rhizome A → B (sealed, batched, persisted on both sides)', 'updates/s': fmtStats(live, 0), 'peak RSS (MiB)': fmt(rss, 0), 'vs baseline': `${fmt(live.median / liveBaseline.median, 2)}×` },
      { workload: 'baseline: Y.Map.set on doc A, apply each update to doc B, in memory', 'updates/s': fmtStats(liveBaseline, 0), 'peak RSS (MiB)': '-', 'vs baseline': '1×' },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ctx = createContext(process.argv.includes('--quick'));
  console.log(machineLine());
  await run(ctx);
}
