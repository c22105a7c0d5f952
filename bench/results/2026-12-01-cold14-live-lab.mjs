// TEMPORARY lab (cold14), kept as a raw record: run from bench/ of a checkout with --expose-gc.
// TEMPORARY lab (cold14): heap the document keeps after a cold apply.
import { readFileSync } from 'node:fs';
import * as Y from 'yjs';
import { openDatabase } from '@rhizome/sync';
import { applyRemoteUpdates } from '../packages/sync/dist/apply.js';
const state = new Uint8Array(readFileSync('/tmp/cold-state-100k.bin'));
const db = await openDatabase({ id: 'lab' });
const copy = state.slice();
gc(); gc();
const h0 = process.memoryUsage().heapUsed;
if (process.env.LAB_MODE === 'yjs') Y.applyUpdate(db.doc, copy, {}); else applyRemoteUpdates(db.doc, [copy], {});
await new Promise((r) => setTimeout(r, 100));
gc(); gc();
const h1 = process.memoryUsage().heapUsed;
console.log(process.env.LAB_MODE ?? 'rhizome', 'live heap MB', ((h1 - h0) / 1e6).toFixed(1), 'per node B', ((h1 - h0) / 1e5).toFixed(0), db.doc.getMap('nodes').size);
await db.close();
