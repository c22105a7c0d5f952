// TEMPORARY lab (cold): the cold sync's receiving side without the network. One process = one
// measurement, as in the compare driver: warm-up replica W applies the 100k-node state, closes;
// then C applies it; prints C's apply wall/main-thread CPU and GC counts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import * as Y from 'yjs';
import { openDatabase } from '@rhizome/sync';
import { applyRemoteUpdates } from '../packages/sync/dist/apply.js';

const FILE = process.env.LAB_STATE ?? '/tmp/cold-state-100k.bin';
const MODE = process.env.LAB_MODE ?? 'rhizome';
if (!existsSync(FILE)) {
  const a = await openDatabase({ id: 'lab' });
  a.doc.transact(() => {
    for (let i = 0; i < 100_000; i++) a.put('c' + i, { v: i });
  });
  writeFileSync(FILE, Y.encodeStateAsUpdate(a.doc));
  await a.close();
  console.log('wrote', FILE);
  process.exit(0);
}
const state = new Uint8Array(readFileSync(FILE));
const gcs = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) gcs.push([e.startTime, e.duration, e.detail?.kind]); }).observe({ entryTypes: ['gc'] });
const origin = { remote: true };
async function one(label) {
  const db = await openDatabase({ id: 'lab' });
  const copy = state.slice();
  const c0 = process.threadCpuUsage();
  const t0 = performance.now();
  if (MODE === 'yjs') Y.applyUpdate(db.doc, copy, origin);
  else applyRemoteUpdates(db.doc, [copy], origin);
  const t1 = performance.now();
  const c1 = process.threadCpuUsage();
  const size = db.doc.getMap('nodes').size;
  await db.close();
  return { label, wall: t1 - t0, cpu: (c1.user - c0.user + c1.system - c0.system) / 1000, t0, t1, size };
}
const w = process.env.LAB_NOW ? { wall: 0, cpu: 0 } : await one('W');
await new Promise((r) => setTimeout(r, 20));
const c = await one('C');
await new Promise((r) => setImmediate(r));
const inC = gcs.filter((g) => g[0] >= c.t0 && g[0] <= c.t1);
const mc = inC.filter((g) => g[2] === 4 || g[2] === 8);
console.log(JSON.stringify({ mode: MODE, wWall: +w.wall.toFixed(1), wCpu: +w.cpu.toFixed(1), cWall: +c.wall.toFixed(1), cCpu: +c.cpu.toFixed(1), gcN: inC.length, gcMs: +inC.reduce((s, g) => s + g[1], 0).toFixed(1), mcN: mc.length, mcMs: +mc.reduce((s, g) => s + g[1], 0).toFixed(1), size: c.size }));
