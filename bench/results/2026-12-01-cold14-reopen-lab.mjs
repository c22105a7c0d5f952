// TEMPORARY lab (cold14), kept as a raw record: run from bench/ of a checkout with --expose-gc.
// TEMPORARY lab (cold14): heap and time of reopening a 100,000-node database file.
import { existsSync } from 'node:fs';
import { openDatabase } from '@rhizome/sync';
const FILE = '/tmp/cold14/reopen-100k.db';
if (!existsSync(FILE)) {
  const db = await openDatabase({ id: 'reopen-lab', path: FILE });
  db.doc.transact(() => { for (let i = 0; i < 100_000; i++) db.put('n' + i, { v: i, name: 'node ' + i }); });
  await db.close();
}
gc(); gc();
const h0 = process.memoryUsage().heapUsed;
const c0 = process.threadCpuUsage();
const p0 = process.cpuUsage();
const db = await openDatabase({ id: 'reopen-lab', path: FILE });
const c1 = process.threadCpuUsage(c0);
const p1 = process.cpuUsage(p0);
gc(); gc();
const h1 = process.memoryUsage().heapUsed;
console.log(`reopen: main-thread CPU ${((c1.user + c1.system) / 1000).toFixed(0)} ms, process CPU ${((p1.user + p1.system) / 1000).toFixed(0)} ms, heap +${((h1 - h0) / 1e6).toFixed(1)} MB, nodes ${db.size}`);
await db.close();
