import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
import * as Y from 'yjs';
import { openDatabase } from '@rhizome/sync';
import { applyRemoteUpdates } from '../packages/sync/dist/apply.js';
const state = new Uint8Array(readFileSync('/tmp/cold-state-100k.bin'));
const MODE = process.env.LAB_MODE ?? 'rhizome';
const mb = (x) => +(x / 2 ** 20).toFixed(1);
const sp = () => { const o = {}; for (const s of getHeapSpaceStatistics()) o[s.space_name] = s.space_used_size; return o; };
const old = (o) => o.old_space + o.large_object_space + o.code_space;
gc(); gc();
const s0 = sp(); const e0 = process.memoryUsage().external;
let db, doc;
if (MODE === 'yjs') { doc = new Y.Doc(); doc.on('update', () => {}); Y.applyUpdate(doc, state.slice(), {}); }
else if (MODE === 'yjsplain') { doc = new Y.Doc(); Y.applyUpdate(doc, state.slice(), {}); }
else { db = await openDatabase({ id: 'lab' }); applyRemoteUpdates(db.doc, [state.slice()], { remote: true }); }
const s1 = sp(); const e1 = process.memoryUsage().external;
gc(); gc();
const s2 = sp();
console.log(MODE, 'old-gen growth during apply', mb(old(s1) - old(s0)), '(large objects', mb(s1.large_object_space - s0.large_object_space), ') new space at end', mb(s1.new_space), 'old after gc', mb(old(s2) - old(s0)), 'promoted garbage', mb(old(s1) - old(s2)), 'external', mb(e1 - e0));
process.exit(0);
