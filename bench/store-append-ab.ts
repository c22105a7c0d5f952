// A/B of two builds of @rhizome/store-sqlite in ONE process: main-thread CPU per one-update
// `SqliteStore.append` (one per macrotask, a 110-byte update, a new file per run; shared and
// `exclusive: true`), the two builds interleaved round by round, so that machine load hits both
// alike (robust under load, unlike two processes). A/B of BENCHMARKS.md § Issue 12, Session 11 (puts2).
//
// node_modules/node/bin/node --conditions=rhizome-source --import tsx bench/store-append-ab.ts \
//   <A's packages/store-sqlite/src/index.ts> <B's ...> [appends per run = 5000] [rounds = 15]
// e.g. A from a worktree of main without the change: /work/wt/x-A/packages/store-sqlite/src/index.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
interface StoreModule {
  openSqliteStore(path: string, options: { exclusive: boolean }): { append(docId: string, updates: Uint8Array[]): number; close(): void };
}
if (process.argv.length < 4) throw new Error('usage: store-append-ab.ts <A index.ts> <B index.ts> [appends] [rounds]');
const A = (await import(process.argv[2]!)) as StoreModule;
const B = (await import(process.argv[3]!)) as StoreModule;
const N = Number(process.argv[4] ?? 5000);
const ROUNDS = Number(process.argv[5] ?? 15);
const dir = mkdtempSync(join(tmpdir(), 'ab-store-'));
let n = 0;
const blob = new Uint8Array(110).fill(7);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const res: Record<string, number[]> = { A: [], B: [], Ax: [], Bx: [] };
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? ['A', 'B', 'Ax', 'Bx'] : ['Bx', 'Ax', 'B', 'A'];
  for (const side of order) {
    const mod = side.startsWith('A') ? A : B;
    const store = mod.openSqliteStore(join(dir, `f${n++}.db`), { exclusive: side.endsWith('x') });
    store.append('d', [blob]);
    const c0 = process.threadCpuUsage();
    for (let i = 0; i < N; i++) {
      store.append('d', [blob]);
      await tick();
    }
    const c = process.threadCpuUsage(c0);
    store.close();
    res[side]!.push((c.user + c.system) / N);
  }
}
rmSync(dir, { recursive: true, force: true });
const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const k of Object.keys(res)) process.stdout.write(`${k} median µs CPU/append (incl. setImmediate) ${med(res[k]!).toFixed(2)} all ${res[k]!.map((x) => x.toFixed(1)).join(' ')}\n`);
