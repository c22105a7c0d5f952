// CPU of an idle client process (health on: every peer pinged every 5 s and answering): N replicas,
// 5 per document, through a relay child; after they are synced and idle for 6 s, process CPU over
// 30 s. Run from a worktree's root (Rhizome from dist/): node bench/results/...-idlecpu.mjs [N]
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
const n = Number(process.argv[2] ?? 1000);
const per = 5;
const relay = fork(new URL('../client-memory.mjs', import.meta.url) /* run as bench/results/pp-idlecpu.mjs: copied there */, ['--relay-child'], { stdio: 'inherit' });
const port = await new Promise((resolve) => relay.on('message', (m) => m.port && resolve(m.port)));
const { openDatabase } = await import('@rhizome/sync');
const dbs = [];
for (let d = 0; d < n / per; d++) {
  const room = `idlecpu-${randomUUID()}`;
  const group = await Promise.all(Array.from({ length: per }, () => openDatabase({ id: room, transport: { mode: 'relay', relayUrl: `ws://127.0.0.1:${port}` } })));
  dbs.push(...group);
}
await Promise.all(dbs.map((db) => db.whenSynced({ timeoutMs: 120_000, minPeers: per - 1 })));
await new Promise((r) => setTimeout(r, 6000));
const c0 = process.cpuUsage();
const t0 = performance.now();
await new Promise((r) => setTimeout(r, 30_000));
const c = process.cpuUsage(c0);
const s = (performance.now() - t0) / 1000;
const pings = dbs.reduce((a, db) => a + db.stats().peers.reduce((b, p) => b + p.pingsSent, 0), 0);
console.log(JSON.stringify({ replicas: n, seconds: s.toFixed(1), cpuMsPerSecond: ((c.user + c.system) / 1000 / s).toFixed(1), cpuUsPerReplicaSecond: ((c.user + c.system) / s / n).toFixed(2), pingsSentSoFar: pings }));
await Promise.all(dbs.map((db) => db.close()));
relay.kill();
process.exit(0);
