// Browser benchmark: Rhizome in Debian's Chromium (IndexedDB store, relay client in the page)
// beside the same workload on Node's SQLite store, in the same run; the store choice (IndexedDB
// beside SQLite in OPFS, bench/browser-stores.ts); and the size of the browser bundle. Chromium
// runs on a disk-backed profile in a temp dir: an off-the-record context keeps storage in memory.
//
//   npm run bench -- --only browser [--quick] [--parts puts,reopen,cold,stores,bundle]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BrowserContext } from 'playwright-core';
import { generateDatabaseId } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';
import { bundleForBrowser } from '../test/browser/bundle.js';
import { HarnessPage, launchChromiumProfile, serveHarnessPage, type StaticServer } from '../test/browser/harness.js';
import { runStoreChoice } from './browser-stores.js';
import { createContext, fmt, fmtStats, machineLine, repeat, summarize, type BenchContext } from './harness.js';

/** `--parts puts,reopen,cold,stores,bundle` runs only those parts (default: all; `cold` builds what `reopen` measures). */
const PARTS = ((): string[] => {
  const i = process.argv.indexOf('--parts');
  return i >= 0 ? (process.argv[i + 1] ?? '').split(',') : ['puts', 'reopen', 'cold', 'stores', 'bundle'];
})();

/** `--cpu-profile FILE` writes a CDP CPU profile of the first page's cold sync (open in Chrome DevTools). */
const CPU_PROFILE = ((): string | undefined => {
  const i = process.argv.indexOf('--cpu-profile');
  return i >= 0 ? process.argv[i + 1] : undefined;
})();

function kib(bytes: number): string {
  return `${fmt(bytes / 1024)} KiB`;
}

function ratio(browser: number, node: number): string {
  return `${(browser / node).toFixed(2)}x`;
}

async function nodeBulk(path: string, id: string, n: number): Promise<void> {
  const db = await openDatabase({ id, path });
  db.doc.transact(() => {
    for (let i = 0; i < n; i++) db.put(`n${i}`, { title: `node ${i}`, n: i, done: i % 2 === 0 });
  });
  await db.close();
}

async function untilSize(db: Database, n: number, timeoutMs = 120_000): Promise<void> {
  const t0 = performance.now();
  while (db.size < n) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`cold sync: ${db.size} of ${n} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** CPU time of this Node process (all threads), ms. */
function nodeCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU time of every Chromium process (browser, renderers, storage, network, GPU), ms, via CDP. */
async function chromiumCpuMeter(context: BrowserContext): Promise<() => Promise<number>> {
  const cdp = await context.browser()!.newBrowserCDPSession();
  return async () => {
    const { processInfo } = (await cdp.send('SystemInfo.getProcessInfo')) as { processInfo: Array<{ cpuTime: number }> };
    return processInfo.reduce((sum, p) => sum + p.cpuTime, 0) * 1000;
  };
}

export async function run(ctx: BenchContext): Promise<void> {
  const PUTS = ctx.quick ? 2_000 : 10_000;
  const NODES = ctx.quick ? 10_000 : 100_000;
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-bench-browser-'));
  let context: BrowserContext | undefined;
  let site: StaticServer | undefined;
  const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  try {
    [context, site] = await Promise.all([launchChromiumProfile(join(dir, 'chromium-profile')), serveHarnessPage()]);
    const profile = context;
    // CPU time beside wall time: under load from other programs, wall time swings with the
    // machine's load, CPU time much less (BENCHMARKS.md § Browser).
    const chromiumCpuMs = await chromiumCpuMeter(profile);
    const page = async (): Promise<HarnessPage> => {
      const p = new HarnessPage(await profile.newPage());
      await p.load(site!.url);
      return p;
    };

    // ---- 1. puts persisted: N single-put transactions, then flush (on disk) -------------------
    let file = 0;
    if (PARTS.includes('puts')) {
      const nodePuts = await repeat(ctx.runs, async () => {
        const db = await openDatabase({ id: 'bench', path: join(dir, `w${file++}.db`) });
        // Like the page (and any app that renders), with an event subscriber: node events are computed.
        const events = db.events.subscribe({ capacity: 1 << 16 });
        const t0 = performance.now();
        for (let i = 0; i < PUTS; i++) db.put(`p${i}`, { title: `node ${i}`, n: i, done: false });
        await db.flush();
        const ms = performance.now() - t0;
        events.unsubscribe();
        await db.close();
        return (PUTS / ms) * 1000;
      });
      const browserPuts = await repeat(ctx.runs, async () => {
        const p = await page();
        await p.open({ id: 'bench', path: `puts-${file++}` });
        const ms = await p.timedPuts(PUTS);
        await p.close();
        await p.page.close();
        return (PUTS / ms) * 1000;
      });
      ctx.table(`Puts persisted: ${fmt(PUTS)} puts (one transaction each, one event subscriber) then flush(), puts/s`, [
        { store: 'Node, SQLite (better-sqlite3, WAL)', 'puts/s': fmtStats(nodePuts), 'vs Node': '1.00x' },
        { store: 'Chromium, IndexedDB (@rhizome/store-browser)', 'puts/s': fmtStats(browserPuts), 'vs Node': ratio(browserPuts.median, nodePuts.median) },
      ]);
    }

    // ---- 2. reopen of a NODES-node database --------------------------------------------------
    const nodeId = generateDatabaseId();
    const nodePath = join(dir, 'big.db');
    await nodeBulk(nodePath, nodeId, NODES);
    if (PARTS.includes('reopen')) {
      const nodeReopenCpu: number[] = [];
      const nodeReopen = await repeat(ctx.runs, async () => {
        const c0 = nodeCpuMs();
        const t0 = performance.now();
        const db = await openDatabase({ id: nodeId, path: nodePath });
        const ms = performance.now() - t0;
        nodeReopenCpu.push(nodeCpuMs() - c0);
        if (db.size !== NODES) throw new Error(`reopened ${db.size} nodes`);
        await db.close();
        return ms;
      });
      const builder = await page();
      await builder.open({ id: nodeId, path: 'big' });
      await builder.bulkLoad(NODES);
      await builder.close();
      await builder.page.close();
      const browserReopenCpu: number[] = [];
      const browserReopen = await repeat(ctx.runs, async () => {
        const p = await page();
        const c0 = await chromiumCpuMs();
        const ms = await p.timedOpen({ id: nodeId, path: 'big' });
        browserReopenCpu.push((await chromiumCpuMs()) - c0);
        const size = await p.size();
        if (size !== NODES) throw new Error(`reopened ${size} nodes in the page`);
        await p.close();
        await p.page.close();
        return ms;
      });
      ctx.table(`Reopen of a ${fmt(NODES)}-node database (3 fields each, written in one transaction), ms`, [
        { store: 'Node, SQLite', 'open, ms': fmtStats(nodeReopen), 'vs Node': '1.00x', 'CPU, ms': fmtStats(summarize(nodeReopenCpu)), 'CPU vs Node': '1.00x' },
        {
          store: 'Chromium, IndexedDB',
          'open, ms': fmtStats(browserReopen),
          'vs Node': ratio(browserReopen.median, nodeReopen.median),
          'CPU, ms': fmtStats(summarize(browserReopenCpu)),
          'CPU vs Node': ratio(summarize(browserReopenCpu).median, summarize(nodeReopenCpu).median),
        },
      ]);
    }

    // ---- 3. cold sync of NODES nodes through the relay ---------------------------------------
    if (PARTS.includes('cold')) {
      const source = await openDatabase({ id: nodeId, path: nodePath, transport: { mode: 'relay', relayUrl: relay.url } });
      try {
        let n = 0;
        // CPU: the whole exchange (sender and relay in this process, receiver here or in Chromium).
        // Two variants, each the same on both sides: no event subscriber (the sync path alone) and
        // one subscriber draining the events (as an app that renders: a node-upsert per node).
        const coldNode = async (events: boolean): Promise<{ ms: number; cpu: number }> => {
          const c0 = nodeCpuMs();
          const t0 = performance.now();
          const db = await openDatabase({ id: nodeId, path: join(dir, `cold-${n++}.db`), transport: { mode: 'relay', relayUrl: relay.url } });
          const subscription = events ? db.events.subscribe({ capacity: 1 << 16 }) : null;
          const draining = subscription
            ? (async () => {
                for await (const e of subscription) void e;
              })()
            : null;
          await untilSize(db, NODES);
          const ms = performance.now() - t0;
          const cpu = nodeCpuMs() - c0;
          subscription?.unsubscribe();
          await draining;
          await db.close();
          return { ms, cpu };
        };
        const coldPage = async (events: boolean): Promise<{ ms: number; receiverCpu: number; senderCpu: number }> => {
          const p = await page();
          const cdp = CPU_PROFILE !== undefined && !events && profiled++ === 0 ? await profile.newCDPSession(p.page) : null;
          if (cdp) {
            await cdp.send('Profiler.enable');
            await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
            await cdp.send('Profiler.start');
          }
          const n0 = nodeCpuMs();
          const c0 = await chromiumCpuMs();
          const ms = await p.timedColdSync({ id: nodeId, path: `cold-${n++}`, relayUrl: relay.url, events }, NODES);
          const c1 = await chromiumCpuMs();
          const n1 = nodeCpuMs();
          if (cdp) {
            const { profile: cpuProfile } = await cdp.send('Profiler.stop');
            writeFileSync(CPU_PROFILE!, JSON.stringify(cpuProfile));
            await cdp.detach();
          }
          await p.close();
          await p.page.close();
          return { ms, receiverCpu: c1 - c0, senderCpu: n1 - n0 };
        };
        let profiled = 0;
        type Runs = { nodeMs: number[]; nodeCpu: number[]; pageMs: number[]; pageCpu: number[]; senderCpu: number[] };
        const runs: Record<'bare' | 'events', Runs> = {
          bare: { nodeMs: [], nodeCpu: [], pageMs: [], pageCpu: [], senderCpu: [] },
          events: { nodeMs: [], nodeCpu: [], pageMs: [], pageCpu: [], senderCpu: [] },
        };
        for (let r = 0; r < ctx.runs; r++) {
          for (const variant of ['bare', 'events'] as const) {
            const v = runs[variant];
            const node = await coldNode(variant === 'events');
            v.nodeMs.push(node.ms);
            v.nodeCpu.push(node.cpu);
            const browser = await coldPage(variant === 'events');
            v.pageMs.push(browser.ms);
            v.pageCpu.push(browser.receiverCpu);
            v.senderCpu.push(browser.senderCpu);
          }
        }
        const rows: Array<Record<string, string>> = [];
        for (const variant of ['bare', 'events'] as const) {
          const v = runs[variant];
          const label = variant === 'bare' ? 'no event subscriber' : 'one event subscriber (a node-upsert per node)';
          const nodeMs = summarize(v.nodeMs);
          const pageMs = summarize(v.pageMs);
          const nodeCpu = summarize(v.nodeCpu);
          const pageCpu = summarize(v.pageCpu);
          const senderCpu = summarize(v.senderCpu);
          // The sender and relay do the same work either way: what the page runs measured of them.
          const nodeReceiverCpu = nodeCpu.median - senderCpu.median;
          rows.push(
            {
              receiver: `Node, SQLite file, ${label}`,
              ms: fmtStats(nodeMs),
              'vs Node': '1.00x',
              'CPU (sender + relay + receiver), ms': fmtStats(nodeCpu),
              'CPU vs Node': '1.00x',
              'receiver CPU, ms': `${fmt(nodeReceiverCpu)} (total − sender and relay of the page runs)`,
              'receiver CPU vs Node': '1.00x',
            },
            {
              receiver: `Chromium page, IndexedDB, ${label}`,
              ms: fmtStats(pageMs),
              'vs Node': ratio(pageMs.median, nodeMs.median),
              'CPU (sender + relay + receiver), ms': fmtStats(summarize(v.pageCpu.map((c, i) => c + v.senderCpu[i]!))),
              'CPU vs Node': ratio(summarize(v.pageCpu.map((c, i) => c + v.senderCpu[i]!)).median, nodeCpu.median),
              'receiver CPU, ms': `${fmtStats(pageCpu)} (every Chromium process)`,
              'receiver CPU vs Node': ratio(pageCpu.median, nodeReceiverCpu),
            },
          );
        }
        ctx.table(`Cold sync of ${fmt(NODES)} nodes from a Node replica through a relay on 127.0.0.1 (open to all nodes present), ms`, rows);
      } finally {
        await source.close();
      }
    }

    // ---- 4. the store choice: IndexedDB beside SQLite in OPFS, in workers ---------------------
    if (PARTS.includes('stores')) await runStoreChoice(ctx, profile);
  } finally {
    await context?.close();
    await site?.close();
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  }

  // ---- 5. bundle size ----------------------------------------------------------------------
  if (!PARTS.includes('bundle')) return;
  const root = join(import.meta.dirname, '..');
  const entry = { contents: "export { openDatabase } from '@rhizome/sync';" };
  const full = await bundleForBrowser(entry, { resolveDir: root });
  const noYjs = await bundleForBrowser(entry, { resolveDir: root, external: ['yjs'] });
  const noYjsLib0 = await bundleForBrowser(entry, { resolveDir: root, external: ['yjs', 'lib0', 'lib0/*', 'y-protocols', 'y-protocols/*'] });
  ctx.table("Browser bundle of `export { openDatabase } from '@rhizome/sync'` (sync + relay client + IndexedDB store; esbuild, minified)", [
    { bundle: 'everything (with Yjs)', minified: kib(full.bytes), gzipped: kib(full.gzipBytes), 'Node built-ins': full.nodeBuiltins.length },
    { bundle: 'without Yjs (target < 120 KiB gzipped)', minified: kib(noYjs.bytes), gzipped: kib(noYjs.gzipBytes), 'Node built-ins': noYjs.nodeBuiltins.length },
    { bundle: 'without Yjs, lib0, y-protocols', minified: kib(noYjsLib0.bytes), gzipped: kib(noYjsLib0.gzipBytes), 'Node built-ins': noYjsLib0.nodeBuiltins.length },
  ]);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  console.log(machineLine());
  await run(createContext(quick, 3));
}
