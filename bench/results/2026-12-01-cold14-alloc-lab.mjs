// TEMPORARY lab (cold14), kept as a raw record: run from bench/ of a checkout (imports ../packages/sync/dist).
// TEMPORARY lab (cold14): what C's apply allocates (dead or alive), by allocating function/line.
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import * as Y from 'yjs';
import { openDatabase } from '@rhizome/sync';
import { applyRemoteUpdates } from '../packages/sync/dist/apply.js';
import { bulkApply } from './lab-bulk.mjs';

const FILE = process.env.LAB_STATE ?? '/tmp/cold-state-100k.bin';
const MODE = process.env.LAB_MODE ?? 'rhizome';
const state = new Uint8Array(readFileSync(FILE));
const origin = { remote: true };
const session = new Session();
session.connect();
async function one(label, sample) {
  const db = await openDatabase({ id: 'lab' });
  const copy = state.slice();
  if (sample) await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  if (MODE === 'yjs') Y.applyUpdate(db.doc, copy, origin);
  else if (MODE === 'bulk') bulkApply(db.doc, copy, origin);
  else applyRemoteUpdates(db.doc, [copy], origin);
  let prof = null;
  if (sample) prof = (await session.post('HeapProfiler.stopSampling')).profile;
  await db.close();
  return prof;
}
if (!process.env.LAB_NOW) await one('W', false);
const prof = await one('C', true);
const by = new Map();
let total = 0;
const walk = (n, stack) => {
  const f = n.callFrame;
  const here = [...stack, `${f.functionName || '(anon)'} ${f.url.split('/').slice(-1)[0]}:${f.lineNumber + 1}`];
  if (n.selfSize > 0) {
    const key = here.slice(-2).join(' <- ');
    by.set(key, (by.get(key) ?? 0) + n.selfSize);
    total += n.selfSize;
  }
  for (const c of n.children) walk(c, here.slice(-3));
};
walk(prof.head, []);
console.log(`${MODE}: total sampled ${(total / 1e6).toFixed(1)} MB`);
for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 30))) console.log(`${(v / 1e6).toFixed(1).padStart(7)} MB  ${k}`);
