// Does the order of bench/sync.ts's local-write rows decide their ratio? The batch rows of
// bench/sync.ts (db.put tight loop `tight`, db.transact ×1,000 `transact`, the floor "as Rhizome
// encodes" `floor`, the floor with Yjs's encoding `floorYjs`), each measured exactly as sync.ts
// measures it, in the order given, in one process: per run the wall rate, the main thread's CPU per
// put (process.threadCpuUsage: what load on a shared machine inflates least), its system share, the
// page faults and the GC count and time (perf_hooks 'gc' entries) of the timed window; then per
// workload the median CPU and the median of its per-run ratios to the first workload's.
// BENCHMARKS.md § Issue 12, Session 14 (puts).
//
// node_modules/node/bin/node --conditions=rhizome-source --import tsx bench/puts-order.ts \
//   [--order tight,transact,floor] [--runs 3] [--puts 100000] [--interleave] [--warm K] [--measure M]
// --interleave: rounds of one run of each workload, rotated (as bench/sync.ts runs them now);
// without it each workload's runs follow one another (as it ran them before session 14).
// --warm K: K untimed rounds of every workload first; --measure M: the reported runs make M puts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { openDatabase } from '@rhizome/sync';
import { flag } from './args.js';
import { floorWriter, node } from './floor-writer.js';

let N = Number(flag('--puts', '100000'));
/** Unreported runs of every workload of the order first, at --puts (a warm-up). */
const WARM = Number(flag('--warm', '0'));
/** Puts of the reported runs (default --puts): `--measure 0` against `--measure N` under callgrind gives the instructions of N puts. */
const MEASURE = Number(flag('--measure', String(N)));
const RUNS = Number(flag('--runs', '3'));
const ORDER = flag('--order', 'tight,transact,floor').split(',');
/** `--interleave`: rounds of one run of each workload (rotated), instead of each workload's runs in a row. */
const INTERLEAVE = process.argv.includes('--interleave');
const dir = mkdtempSync(join(tmpdir(), 'rhizome-puts-order-'));
let file = 0;

let gcCount = 0;
let gcMs = 0;
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount++;
    gcMs += e.duration;
  }
});
obs.observe({ entryTypes: ['gc'] });

interface Window { ms: number; cpuUs: number; sysUs: number; gcs: number; gcMs: number; faults: number }
let w0: { t: number; cpu: NodeJS.CpuUsage; gcs: number; gcMs: number; faults: number } | null = null;
const begin = (): void => {
  w0 = { t: performance.now(), cpu: process.threadCpuUsage(), gcs: gcCount, gcMs, faults: process.resourceUsage().minorPageFault };
};
const end = async (): Promise<Window> => {
  const ms = performance.now() - w0!.t;
  const cpu = process.threadCpuUsage(w0!.cpu);
  // gc entries are delivered asynchronously: let them arrive
  await new Promise<void>((r) => setImmediate(r));
  const faults = process.resourceUsage().minorPageFault - w0!.faults;
  return { ms, cpuUs: cpu.user + cpu.system, sysUs: cpu.system, faults, gcs: gcCount - w0!.gcs, gcMs: gcMs - w0!.gcMs };
};

/** The floor writer (bench/floor-writer.ts) putting N nodes, 1,000 per transaction, updates encoded by `mode`. */
async function floorRun(mode: 'js' | 'yjs'): Promise<Window> {
  const f = floorWriter(join(dir, `w${file++}.db`), mode);
  begin();
  for (let i = 0; i < N; i += 1000) f.put(i, Math.min(1000, N - i));
  await Promise.resolve();
  const w = await end();
  f.close();
  return w;
}

const workloads: Record<string, () => Promise<Window>> = {
  async tight() {
    const db = await openDatabase({ id: 'bench', path: join(dir, `w${file++}.db`) });
    begin();
    for (let i = 0; i < N; i++) db.put(`n${i}`, node(i));
    await db.flush();
    const w = await end();
    await db.close();
    return w;
  },
  async transact() {
    const db = await openDatabase({ id: 'bench', path: join(dir, `w${file++}.db`) });
    begin();
    for (let i = 0; i < N; i += 1000) {
      db.transact(() => {
        for (let j = i; j < i + 1000 && j < N; j++) db.put(`n${j}`, node(j));
      });
    }
    await db.flush();
    const w = await end();
    await db.close();
    return w;
  },
  floor: () => floorRun('js'),
  floorYjs: () => floorRun('yjs'),
};

try {
  for (let r = 0; r < WARM; r++) for (const name of ORDER) await workloads[name]!();
  N = MEASURE;
  const lines = new Map<string, string[]>(ORDER.map((name) => [name, []]));
  const cpus = new Map<string, number[]>(ORDER.map((name) => [name, []]));
  const report = (name: string, w: Window): void => {
    cpus.get(name)!.push(w.cpuUs / N);
    lines.get(name)!.push(N === 0 ? `${w.ms.toFixed(1)} ms` : `${Math.round((N / w.ms) * 1000).toLocaleString('en-US')}/s cpu ${(w.cpuUs / N).toFixed(2)} µs (sys ${(w.sysUs / N).toFixed(2)}) faults ${w.faults} gc ${w.gcs} ${w.gcMs.toFixed(0)} ms, heap ${Math.round(process.memoryUsage().heapTotal / 1048576)} MiB`);
  };
  if (INTERLEAVE) {
    // every round runs each workload once, the order rotated by one per round
    for (let r = 0; r < RUNS; r++) {
      for (let k = 0; k < ORDER.length; k++) {
        const name = ORDER[(k + r) % ORDER.length]!;
        report(name, await workloads[name]!());
      }
    }
  } else {
    for (const name of ORDER) {
      const run = workloads[name];
      if (run === undefined) throw new Error(`unknown workload ${name}`);
      for (let r = 0; r < RUNS; r++) report(name, await run());
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const first = cpus.get(ORDER[0]!)!;
  for (const name of ORDER) {
    const c = cpus.get(name)!;
    const paired = median(c.map((x, i) => x / first[i]!));
    process.stdout.write(`${name}: main-thread CPU µs/put median ${median(c).toFixed(2)}, ÷ ${ORDER[0]} paired median ${paired.toFixed(3)}\n  ${lines.get(name)!.join(' | ')}\n`);
  }
} finally {
  obs.disconnect();
  rmSync(dir, { recursive: true, force: true });
}
