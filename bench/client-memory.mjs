// What one idle synced client replica keeps, split by cause: a standalone reproduction for
// BENCHMARKS.md § Issue 12 "Session 6 (climem)". Not part of `npm run bench` (the comparison's idle
// workload gives the figure of record); this one adds what that table cannot show:
//   - heap and RSS per replica with k replicas per document (k = 2, 5, 10: the slope is the cost of
//     one more remote replica, the intercept the cost of a database),
//   - the peak heap while connecting and the memory left after V8's memory-reducing GC,
//   - with --alloc, what the replicas allocate while connecting and syncing (sampling heap
//     profiler keeping collected objects), by function,
//   - with --snapshot FILE, a V8 heap snapshot of the idle process,
//   - what RSS holds beyond the heap (Session 9, cliconn): growth of the anonymous mappings by kind
//     (V8's 256 KiB pages, and of them those beyond V8's spaces: pages a plain GC freed and V8 keeps
//     pooled; glibc's main heap; other), of each V8 space, and with bench/malloc-stats.c preloaded
//     (MSTAT=1), malloc's bytes in use and free-but-held and what malloc_trim(0) would return,
//   - with bench/malloc-live.c preloaded (MLIVE=1), the main heap's live blocks by native site at the
//     baseline, when synced, after two scavenges then, and at the end (bench/malloc-live.py reads them),
//   - `syncedAtMs`/`measuredAtMs` (ms since start): with --trace-gc-nvp, the scavenges up to them
//     and the bytes they promoted (`--alloc-keep major|none` splits the allocation profile the same way).
// BENCH_HEALTH='{"enabled":false}' (JSON) passes health options to every Rhizome database.
// Each Rhizome replica makes its doc's `nodes` and `fields` maps at open, as the comparison's
// Rhizome kit (bench/compare/rhizome-client.ts) and the y-websocket kit here do (a database makes
// them only at the first use of its node API since Session 12, dbfold): the default since Session
// 12 (audit), so that both systems hold the same document; --no-node-maps leaves them out
// (--node-maps, the default, is still accepted).
//
// Run from the repository root after `npm run build` (Rhizome from dist/, as users run it):
//   node --expose-gc bench/client-memory.mjs [--system rhizome|y-websocket|bare] [--replicas 1500]
//        [--per-doc 5] [--wait-ms 6000] [--alloc [--alloc-out FILE]] [--snapshot FILE] [--no-warmup]
// The baseline is taken after a warm-up document (--per-doc replicas opened, synced, closed), so a
// process's fixed costs are not counted per replica (--no-warmup: before any client, as until
// Session 12 (audit); the figure then falls with --replicas, as fixed costs / replicas).
// (--alloc-out writes the raw sampling profile, for a by-stack breakdown.)
// y-websocket and bare need bench/peers installed (`npm run bench` installs it).
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { parseArgs } from 'node:util';

if (process.argv[2] === '--relay-child') {
  const { createRelayServer } = await import('@rhizome/relay');
  const server = await createRelayServer({ port: 0, host: '127.0.0.1', maxConnectionsPerIp: 20_000, maxConnections: 20_000 });
  process.send({ port: server.port });
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

async function main() {
  const { values: o } = parseArgs({
    options: {
      system: { type: 'string', default: 'rhizome' },
      replicas: { type: 'string', default: '1500' },
      'per-doc': { type: 'string', default: '5' },
      'wait-ms': { type: 'string', default: '6000' },
      // --no-warmup: the baseline before any client (the fixed costs of a first connection then
      // count per replica, more with fewer replicas).
      warmup: { type: 'boolean', default: true },
      'no-warmup': { type: 'boolean', default: false },
      alloc: { type: 'boolean', default: false },
      snapshot: { type: 'string' },
      'alloc-out': { type: 'string' },
      // --alloc-keep major: the profile keeps objects a major GC collected but not those a
      // scavenge did (what was promoted and then died, plus what is live); none: only live;
      // promoted: as major, but right before the profile is taken the young generation is
      // flushed by short-lived junk from youngFlush() (left out of the figures), so the young
      // garbage a final mark-compact would count is collected by scavenges instead: run it with
      // --initial-old-space-size=4000 (no mark-compact while connecting, check with
      // --trace-gc-nvp), and the profile minus a `none` one is what was promoted and then died,
      // by allocation site (bench/alloc-sites.mjs). Session 13 (rssconn).
      // scavenge did (what was promoted and then died, plus what is live); none: only live.
      'alloc-keep': { type: 'string', default: 'all' },
      'node-maps': { type: 'boolean', default: true },
      'no-node-maps': { type: 'boolean', default: false },
    },
  });
  const gc = globalThis.gc;
  if (!gc) throw new Error('run with node --expose-gc');
  if (o['no-warmup']) o.warmup = false;
  if (o['no-node-maps']) o['node-maps'] = false;
  const n = Number(o.replicas);
  const per = Number(o['per-doc']);
  const system = o.system;
  // The server child gets this process's Node flags without the diagnostic ones: with them, its
  // --trace-gc-nvp lines went into the same output as the client's, and sums of the client's
  // promoted bytes counted the server's GCs too (BENCHMARKS.md § Issue 12, Session 13 (rssconn)).
  const childArgv = process.execArgv.filter((a) => !/^--(trace-gc|cpu-prof|heap-prof|prof)/.test(a));
  const server =
    system === 'rhizome'
      ? // The relay process as `rhizome relay` starts it: with the relay's Node flags.
        fork(new URL(import.meta.url), ['--relay-child'], { stdio: 'inherit', execArgv: [...childArgv, ...(await import('@rhizome/relay/node-flags')).missingRelayNodeFlags()] })
      : fork(new URL('./peers/server.mjs', import.meta.url), [system, '{}'], { stdio: 'inherit', execArgv: childArgv });
  try {
    const port = await new Promise((resolve) => server.on('message', (m) => m.port && resolve(m.port)));
    const url = `ws://127.0.0.1:${port}`;
    let open;
    if (system === 'rhizome') {
      const { openDatabase } = await import('@rhizome/sync');
      open = async (room, peers) => {
        const db = await openDatabase({ id: room, transport: { mode: 'relay', relayUrl: url }, ...(process.env.BENCH_HEALTH ? { health: JSON.parse(process.env.BENCH_HEALTH) } : {}) });
        if (o['node-maps']) {
          db.doc.getMap('fields');
          db.doc.getMap('nodes');
        }
        return { ready: () => db.whenSynced({ timeoutMs: 120_000, minPeers: peers }), close: () => db.close(), awareness: db.awareness };
      };
    } else {
      const { kits } = await import('./peers/clients.mjs');
      // Only ready/close kept, as for Rhizome above: the kit's other closures (put, putMany, size,
      // onRemote, stateBytes, ~300 B a replica) are the comparison's, not the system's.
      open = async (room) => {
        const { ready, close, handle } = await kits[system].open({ url, room });
        return { ready, close, awareness: handle.awareness ?? null };
      };
    }
    // Each replica renews its (empty) awareness state once, as y-protocols does by itself 15 s later
    // (a state at clock 0 from an unknown client is ignored by its receivers), then all are awaited
    // until synced and holding the awareness states of their document (replicas(i)): the steady
    // state of an idle replica, for every system alike (the comparison's idle workload does the same).
    const settle = async (list, replicas) => {
      for (const c of list) c.awareness?.setLocalState(c.awareness.getLocalState());
      await Promise.all(list.map((c) => c.ready(120_000)));
      const t = performance.now();
      while (!list.every((c, i) => c.awareness === null || c.awareness.getStates().size >= replicas(i))) {
        if (performance.now() - t > 120_000) throw new Error('awareness states not exchanged in 120 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      return Math.round(performance.now() - t) / 1000;
    };
    if (o.warmup) {
      // One document of --per-doc replicas opened, synced and closed before the baseline: what the
      // first connection of a process loads (lazily imported modules, compiled code) is then in the
      // baseline for every system, as in the comparison's idle workload (Session 12 (audit)).
      const sockets = () => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:'); } catch { return false; } }).length;
      const s0 = sockets();
      const room = `warmup-${randomUUID()}`;
      const warm = await Promise.all(Array.from({ length: per }, () => open(room, per - 1)));
      await settle(warm, () => per);
      await Promise.all(warm.map((c) => c.close()));
      for (let i = 0; i < 500 && sockets() > s0; i++) await new Promise((r) => setTimeout(r, 10));
    }
    for (let i = 0; i < 3; i++) gc();
    const before = process.memoryUsage();
    const mallocBefore = await mallocStats(false);
    await liveDump('base');
    const mappingsBefore = anonymousRss();
    const spacesBefore = v8Physical();
    const spaceBefore = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.physical_space_size]));
    let profiler = null;
    if (o.alloc) {
      const { Session } = await import('node:inspector/promises');
      profiler = new Session();
      profiler.connect();
      await profiler.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: o['alloc-keep'] !== 'none', includeObjectsCollectedByMinorGC: o['alloc-keep'] === 'all' });
    }
    let peakHeap = 0;
    const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 5);
    const report = { system, replicas: n, perDoc: per };
    const rooms = Array.from({ length: Math.ceil(n / per) }, () => `idle-${randomUUID()}`);
    const clients = [];
    // When the first replica was opened (ms since the process started): connect + sync took
    // syncedAtMs − openedAtMs, and --trace-gc-nvp's GCs between the two are the connecting ones.
    report.openedAtMs = Math.round(performance.now());
    const io0 = ioCalls();
    // 50 at a time, as the comparison's idle workload opens them.
    for (let i = 0; i < n; i += 50) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 50); j++) {
        const doc = Math.floor(j / per);
        batch.push(open(rooms[doc], Math.min(per, n - doc * per) - 1));
      }
      clients.push(...(await Promise.all(batch)));
    }
    report.awarenessSeconds = await settle(clients, (i) => Math.min(per, n - Math.floor(i / per) * per));
    clearInterval(sampler);
    // Milliseconds since the process started when every replica was synced: with --trace-gc-nvp,
    // the GCs up to here are the connecting ones (their 'promoted' bytes: BENCHMARKS § Session 9 (cliconn)).
    Object.assign(report, { syncedAtMs: Math.round(performance.now()) });
    // Read and write system calls of the process while connecting, per replica (Linux /proc/self/io).
    const io1 = ioCalls();
    await liveDump('synced');
    if (process.env.MLIVE) {
      // What a scavenge leaves: the promoted garbage's native blocks (and the live ones).
      gc({ type: 'minor' });
      gc({ type: 'minor' });
      await new Promise((r) => setTimeout(r, 200));
      await liveDump('scavenged');
    }
    if (io0 && io1) report.ioCallsPerReplica = { reads: round((io1.syscr - io0.syscr) / n), writes: round((io1.syscw - io0.syscw) / n) };
    if (profiler) {
      if (o['alloc-keep'] === 'none') for (let i = 0; i < 3; i++) gc();
      if (o['alloc-keep'] === 'promoted') youngFlush();
      const { profile } = await profiler.post('HeapProfiler.stopSampling');
      if (o['alloc-out']) (await import('node:fs')).writeFileSync(o['alloc-out'], JSON.stringify(profile));
      const byFunction = new Map();
      let total = 0;
      const walk = (node) => {
        const f = node.callFrame;
        if (f.functionName === 'youngFlush') return; // the flush's own junk
        const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-3).join('/')}:${f.lineNumber + 1}`;
        total += node.selfSize;
        byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
        for (const child of node.children) walk(child);
      };
      walk(profile.head);
      report.allocatedKiBPerReplica = round(total / 1024 / n);
      report.topAllocators = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, v]) => `${round(v / 1024 / n)} KiB ${k}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Number(o['wait-ms'])));
    report.measuredAtMs = Math.round(performance.now());
    for (let i = 0; i < 3; i++) gc();
    const after = process.memoryUsage();
    const perReplica = (a, b) => round((b - a) / 1024 / n);
    report.heapKiBPerReplica = perReplica(before.heapUsed, after.heapUsed);
    report.rssKiBPerReplica = perReplica(before.rss, after.rss);
    report.peakHeapMiB = round(peakHeap / 2 ** 20);
    report.spacesMiB = Object.fromEntries(
      getHeapSpaceStatistics()
        .filter((s) => s.physical_space_size > 0)
        .map((s) => [s.space_name, { physical: round(s.physical_space_size / 2 ** 20), used: round(s.space_used_size / 2 ** 20) }]),
    );
    report.anonymousMappingsMiB = anonymousRss();
    // What the 256 KiB mappings hold beyond V8's spaces: pages a plain GC freed but keeps pooled.
    if (report.anonymousMappingsMiB) {
      const m = report.anonymousMappingsMiB;
      m['256 KiB beyond V8 spaces'] = round(m['256 KiB (V8 pages)'] - v8Physical());
      // Growth since before the first open, KiB per replica, by kind.
      const growth = {};
      for (const k of Object.keys(m)) if (k in mappingsBefore) growth[k] = round(((m[k] - mappingsBefore[k]) * 1024) / n);
      growth['V8 spaces physical'] = round(((v8Physical() - spacesBefore) * 1024) / n);
      for (const s of getHeapSpaceStatistics()) if (s.physical_space_size > 0) growth[`  ${s.space_name}`] = round((s.physical_space_size - (spaceBefore[s.space_name] ?? 0)) / 1024 / n);
      report.mappingsGrowthKiBPerReplica = growth;
    }
    await liveDump('end');
    if (mallocBefore) {
      const m = await mallocStats(true);
      const kib = (a, b) => round((b - a) / 1024 / n);
      report.mallocKiBPerReplica = {
        inUse: kib(mallocBefore.uordblks + mallocBefore.hblkhd, m[0].uordblks + m[0].hblkhd),
        freeHeld: kib(mallocBefore.fordblks, m[0].fordblks),
        system: kib(mallocBefore.arena + mallocBefore.hblkhd, m[0].arena + m[0].hblkhd),
        rssDropByTrim: round((after.rss - process.memoryUsage().rss) / 1024 / n),
      };
    }
    report.externalKiBPerReplica = perReplica(before.external, after.external);
    report.arrayBuffersKiBPerReplica = perReplica(before.arrayBuffers, after.arrayBuffers);
    if (o.snapshot) report.snapshot = writeHeapSnapshot(o.snapshot);
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    const reduced = process.memoryUsage();
    report.rssAfterMemoryReducingGcKiBPerReplica = perReplica(before.rss, reduced.rss);
    console.log(JSON.stringify(report, null, 2));
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    server.kill();
  }
}

/**
 * Allocates ~4× the young generation's size in short-lived arrays: every scavenge it causes
 * collects the young garbage of what ran before (and promotes what is alive), so nothing young is
 * left for the mark-compact that ends a sampling profile (--alloc-keep promoted).
 */
function youngFlush() {
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 32 * 2 ** 20;
  let keep = null;
  for (let i = 0, n = Math.ceil((4 * young) / 1056); i < n; i++) keep = new Array(128).fill(i);
  return keep;
}

function ioCalls() {
  try {
    const io = Object.fromEntries(readFileSync('/proc/self/io', 'utf8').trim().split('\n').map((l) => l.split(': ')));
    return { syscr: Number(io.syscr), syscw: Number(io.syscw) };
  } catch {
    return null;
  }
}

function round(x) {
  return Math.round(x * 100) / 100;
}

/**
 * glibc's mallinfo2 (all arenas) through an LD_PRELOAD helper that is not part of the repository
 * (an experiment of BENCHMARKS § Session 9 (cliconn)); null without it.
 */
async function mallocStats(trim) {
  if (!process.env.MSTAT) return null;
  const { writeFileSync, existsSync, rmSync } = await import('node:fs');
  const out = `/tmp/cliconn/mstat-${process.pid}.out`;
  rmSync(out, { force: true });
  writeFileSync(`/tmp/cliconn/${trim ? 'mtrim' : 'mstat'}-${process.pid}`, '');
  while (!existsSync(out) || readFileSync(out, 'utf8').split('\n').filter(Boolean).length < (trim ? 2 : 1)) await new Promise((r) => setTimeout(r, 20));
  const rows = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return trim ? rows : rows[0];
}

/**
 * With bench/malloc-live.c preloaded (MLIVE=1): its live blocks of the main heap, by site, written
 * to /tmp/rssn/live-<pid>-<tag>.txt (bench/malloc-live.py reads them). Session 15 (rssnative).
 */
async function liveDump(tag) {
  if (!process.env.MLIVE) return;
  const { writeFileSync, existsSync } = await import('node:fs');
  const trigger = `/tmp/rssn/dump-${process.pid}`;
  writeFileSync(trigger, tag);
  while (existsSync(trigger)) await new Promise((r) => setTimeout(r, 20));
}

function v8Physical() {
  return getHeapSpaceStatistics().reduce((sum, s) => sum + s.physical_space_size, 0) / 2 ** 20;
}

/** RSS of anonymous mappings by mapping size (V8 pages are 256 KiB mappings). */
function anonymousRss() {
  try {
    const out = {};
    let size = 0;
    let name = '';
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) {
        size = (parseInt(head[2], 16) - parseInt(head[1], 16)) / 1024;
        name = head[3] || 'anonymous';
        if (name === '[heap]') name = 'brk';
        continue;
      }
      const lazy = /^LazyFree:\s+(\d+) kB/.exec(line);
      if (lazy && name === 'anonymous' && size === 256) out['256 KiB lazily freed'] = round((out['256 KiB lazily freed'] ?? 0) + Number(lazy[1]) / 1024);
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss && (name === 'anonymous' || name === 'brk')) {
        const key = name === 'brk' ? 'malloc heap (brk)' : size === 256 ? '256 KiB (V8 pages)' : 'other';
        out[key] = round((out[key] ?? 0) + Number(rss[1]) / 1024);
      }
    }
    out['256 KiB beyond V8 spaces'] = round((out['256 KiB (V8 pages)'] ?? 0) - v8Physical());
    return out;
  } catch {
    return null; // not Linux
  }
}
