import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '@rhizome/sync';
const dir = mkdtempSync(join(tmpdir(), 'cnt-'));
const tick = () => new Promise<void>((r) => setImmediate(r));
let k = 0;
for (const [label, persistence] of [['new trigger', {}], ['old trigger', { compactAfterUpdates: 10_000, compactIdleMs: Infinity }]] as const) {
  for (const n of [20_000, 100_000]) {
    const db = await openDatabase({ id: 'x', path: join(dir, `f${k++}.db`), exclusive: true, persistence });
    for (let i = 0; i < n; i++) { db.put(`n${i % 20000}`, { title: `node number ${i}`, n: i, done: i % 2 === 0 }); await tick(); }
    const s = db.stats().persistence;
    await db.close();
    console.log(`${label}, ${n} puts: ${s.compactions} compactions during the run, log ${s.logUpdates} updates at the end`);
  }
}
rmSync(dir, { recursive: true });
