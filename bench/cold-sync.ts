// Cold sync alone: the sync bench's "fresh replica syncs a 100,000-node database" row (bench/sync.ts
// § 2, default frame cap), one process per measurement, so that two checkouts can be timed against
// each other with many interleaved runs (BENCHMARKS.md § Issue 12, Session 7 (puts)).
//
// node_modules/node/bin/node --conditions=rhizome-source --import tsx bench/cold-sync.ts \
//   [--nodes 100000] [--runs 1] [--source FILE]
// --source FILE: the source database, written once (as bench/sync.ts writes it: all puts in one
// doc transaction) if FILE does not exist, then copied into a fresh directory for every run, so
// every run starts from the same bytes. Without it the source is written in the process, untimed.
// Prints one line per run: `cold-sync nodes=N ms=<open of the fresh replica to synced>
// cpuMs=<process CPU in that window, both replicas, all threads> mainCpuMs=<the main thread's CPU:
// with no idle time, what the wall time is on a quiet machine, less what GC threads do in parallel> idleMs=<event loop idle in that window: time
// spent waiting (timers, I/O), which a loaded machine does not inflate> bytes=<received by the fresh replica>`.
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as Y from 'yjs';
import { MemoryTransport } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import { flag } from './args.js';
import { node } from './floor-writer.js';

const N = Number(flag('--nodes', '100000'));
const RUNS = Number(flag('--runs', '1'));
const SOURCE = flag('--source', '');
/** The database id is part of the stored rows, so a prepared source file keeps a fixed one. */
const ID = 'cold-sync-bench-0123456789abcdef';


async function writeSource(path: string): Promise<void> {
  const db = await openDatabase({ id: ID, path });
  db.doc.transact(() => {
    for (let i = 0; i < N; i++) db.put(`n${i}`, node(i));
  });
  await db.close();
}

const dir = mkdtempSync(join(tmpdir(), 'rhizome-cold-sync-'));
try {
  const sourcePath = join(dir, 'source.db');
  if (SOURCE === '') await writeSource(sourcePath);
  else {
    if (!existsSync(SOURCE)) await writeSource(SOURCE);
    for (const ext of ['', '-wal']) if (existsSync(SOURCE + ext)) copyFileSync(SOURCE + ext, sourcePath + ext);
  }
  for (let r = 0; r < RUNS; r++) {
    const hub = `bench-${randomUUID()}`;
    const t1 = new MemoryTransport({ hub, peerId: 'src' });
    const t2 = new MemoryTransport({ hub, peerId: 'fresh' });
    const source = await openDatabase({ id: ID, path: sourcePath, transport: t1 });
    const snapshotBytes = Y.encodeStateAsUpdate(source.doc).length; // as bench/sync.ts does before timing
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const main0 = process.threadCpuUsage();
    const t0 = performance.now();
    const fresh = await openDatabase({ id: ID, path: join(dir, `fresh-${r}.db`), transport: t2 });
    await fresh.whenSynced({ minPeers: 1, timeoutMs: 120_000 });
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    const main = process.threadCpuUsage(main0);
    if (fresh.size !== N) throw new Error(`fresh replica has ${fresh.size}/${N} nodes`);
    const bytes = fresh.stats().peers[0]!.bytesReceived;
    await fresh.close();
    await source.close();
    await t1.disconnect();
    await t2.disconnect();
    process.stdout.write(`cold-sync nodes=${N} ms=${ms.toFixed(1)} cpuMs=${((cpu.user + cpu.system) / 1000).toFixed(1)} mainCpuMs=${((main.user + main.system) / 1000).toFixed(1)} idleMs=${elu.idle.toFixed(1)} bytes=${bytes} snapshot=${snapshotBytes}\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
