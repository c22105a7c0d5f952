// The store choice of issue 14, measured: IndexedDB (@rhizome/store-browser, as shipped) beside
// SQLite in OPFS (@sqlite.org/sqlite-wasm, "opfs-sahpool" VFS) in the same Chromium, on a
// disk-backed profile. Both run the whole Rhizome database in a dedicated worker (the sahpool VFS
// only exists there), so the only difference between two rows is the store.
//
// Part of `npm run bench -- --only browser` (called from bench/browser.ts).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { generateDatabaseId } from '@rhizome/core';
import { bundleForBrowser } from '../test/browser/bundle.js';
import { serveStatic, type StaticServer } from '../test/browser/harness.js';
import type { StoreTask, StoreTaskResult } from './browser-stores/worker-core.js';
import { fmt, fmtStats, repeat, summarize, type BenchContext, type Stats } from './harness.js';

type Kind = 'idb' | 'opfs' | 'opfs-off' | 'opfs-wal';
const LABEL: Record<Kind, string> = {
  idb: 'IndexedDB (@rhizome/store-browser: relaxed commits, strict flush())',
  opfs: 'SQLite in OPFS (sqlite-wasm 3.54, opfs-sahpool): synchronous=FULL, every commit flushed',
  'opfs-off': 'SQLite in OPFS, same: synchronous=OFF, one FULL commit in flush() (like IndexedDB\'s)',
  'opfs-wal': 'SQLite in OPFS, WAL + locking_mode=EXCLUSIVE, synchronous=NORMAL (as Node\'s store)',
};
const WORKER: Record<Kind, string> = { idb: '/worker-idb.js', opfs: '/worker-opfs.js?synchronous=FULL', 'opfs-off': '/worker-opfs.js?synchronous=OFF', 'opfs-wal': '/worker-opfs.js?synchronous=NORMAL&journal=WAL' };

/** Builds the two worker bundles and serves them with sqlite3.wasm (no COOP/COEP headers: sahpool needs none). */
async function serveWorkers(): Promise<StaticServer> {
  const dir = join(import.meta.dirname, 'browser-stores');
  const [idb, opfs] = await Promise.all([bundleForBrowser(join(dir, 'worker-idb.ts')), bundleForBrowser(join(dir, 'worker-opfs.ts'))]);
  for (const b of [idb, opfs]) if (b.nodeBuiltins.length > 0) throw new Error(`a bench worker reaches Node built-ins: ${b.nodeBuiltins.join(', ')}`);
  const wasmPath = join(createRequire(import.meta.url).resolve('@sqlite.org/sqlite-wasm/package.json'), '../dist/sqlite3.wasm');
  return serveStatic({
    '/index.html': '<!doctype html><meta charset="utf-8"><title>rhizome store bench</title>',
    '/worker-idb.js': idb.code,
    '/worker-opfs.js': opfs.code,
    '/sqlite3.wasm': new Uint8Array(readFileSync(wasmPath)),
  });
}

/** Runs one task in a fresh module worker of the page; `pageMs` counts from `new Worker` to the answer. */
async function inWorker(page: Page, kind: Kind, task: StoreTask): Promise<StoreTaskResult & { pageMs: number }> {
  const result = await page.evaluate(
    async ([url, t]) => {
      const t0 = performance.now();
      const worker = new Worker(url, { type: 'module' });
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const answer = await new Promise<StoreTaskResult>((resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`worker task ${t.kind} timed out after 300 s`)), 300_000);
          worker.onmessage = (e: MessageEvent<StoreTaskResult>) => resolve(e.data);
          worker.onerror = (e) => reject(new Error(`worker error: ${e.message}`));
          worker.postMessage(t);
        });
        return { ...answer, pageMs: performance.now() - t0 };
      } finally {
        clearTimeout(timer);
        worker.terminate();
      }
    },
    [WORKER[kind], task] as const,
  );
  if (result.error) throw new Error(`${kind} ${task.kind}: ${result.error}`);
  return result;
}

function vs(value: Stats, base: Stats): string {
  return `${(value.median / base.median).toFixed(2)}x`;
}

/**
 * Measures puts/s persisted and reopen of a `nodes`-node database for both stores, in `context`
 * (a persistent, disk-backed Chromium profile: an off-the-record context keeps IndexedDB and OPFS
 * in memory), and prints the tables.
 */
export async function runStoreChoice(ctx: BenchContext, context: BrowserContext): Promise<void> {
  // One commit per put runs at ~100/s with a flush per commit: fewer puts there, the same for every store.
  const PUTS_SINGLE = ctx.quick ? 500 : 2_000;
  const PUTS = ctx.quick ? 2_000 : 10_000;
  const NODES = ctx.quick ? 10_000 : 100_000;
  const BATCH = 1_000;
  const KINDS: Kind[] = ['idb', 'opfs', 'opfs-off', 'opfs-wal'];
  const REOPEN_KINDS: Kind[] = ['idb', 'opfs'];
  const site = await serveWorkers();
  const page = await context.newPage();
  try {
    await page.goto(site.url);
    let n = 0;
    const puts = async (kind: Kind, count: number, perTick: number): Promise<number> => {
      const name = `puts-${n++}`;
      const r = await inWorker(page, kind, { kind: 'puts', name, n: count, perTick });
      if (r.size !== count) throw new Error(`${kind}: ${r.size} of ${count} nodes after the puts`);
      await inWorker(page, kind, { kind: 'drop', name });
      return (count / r.ms) * 1000;
    };

    // ---- puts persisted ------------------------------------------------------------------------
    for (const [count, perTick, title] of [
      [PUTS_SINGLE, 1, `${fmt(PUTS_SINGLE)} puts, one per macrotask (one store append each), then flush()`],
      [PUTS, BATCH, `${fmt(PUTS)} puts, ${fmt(BATCH)} per macrotask (one store append of ${fmt(BATCH)} updates), then flush()`],
    ] as const) {
      // Runs interleaved (idb, opfs, opfs-off, idb, ...): load from other programs hits all alike.
      const samples = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
      for (let run = 0; run < ctx.runs; run++) for (const kind of KINDS) samples[kind].push(await puts(kind, count, perTick));
      const stats = Object.fromEntries(KINDS.map((k) => [k, summarize(samples[k])])) as Record<Kind, Stats>;
      ctx.table(`Store choice, puts persisted, in a worker: ${title}, puts/s`, KINDS.map((kind) => ({
        store: LABEL[kind],
        'puts/s': fmtStats(stats[kind]),
        'vs IndexedDB': vs(stats[kind], stats.idb),
      })));
    }

    // ---- reopen of a NODES-node database -------------------------------------------------------
    for (const [perTick, layout] of [
      [0, `written in one transaction (one update row)`],
      [BATCH, `written ${fmt(BATCH)} puts per macrotask, compaction off (${fmt(NODES)} update rows; IndexedDB packs each transaction's updates into one row)`],
    ] as const) {
      const id = generateDatabaseId();
      const rows: Array<Record<string, string>> = [];
      const totals = {} as Record<Kind, Stats>;
      const parts = {} as Record<Kind, { engine: Stats; store: Stats; doc: Stats; log: number }>;
      // Reads do not depend on `synchronous`: one SQLite row.
      for (const kind of REOPEN_KINDS) {
        const name = `big-${n++}`;
        await inWorker(page, kind, { kind: 'build', name, id, nodes: NODES, perTick });
        const engine: number[] = [];
        const store: number[] = [];
        const doc: number[] = [];
        let log = 0;
        totals[kind] = await repeat(ctx.runs, async () => {
          const r = await inWorker(page, kind, { kind: 'reopen', name, id, nodes: NODES });
          if (r.size !== NODES) throw new Error(`${kind}: reopened ${r.size} of ${NODES} nodes`);
          engine.push(r.engineMs);
          store.push(r.storeMs);
          doc.push(r.docMs);
          log = r.logUpdates;
          return r.pageMs;
        });
        parts[kind] = { engine: summarize(engine), store: summarize(store), doc: summarize(doc), log };
        await inWorker(page, kind, { kind: 'drop', name });
      }
      for (const kind of REOPEN_KINDS) {
        rows.push({
          store: LABEL[kind],
          'new worker → open, ms': fmtStats(totals[kind]),
          'vs IndexedDB': vs(totals[kind], totals.idb),
          'engine start, ms': fmt(parts[kind].engine.median),
          'open store, ms': fmt(parts[kind].store.median),
          'openDatabase (read + rebuild doc), ms': fmt(parts[kind].doc.median),
          'log updates': fmt(parts[kind].log),
        });
      }
      ctx.table(`Store choice, reopen of a ${fmt(NODES)}-node database in a fresh worker, ${layout}`, rows);
    }
  } finally {
    await page.close().catch(() => undefined);
    await site.close();
  }
}
