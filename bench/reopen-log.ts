// What a reopen costs with a long log: a database of 40,000 3-field nodes whose last N puts are N
// log rows (one put per macrotask, automatic compaction off while it is written; the rest is in
// the snapshot), then `openDatabase` on it again (load: the snapshot and every log row applied in
// one Yjs transaction), each reopen in a fresh child process (a warm process's heap and JIT skew
// it). The rows/snapshot trade-off behind the raised compaction threshold (issue 12, session 10:
// 40,000 updates, was 10,000). BENCHMARKS.md § Issue 12, Session 10 (puts).
//
// node_modules/node/bin/node --conditions=rhizome-source --import tsx bench/reopen-log.ts \
//   [--rows 0,10000,40000] [--rounds 5]
// Sizes rotate each round so that every one sees the same load; prints the median wall time of
// the open and the child's main-thread CPU for it (process.threadCpuUsage).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '@rhizome/sync';
import { flag } from './args.js';
import { node } from './floor-writer.js';

const NODES = 40_000;
const OFF = { compactAfterUpdates: Infinity, compactAfterBytes: Infinity, compactIdleMs: Infinity };
const child = flag('--child', '');

if (child !== '') {
  // Modules (better-sqlite3, the store, transpiled sources) loaded first, outside the timing.
  const warm = await openDatabase({ id: 'warm', path: `${child}.warm`, persistence: OFF });
  warm.put('n', node(0));
  await warm.close();
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${child}.warm${suffix}`, { force: true });
  const cpu0 = process.threadCpuUsage();
  const t0 = performance.now();
  const db = await openDatabase({ id: 'reopen', path: child, persistence: OFF });
  const ms = performance.now() - t0;
  const cpu = process.threadCpuUsage(cpu0);
  if (db.list().length !== NODES) throw new Error(`reopen: ${db.list().length} nodes`);
  await db.close();
  process.stdout.write(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000 }));
} else {
  const ROWS = flag('--rows', '0,10000,40000').split(',').map(Number);
  const ROUNDS = Number(flag('--rounds', '5'));
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-reopen-'));
  const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  /** A file with NODES nodes: the first NODES - rows compacted into a snapshot, the last `rows` one log row each. */
  const make = async (rows: number): Promise<string> => {
    const path = join(dir, `r${rows}.db`);
    const db = await openDatabase({ id: 'reopen', path, persistence: OFF });
    for (let i = 0; i < NODES; i++) {
      if (i === NODES - rows) db.compact();
      db.put(`n${i}`, node(i));
      if (i >= NODES - rows) await nextMacrotask();
    }
    if (rows === 0) db.compact();
    await db.close();
    return path;
  };
  try {
    const files = new Map<number, string>();
    for (const rows of ROWS) files.set(rows, await make(rows));
    const results = new Map<number, Array<{ ms: number; cpuMs: number }>>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const rows of [...ROWS.slice(round % ROWS.length), ...ROWS.slice(0, round % ROWS.length)]) {
        const run = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', files.get(rows)!], { encoding: 'utf8' });
        if (run.status !== 0) throw new Error(run.stderr);
        const list = results.get(rows) ?? [];
        list.push(JSON.parse(run.stdout) as { ms: number; cpuMs: number });
        results.set(rows, list);
      }
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    process.stdout.write(`Reopen of a database of ${NODES} 3-field nodes in a fresh process, ${ROUNDS} rotated rounds (medians, ms)\n\n`);
    process.stdout.write('| log rows (the rest in the snapshot) | openDatabase wall ms | main-thread CPU ms | every round (wall) |\n| --- | --- | --- | --- |\n');
    for (const rows of ROWS) {
      const r = results.get(rows)!;
      process.stdout.write(`| ${rows} | ${median(r.map((x) => x.ms)).toFixed(1)} | ${median(r.map((x) => x.cpuMs)).toFixed(1)} | ${r.map((x) => x.ms.toFixed(0)).join(' / ')} |\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
