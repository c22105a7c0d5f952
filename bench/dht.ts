// DHT transport benchmark: how long a replica that knows only a bootstrap address takes to meet
// the replicas of its database and to sync with them, in networks of 8 and 32 replicas; and the
// memory each replica (libp2p node + database) costs. The baseline, measured in the same run,
// is the same join over the in-process memory transport: the sync layer's own cost, with no
// discovery and no network.
//
//   npm run bench -- --only dht [--quick]        (quick: 8 replicas, one run)
//
// Everything runs in this process on 127.0.0.1: all libp2p nodes share one event loop, so the
// times include their CPU contention (worse than N machines, but the same on every run).
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { generateDatabaseId, MemoryHub, MemoryTransport, type SyncEvent, type Transport } from '@rhizome/core';
import { openDatabase, type Database } from '@rhizome/sync';
import { DhtTransport, startBootstrapNode } from '@rhizome/transport-dht';
import { fmt, fmtStats, repeat, type BenchContext } from './harness.js';

const NODES_PER_REPLICA = 10;
const WAIT_MS = 180_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function memory(): { rss: number; heap: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

interface Replica {
  db: Database;
  transport: Transport;
}

/** Resolves when `cond` holds, re-checked after every event of the database; bounded. */
async function until(db: Database, what: string, cond: (e: SyncEvent | null) => boolean): Promise<void> {
  if (cond(null)) return;
  const sub = db.events.subscribe({ capacity: 100_000 });
  const timer = setTimeout(() => sub.unsubscribe(), WAIT_MS);
  try {
    for (let e = await sub.next(); e !== null; e = await sub.next()) if (cond(e)) return;
    throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
  }
}

async function openReplicas(count: number, make: () => Transport, id: string): Promise<Replica[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const transport = make();
      const db = await openDatabase({ id, transport });
      for (let k = 0; k < NODES_PER_REPLICA; k++) db.put(`r${i}-${k}`, { i, k, text: `node ${k} of replica ${i}` });
      return { db, transport };
    }),
  );
}

async function closeReplicas(replicas: Replica[]): Promise<void> {
  await Promise.all(
    replicas.map(async (r) => {
      await r.db.close();
      await r.transport.disconnect();
    }),
  );
}

/** A new replica joins: ms to its first connection, its first `synced`, and holding every node. */
async function join(make: () => Transport, id: string, total: number): Promise<{ first: number; synced: number; all: number }> {
  const t0 = performance.now();
  const transport = make();
  const db = await openDatabase({ id, transport });
  let first = 0;
  let synced = 0;
  await until(db, 'every node', (e) => {
    const now = performance.now() - t0;
    if (e?.type === 'peer-connected' && first === 0) first = now;
    if (e?.type === 'synced' && synced === 0) synced = now;
    return db.size >= total && first > 0 && synced > 0;
  });
  const all = performance.now() - t0;
  await db.close();
  await transport.disconnect();
  return { first, synced, all };
}

export async function run(ctx: BenchContext): Promise<void> {
  const sizes = ctx.quick ? [8] : [8, 32];
  const rows: Array<Record<string, string | number>> = [];
  const memRows: Array<Record<string, string | number>> = [];
  for (const n of sizes) {
    // ---- DHT: n - 1 replicas form the network, then joiners come one at a time.
    const id = generateDatabaseId();
    const baseMem = memory();
    const bootstrap = await startBootstrapNode({ listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true });
    const addr = bootstrap.multiaddrs()[0]!;
    const dht = (): Transport => new DhtTransport({ bootstrap: [addr], listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true, mdns: false });
    const formStart = performance.now();
    const network = await openReplicas(n - 1, dht, id);
    const total = (n - 1) * NODES_PER_REPLICA;
    await Promise.all(network.map((r, i) => until(r.db, `replica ${i} to converge`, () => r.db.size >= total)));
    const formMs = performance.now() - formStart;
    const meshMem = memory();
    const firstS: number[] = [];
    const syncedS: number[] = [];
    const allS: number[] = [];
    await repeat(ctx.runs, async () => {
      const r = await join(dht, id, total);
      firstS.push(r.first);
      syncedS.push(r.synced);
      allS.push(r.all);
      return r.all;
    });
    await closeReplicas(network);
    await bootstrap.stop();

    // ---- Baseline: the same join over the memory transport.
    const hub = new MemoryHub(`bench-dht-${n}`);
    const mem = (): Transport => new MemoryTransport({ hub });
    const memBase = memory();
    const memNetwork = await openReplicas(n - 1, mem, id);
    await Promise.all(memNetwork.map((r, i) => until(r.db, `memory replica ${i}`, () => r.db.size >= total)));
    const memMesh = memory();
    const mFirst: number[] = [];
    const mSynced: number[] = [];
    await repeat(ctx.runs, async () => {
      const r = await join(mem, id, total);
      mFirst.push(r.first);
      mSynced.push(r.synced);
      return r.all;
    });
    await closeReplicas(memNetwork);

    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const stats = (xs: number[]): string =>
      fmtStats({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs.length }, 0);
    rows.push({
      replicas: n,
      'network forms and converges (ms)': fmt(formMs, 0),
      'joiner: first connection (ms)': stats(firstS),
      'joiner: first synced (ms)': stats(syncedS),
      'joiner: holds all nodes (ms)': stats(allS),
      'memory transport: first synced (ms)': stats(mSynced),
      'ratio (first synced, dht / memory)': `${fmt(median(syncedS) / Math.max(median(mSynced), 0.001), 0)}×`,
    });
    const perNode = (meshMem.rss - baseMem.rss) / (n - 1) / 2 ** 20;
    const memPerNode = (memMesh.rss - memBase.rss) / (n - 1) / 2 ** 20;
    memRows.push({
      replicas: n,
      'RSS per replica, dht (MiB)': fmt(perNode, 1),
      'heap per replica, dht (MiB)': fmt((meshMem.heap - baseMem.heap) / (n - 1) / 2 ** 20, 1),
      'RSS per replica, memory transport (MiB)': fmt(memPerNode, 1),
      'ratio (RSS)': `${fmt(perNode / Math.max(memPerNode, 0.01), 1)}×`,
    });
  }
  ctx.table('Joining a database over the DHT (one bootstrap node, 127.0.0.1, all peers in one process)', rows);
  ctx.note(
    `n − 1 replicas (${NODES_PER_REPLICA} nodes each) first form the network knowing only the bootstrap address; then a new replica ` +
      'joins: times are from openDatabase (which calls connect(topic)) to its first peer-connected, first synced, and to holding every node.',
  );
  ctx.table('Memory per replica (libp2p node + database, after GC, in an n − 1 replica network)', memRows);
}
