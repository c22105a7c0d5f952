// A/B of the fast paths' entry checks (yjs-guard.ts: one boolean field read each): received small
// updates through codec.applyUpdate (the stream's apply, one update per put) and NodeModel.put
// (setEntry), this tree's sync sources against another copy of them, interleaved rounds (order
// alternated), main-thread CPU per operation. BENCHMARKS.md § Issue 12, Session 15 (yjsguard).
//
//   mkdir -p .ab && git archive <base commit> packages/sync/src | tar -x -C .ab
//   node_modules/node/bin/node --conditions=rhizome-source --import tsx bench/fast-path-ab.ts \
//     [--base .ab/packages/sync/src] [--ops 50000] [--rounds 7] [--only '<regexp over apply A|apply B|put A|put B>']
// (delete .ab afterwards). The base must not be under node_modules: tsx would load it as CommonJS
// with yjs's CommonJS build, a second Yjs (Yjs warns "already imported") that skews A. With --only
// one series per process, `valgrind --tool=callgrind` gives instruction counts that load does not move.
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as Y from 'yjs';
import * as codecB from '../packages/sync/src/codec.js';
import { NodeModel as NodeModelB } from '../packages/sync/src/nodes.js';
import { flag } from './args.js';

const BASE = resolve(flag('--base', '.ab/packages/sync/src'));
const ONLY = new RegExp(flag('--only', '.'));
const N = Number(flag('--ops', '50000'));
const ROUNDS = Number(flag('--rounds', '7'));
const codecA = (await import(pathToFileURL(join(BASE, 'codec.ts')).href)) as typeof codecB;
const { NodeModel: NodeModelA } = (await import(pathToFileURL(join(BASE, 'nodes.ts')).href)) as { NodeModel: typeof NodeModelB };

const src = new Y.Doc();
const updates: Uint8Array[] = [];
src.on('update', (u: Uint8Array) => updates.push(u));
for (let i = 0; i < N; i++) {
  src.transact(() => {
    src.getMap('nodes').set(`n${i}`, true);
    src.getMap('fields').set(`n${i}\u0000title`, `title ${i}`);
    src.getMap('fields').set(`n${i}\u0000n`, i);
  });
}
const cpuPerOp = (fn: () => void): number => {
  const c0 = process.threadCpuUsage();
  fn();
  const c = process.threadCpuUsage(c0);
  return (c.user + c.system) / N;
};
const runs: Record<string, number[]> = { 'apply A': [], 'apply B': [], 'put A': [], 'put B': [] };
const apply = (name: string, codec: typeof codecB): void => {
  if (!ONLY.test(name)) return;
  const doc = new Y.Doc();
  runs[name]!.push(cpuPerOp(() => {
    for (const u of updates) codec.applyUpdate(doc, u, 'peer');
  }));
};
const put = (name: string, Model: typeof NodeModelB): void => {
  if (!ONLY.test(name)) return;
  const model = new Model(new Y.Doc());
  runs[name]!.push(cpuPerOp(() => {
    for (let i = 0; i < N; i++) model.put(`n${i % 5000}`, { title: `t${i}`, n: i }, null);
  }));
};
for (let round = 0; round < ROUNDS; round++) {
  if (round % 2 === 0) {
    apply('apply A', codecA);
    apply('apply B', codecB);
    put('put A', NodeModelA);
    put('put B', NodeModelB);
  } else {
    apply('apply B', codecB);
    apply('apply A', codecA);
    put('put B', NodeModelB);
    put('put A', NodeModelA);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
process.stdout.write(`${N} ops per run, ${ROUNDS} rounds; A = ${BASE}, B = this tree\n`);
for (const [name, v] of Object.entries(runs)) if (v.length > 0) process.stdout.write(`${name}: median ${median(v).toFixed(3)} µs/op (${v.map((x) => x.toFixed(2)).join(' ')})\n`);
