// statsmem12: heap snapshots around db.stats() on idle replicas (BENCHMARKS.md § Issue 12, Session 12 (statsmem)).
// N=100 [POLL=1] node_modules/node/bin/node --expose-gc --conditions=rhizome-source --import tsx <this file>
// writes /tmp/statsmem/a<POLL>.heapsnapshot (idle, after the wait) and /tmp/statsmem/b.heapsnapshot (after one stats() per replica);
// diff with 2026-12-01-statsmem12-diff.py. (mkdir /tmp/statsmem first.)
import { writeHeapSnapshot } from 'node:v8';
import { generateDatabaseId } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { createRelayServer } from '@rhizome/relay';

const N = Number(process.env['N'] ?? 50);
const K = 5;
const gc = (globalThis as unknown as { gc: () => void }).gc;
function snap(f: string): void {
  for (let i = 0; i < 3; i++) gc();
  writeHeapSnapshot(f);
}
const server = await createRelayServer({ port: 0, host: '127.0.0.1' });
const dbs: Database[] = [];
for (let d = 0; d < N / K; d++) {
  const id = generateDatabaseId();
  for (let j = 0; j < K; j++) dbs.push(await openDatabase({ id, transport: { mode: 'relay', relayUrl: server.url } }));
}
await Promise.all(dbs.map((db) => db.whenSynced({ minPeers: K - 1, timeoutMs: 30000 })));
const poll = process.env['POLL'] === '1' ? setInterval(() => { for (const db of dbs) db.stats(); }, 100) : null;
await new Promise((r) => setTimeout(r, Number(process.env['WAIT'] ?? 6000)));
if (poll) clearInterval(poll);
await new Promise((r) => setTimeout(r, 200));
snap(`/tmp/statsmem/a${process.env['POLL'] ?? ''}.heapsnapshot`);
const calls = Number(process.env['CALLS'] ?? 1);
for (let c = 0; c < calls; c++) for (const db of dbs) db.stats();
snap('/tmp/statsmem/b.heapsnapshot');
for (const db of dbs) await db.close({ flushTimeoutMs: 0 });
await server.close();
