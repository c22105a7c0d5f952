// Rhizome's relay as a server under test: forked by bench/compare.ts with the same IPC protocol
// as bench/peers/server.mjs (ready / stats / exit), so its CPU and memory are its own.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { createRelayServer, missingRelayNodeFlags } from '@rhizome/relay';
// @ts-expect-error plain JavaScript diagnostics, off unless BENCH_SERVER_DIAG is set
import { serverDiag } from './server-diag.mjs';

// Started as `rhizome relay` starts its process (bench/compare.ts passes RELAY_NODE_FLAGS): the
// comparison measures the relay users run, not a bench-only configuration.
const missing = missingRelayNodeFlags();
if (missing.length > 0) throw new Error(`relay-server.ts must run with the relay's Node flags (missing ${missing.join(' ')})`);
const diag = await serverDiag('relay');
let marks = 0;

const version = (name: string): string =>
  (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

interface StatsRequest {
  type: string;
  id?: string;
  gc?: boolean;
}

let snapshots = 0;
process.on('message', (msg: StatsRequest) => {
  if (msg.type === 'stats') {
    const gc = (globalThis as { gc?: (options?: unknown) => void }).gc;
    const mark = String(++marks);
    diag(mark, 'before GC');
    if (msg.gc && gc) for (let i = 0; i < 3; i++) gc();
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    diag(mark, 'plain GC');
    const reduced = msg.gc && gc ? reducedMemory(gc) : mem;
    diag(mark, 'memory-reducing GC');
    if (msg.gc && process.env.BENCH_HEAP_SNAPSHOTS) writeHeapSnapshot(join(process.env.BENCH_HEAP_SNAPSHOTS, `relay-${process.pid}-${++snapshots}.heapsnapshot`));
    process.send!({
      type: 'stats',
      id: msg.id,
      cpuUser: cpu.user,
      cpuSystem: cpu.system,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      heapTotal: mem.heapTotal,
      arrayBuffers: mem.arrayBuffers,
      maxRss: peakRss(),
      rssReduced: reduced.rss,
      heapUsedReduced: reduced.heapUsed,
      ...ioCalls(),
    });
  } else if (msg.type === 'snapshot') {
    // For memory analysis: `{ type: 'snapshot', id, path }` writes a V8 heap snapshot.
    const file = writeHeapSnapshot((msg as { path?: string }).path);
    process.send!({ type: 'snapshot', id: msg.id, file });
  } else if (msg.type === 'exit') {
    process.exit(0);
  }
});
/**
 * Memory after V8's memory-reducing collection (what it runs under memory pressure): unlike the
 * plain full GCs above, it also shrinks the young generation back and returns its pages, so
 * pages a burst of short-lived garbage touched (a fixed ~16 MiB on Node 22, not a cost per
 * connection) stop counting. Same code in bench/peers/server.mjs.
 */
function reducedMemory(gc: (options?: unknown) => void): NodeJS.MemoryUsage {
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return process.memoryUsage();
}
/**
 * Peak RSS of this process image in bytes: Linux's VmHWM. Not `resourceUsage().maxRSS`: on Linux
 * that keeps the high-water mark of the parent at fork time (`signal->maxrss` survives exec), so
 * every server forked from a big bench process reported the parent's ~199 MiB. Elsewhere the
 * current RSS is the best this can do.
 */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.memoryUsage().rss;
}

/** Read and write system calls so far (Linux /proc/self/io); nothing elsewhere. Same code in bench/peers/server.mjs. */
function ioCalls(): { readCalls?: number; writeCalls?: number } {
  try {
    const io = readFileSync('/proc/self/io', 'utf8');
    return { readCalls: Number(/syscr: (\d+)/.exec(io)?.[1]), writeCalls: Number(/syscw: (\d+)/.exec(io)?.[1]) };
  } catch {
    return {};
  }
}

process.on('disconnect', () => process.exit(0));

const options = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
const server = await createRelayServer({ port: 0, host: '127.0.0.1', ...options });
process.send!({ type: 'ready', port: server.port, versions: { node: process.version, '@rhizome/relay': version('@rhizome/relay'), ws: version('ws') } });
