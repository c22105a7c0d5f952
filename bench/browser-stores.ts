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

type Kind = 'idb' | 'opfs' | 'opfs-off' | 'opfs-wal' | 'page-idb' | 'page-opfs';
const LABEL: Record<Kind, string> = {
  idb: 'IndexedDB (@rhizome/store-browser: relaxed commits, strict flush())',
  opfs: 'SQLite in OPFS (sqlite-wasm 3.54, opfs-sahpool, rollback journal): synchronous=FULL, every commit flushed',
  'opfs-off': "SQLite in OPFS, same: synchronous=OFF, one FULL commit in flush() (IndexedDB's model)",
  'opfs-wal': "SQLite in OPFS, WAL + locking_mode=EXCLUSIVE, synchronous=NORMAL (Node's settings)",
  'page-idb': 'IndexedDB (@rhizome/store-browser), as shipped',
  'page-opfs': 'SQLite in OPFS behind a worker (write-behind mirror, synchronous=OFF + FULL flush)',
};
const WORKER: Partial<Record<Kind, string>> = {
  idb: '/worker-idb.js',
  opfs: '/worker-opfs.js?synchronous=FULL',
  'opfs-off': '/worker-opfs.js?synchronous=OFF',
  'opfs-wal': '/worker-opfs.js?synchronous=NORMAL&journal=WAL',
};
const WHERE: Record<Kind, string> = { idb: 'worker', opfs: 'worker', 'opfs-off': 'worker', 'opfs-wal': 'worker', 'page-idb': 'page', 'page-opfs': 'page' };
/** The IndexedDB row each row is compared with: the one that runs where it runs. */
const BASE: Record<Kind, Kind> = { idb: 'idb', opfs: 'idb', 'opfs-off': 'idb', 'opfs-wal': 'idb', 'page-idb': 'page-idb', 'page-opfs': 'page-idb' };

/** Builds the page and worker bundles and serves them with sqlite3.wasm (no COOP/COEP headers: sahpool needs none). */
async function serveBench(): Promise<StaticServer> {
  const dir = join(import.meta.dirname, 'browser-stores');
  const entries = ['page', 'worker-idb', 'worker-opfs', 'worker-opfs-host'];
  const bundles = await Promise.all(entries.map((e) => bundleForBrowser(join(dir, `${e}.ts`))));
  const files: Record<string, string | Uint8Array> = {
    '/index.html': '<!doctype html><meta charset="utf-8"><title>rhizome store bench</title><script type="module" src="/page.js"></script>',
  };
  bundles.forEach((b, i) => {
    if (b.nodeBuiltins.length > 0) throw new Error(`${entries[i]} reaches Node built-ins: ${b.nodeBuiltins.join(', ')}`);
    files[`/${entries[i]}.js`] = b.code;
  });
  const wasmPath = join(createRequire(import.meta.url).resolve('@sqlite.org/sqlite-wasm/package.json'), '../dist/sqlite3.wasm');
  files['/sqlite3.wasm'] = new Uint8Array(readFileSync(wasmPath));
  return serveStatic(files);
}

type Measured = StoreTaskResult & { pageMs: number };

/** Runs one task in a fresh module worker of the page; `pageMs` counts from `new Worker` to the answer. */
async function inWorker(page: Page, url: string, task: StoreTask): Promise<Measured> {
  return page.evaluate(
    async ([u, t]) => {
      const t0 = performance.now();
      const worker = new Worker(u, { type: 'module' });
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
    [url, task] as const,
  );
}

/** Runs one task in the page itself (a freshly loaded page for a reopen). */
async function inPage(page: Page, kind: 'idb' | 'opfs', task: StoreTask, siteUrl: string): Promise<Measured> {
  if (task.kind === 'reopen') await page.goto(siteUrl);
  await page.waitForFunction(() => 'storeBench' in globalThis, undefined, { timeout: 30_000 });
  const result = await page.evaluate(
    ([k, t]) => (globalThis as unknown as { storeBench: { run(kind: string, task: StoreTask): Promise<StoreTaskResult> } }).storeBench.run(k, t),
    [kind, task] as const,
  );
  return { ...result, pageMs: result.ms };
}

async function runKind(page: Page, kind: Kind, task: StoreTask, siteUrl: string): Promise<Measured> {
  let result: Measured;
  if (kind === 'page-idb') result = await inPage(page, 'idb', task, siteUrl);
  else if (kind === 'page-opfs' && task.kind !== 'drop') result = await inPage(page, 'opfs', task, siteUrl);
  else result = await inWorker(page, WORKER[kind === 'page-opfs' ? 'opfs' : kind]!, task);
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
  const KINDS: Kind[] = ['idb', 'opfs', 'opfs-off', 'opfs-wal', 'page-idb', 'page-opfs'];
  // Reads do not depend on `synchronous` or the journal: one SQLite row per placement.
  const REOPEN_KINDS: Kind[] = ['idb', 'opfs', 'page-idb', 'page-opfs'];
  const site = await serveBench();
  const page = await context.newPage();
  try {
    await page.goto(site.url);
    let n = 0;
    const puts = async (kind: Kind, count: number, perTick: number): Promise<number> => {
      const name = `puts-${n++}`;
      const r = await runKind(page, kind, { kind: 'puts', name, n: count, perTick }, site.url);
      if (r.size !== count) throw new Error(`${kind}: ${r.size} of ${count} nodes after the puts`);
      await runKind(page, kind, { kind: 'drop', name }, site.url);
      return (count / r.ms) * 1000;
    };

    // ---- puts persisted ------------------------------------------------------------------------
    for (const [count, perTick, title] of [
      [PUTS_SINGLE, 1, `${fmt(PUTS_SINGLE)} puts, one per macrotask (one store append each), then flush()`],
      [PUTS, BATCH, `${fmt(PUTS)} puts, ${fmt(BATCH)} per macrotask (one store append of ${fmt(BATCH)} updates), then flush()`],
    ] as const) {
      // Runs interleaved (idb, opfs, ..., idb, ...): load from other programs hits all alike.
      const samples = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
      for (let run = 0; run < ctx.runs; run++) for (const kind of KINDS) samples[kind].push(await puts(kind, count, perTick));
      const stats = Object.fromEntries(KINDS.map((k) => [k, summarize(samples[k])])) as Record<Kind, Stats>;
      ctx.table(`Store choice, puts persisted: ${title}, puts/s`, KINDS.map((kind) => ({
        'database in': WHERE[kind],
        store: LABEL[kind],
        'puts/s': fmtStats(stats[kind]),
        'vs IndexedDB (same place)': vs(stats[kind], stats[BASE[kind]]),
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
      for (const kind of REOPEN_KINDS) {
        const name = `big-${n++}`;
        await runKind(page, kind, { kind: 'build', name, id, nodes: NODES, perTick }, site.url);
        const engine: number[] = [];
        const store: number[] = [];
        const doc: number[] = [];
        let log = 0;
        totals[kind] = await repeat(ctx.runs, async () => {
          const r = await runKind(page, kind, { kind: 'reopen', name, id, nodes: NODES }, site.url);
          if (r.size !== NODES) throw new Error(`${kind}: reopened ${r.size} of ${NODES} nodes`);
          engine.push(r.engineMs);
          store.push(r.storeMs);
          doc.push(r.docMs);
          log = r.logUpdates;
          return r.pageMs;
        });
        parts[kind] = { engine: summarize(engine), store: summarize(store), doc: summarize(doc), log };
        await runKind(page, kind, { kind: 'drop', name }, site.url);
      }
      for (const kind of REOPEN_KINDS) {
        rows.push({
          'database in': WHERE[kind],
          store: LABEL[kind],
          'start → open, ms': fmtStats(totals[kind]),
          'vs IndexedDB (same place)': vs(totals[kind], totals[BASE[kind]]),
          'engine start, ms': fmt(parts[kind].engine.median),
          'open store, ms': fmt(parts[kind].store.median),
          'openDatabase (read + rebuild doc), ms': fmt(parts[kind].doc.median),
          'log updates': fmt(parts[kind].log),
        });
      }
      ctx.table(`Store choice, reopen of a ${fmt(NODES)}-node database in a fresh worker (from \`new Worker\`) or a freshly loaded page (from the call), ${layout}`, rows);
    }
  } finally {
    await page.close().catch(() => undefined);
    await site.close();
  }
}
