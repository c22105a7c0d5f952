// Against the alternatives: Rhizome beside what users would pick instead (y-websocket's server,
// Hocuspocus with and without its SQLite extension, and a bare `ws` forwarder as the ceiling),
// on the same workloads, in one run. `npm run bench -- --only compare [--quick]`.
//
// Every measurement runs in fresh child processes: one server (its CPU and memory are read over
// IPC) and one driver holding the clients (bench/compare/driver.ts), so a system's cost is its
// own. The peers are a separate npm project (bench/peers), installed by `prebench`.
//
// Extra flags: --workloads stream,paced,... --systems rhizome,y-websocket,...
//   --runs N (override the number of runs) --profile (CPU profiles of drivers and servers
//   into bench/.profiles/, for `node --cpu-prof` analysis of a missed target).
// Environment: BENCH_HEAP_SNAPSHOTS=<dir> makes the servers (Rhizome's relay, bench/peers/server.mjs)
//   write a V8 heap snapshot at every GC mark (idle: before, half, after), after the mark's figures
//   were read; diff the 'half' and 'after' ones per connection. Snapshots cost native memory: do
//   not read RSS figures from such a run.
// BENCH_DRIVER_EXEC_ARGV='--trace-gc ...' adds V8 flags to every driver (diagnostics, not for figures of record).
// COLD_STAGES=1: each cold run notes C's first/last byte down, its longest transaction (the apply), its
//   process's CPU and the GCs in the window by kind and place (diagnostics, not for figures of record).
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, summarize, type BenchContext, type Stats } from './harness.js';
import { RELAY_NODE_FLAGS } from '@rhizome/relay/node-flags';
import { idleHalf, type ServerStats, type WorkloadName, type WorkloadResult } from './compare/types.js';

const HERE = import.meta.dirname;
const PEERS = join(HERE, 'peers');
/**
 * The children run the bench's own .ts files through tsx, but resolve `@rhizome/*` to the built
 * `dist/` (tsc output, what users install), not to the sources: tsx compiles with esbuild's
 * `keepNames`, which wraps every named closure in `__name(fn, "x")` — an `Object.defineProperty`
 * per closure created and a ~256-byte dictionary of properties on each — and measured that
 * instead of Rhizome (about 12 KiB of a client replica's heap). `run()` rebuilds `dist/` first
 * (`tsc -b`, about a second when fresh). `--source` measures the sources under tsx instead.
 */
const TSX_ARGS = process.argv.includes('--source') ? ['--conditions=rhizome-source', '--import', 'tsx'] : ['--import', 'tsx'];
/**
 * The relay under test runs on plain Node, as the peers' servers do (bench/peers/server.mjs):
 * relay-server.ts uses only erasable TypeScript, which Node 22 strips by itself. Under tsx the
 * server process also carried tsx's loader and its module-hooks thread (a second V8 isolate:
 * 6–9 MiB more RSS before any connection, measured), which none of the other servers pay.
 * `--source` still needs tsx.
 */
const SERVER_ARGS = process.argv.includes('--source') ? TSX_ARGS : [];
// The relay's process runs with the Node flags its own entry points start it with (`rhizome relay`,
// `rhizome-relay`: a small young generation, relay/src/node-flags.ts); relay-server.ts checks it.
// The other servers run as their projects ship them: plain `node`.

/** Brings `dist/` up to date with the sources (incremental `tsc -b`); throws when the build fails. */
function buildDist(): void {
  const root = join(HERE, '..');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const out = spawnSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`tsc -b tsconfig.build.json failed (the comparison runs the built dist/):\n${out.stdout}${out.stderr}`);
}

type ServerKind = 'rhizome' | 'bare' | 'y-websocket' | 'hocuspocus';

interface SystemDef {
  label: string;
  client: 'rhizome' | 'y-websocket' | 'hocuspocus' | 'bare';
  server: ServerKind;
  serverOptions?: Record<string, unknown>;
  /** Server persists to a SQLite file in the run's temp dir. */
  sqlite?: boolean;
}

/**
 * The relay's limits for the benchmark: every client comes from 127.0.0.1, so the per-address
 * connection cap (256 by default, an abuse guard) would refuse the idle and fan-out workloads.
 * Rates stay at their defaults.
 */
const RELAY_OPTIONS = { maxConnectionsPerIp: 20_000, maxConnections: 20_000 };

/** Left out of `--quick` (a smoke run): the tuned Hocuspocus variant and the bare ceiling. */
const QUICK_SKIP = new Set(['hocuspocus-nf', 'bare']);

const SYSTEMS: Record<string, SystemDef> = {
  rhizome: { label: 'Rhizome (relay, sealed)', client: 'rhizome', server: 'rhizome', serverOptions: RELAY_OPTIONS },
  'y-websocket': { label: 'y-websocket', client: 'y-websocket', server: 'y-websocket' },
  hocuspocus: { label: 'Hocuspocus (defaults)', client: 'hocuspocus', server: 'hocuspocus' },
  'hocuspocus-nf': { label: 'Hocuspocus (flushDelay: false)', client: 'hocuspocus', server: 'hocuspocus', serverOptions: { flushDelay: false } },
  bare: { label: 'bare ws forwarder (Yjs frames)', client: 'bare', server: 'bare' },
  'rhizome-sqlite': { label: 'Rhizome + SQLite at A and B', client: 'rhizome', server: 'rhizome', serverOptions: RELAY_OPTIONS },
  'hocuspocus-sqlite': { label: 'Hocuspocus + SQLite extension', client: 'hocuspocus', server: 'hocuspocus', sqlite: true },
  'hocuspocus-nf-sqlite': {
    label: 'Hocuspocus (flushDelay: false) + SQLite extension',
    client: 'hocuspocus',
    server: 'hocuspocus',
    serverOptions: { flushDelay: false },
    sqlite: true,
  },
};

interface Metric {
  key: string;
  label: string;
  /** Which way is better, for the ratio column. */
  better?: 'higher' | 'lower';
  digits?: number;
}

interface WorkloadDef {
  id: string;
  title: string;
  workload: WorkloadName;
  systems: string[];
  params(quick: boolean): Record<string, unknown>;
  /** Params per system (persistence on for the SQLite systems). */
  paramsFor?(system: string, base: Record<string, unknown>): Record<string, unknown>;
  metrics: Metric[];
  /** The metric the ratio column is taken on. */
  primary: string;
  describe(p: Record<string, unknown>): string;
}

const WORKLOADS: WorkloadDef[] = [
  {
    id: 'stream',
    title: 'Stream, tight loop',
    workload: 'stream',
    systems: ['rhizome', 'y-websocket', 'hocuspocus', 'hocuspocus-nf', 'bare'],
    params: (quick) => ({ writes: quick ? 10_000 : 100_000, chunk: 1000, timeoutMs: quick ? 15_000 : 30_000 }),
    // Hocuspocus's defaults collapse under this burst (Y.mergeUpdates is quadratic, see FACTS):
    // cap them sooner, the rate over the cap is the figure.
    paramsFor: (system, base) => (system === 'hocuspocus' ? { ...base, timeoutMs: 12_000 } : base),
    metrics: [
      { key: 'updatesPerSec', label: 'updates/s', better: 'higher' },
      { key: 'seconds', label: 'seconds until B has all', better: 'lower', digits: 2 },
      { key: 'writerSeconds', label: 'writer loop s', digits: 2 },
      { key: 'serverCpuSeconds', label: 'server CPU s', better: 'lower', digits: 2 },
      { key: 'serverPeakRssMiB', label: 'server peak RSS MiB', better: 'lower' },
    ],
    primary: 'updatesPerSec',
    describe: (p) => `2 peers (A, B) in one driver process; A writes ${fmt(p.writes as number)} single-field puts to distinct nodes, ${fmt(p.chunk as number)} per macrotask; time until B holds all of them (capped at ${(p.timeoutMs as number) / 1000} s; Hocuspocus defaults at 12 s, its rate then counts what B had by the cap).`,
  },
  {
    id: 'stream1',
    title: 'Stream, tight loop, one write per macrotask',
    workload: 'stream',
    systems: ['rhizome', 'y-websocket', 'hocuspocus', 'bare'],
    params: (quick) => ({ writes: quick ? 5_000 : 20_000, chunk: 1, timeoutMs: quick ? 15_000 : 30_000 }),
    metrics: [
      { key: 'updatesPerSec', label: 'updates/s', better: 'higher' },
      { key: 'seconds', label: 'seconds until B has all', better: 'lower', digits: 2 },
      { key: 'writerSeconds', label: 'writer loop s', digits: 2 },
      { key: 'serverCpuSeconds', label: 'server CPU s', better: 'lower', digits: 2 },
      { key: 'serverPeakRssMiB', label: 'server peak RSS MiB', better: 'lower' },
    ],
    primary: 'updatesPerSec',
    describe: (p) => `As above, but A yields (setImmediate) after every write: nothing can be coalesced within a macrotask, only what queues up while a send is in flight.`,
  },
  {
    id: 'paced',
    title: 'Stream, paced at 2,000 writes/s',
    workload: 'paced',
    systems: ['rhizome', 'y-websocket', 'hocuspocus', 'bare'],
    params: (quick) => ({ writes: quick ? 2_000 : 10_000, rate: 2000, timeoutMs: quick ? 10_000 : 30_000 }),
    metrics: [
      { key: 'p50ms', label: 'p50 ms', better: 'lower', digits: 2 },
      { key: 'p99ms', label: 'p99 ms', better: 'lower', digits: 2 },
      { key: 'maxMs', label: 'max ms', digits: 1 },
      { key: 'achievedRate', label: 'writes/s achieved' },
    ],
    primary: 'p99ms',
    describe: (p) => `A writes ${fmt(p.writes as number)} single-field puts at ${fmt(p.rate as number)}/s; latency from the put call on A to B's observer seeing it.`,
  },
  {
    id: 'fanout',
    title: 'Fan-out',
    workload: 'fanout',
    systems: ['rhizome', 'y-websocket', 'hocuspocus', 'bare'],
    params: (quick) =>
      quick
        ? { databases: 10, peers: 4, rate: 25, durationMs: 2_000, timeoutMs: 20_000 }
        : { databases: 50, peers: 4, rate: 25, durationMs: 5_000, timeoutMs: 30_000 },
    metrics: [
      { key: 'writesPerSec', label: 'writes/s (offered peers × rate)' },
      { key: 'deliveredPerSec', label: 'delivered updates/s', better: 'higher' },
      { key: 'drainSeconds', label: 'drain s', digits: 2 },
      { key: 'serverCpuSeconds', label: 'relay CPU s', better: 'lower', digits: 2 },
      { key: 'serverCpuUsPerDelivery', label: 'relay CPU µs/delivery', better: 'lower', digits: 1 },
      { key: 'serverPeakRssMiB', label: 'relay peak RSS MiB', better: 'lower' },
    ],
    primary: 'serverCpuUsPerDelivery',
    describe: (p) =>
      `${p.databases as number} databases × ${p.peers as number} peers (one driver process), every peer writing ${p.rate as number}/s for ${(p.durationMs as number) / 1000} s (70% to 64 shared nodes, 30% new nodes; 30% of writes set two fields); deliveries counted at every receiver. Relay CPU from the start of the writes until every write reached every peer (or the drain time-out).`,
  },
  {
    id: 'cold',
    title: 'Cold sync',
    workload: 'cold',
    systems: ['rhizome', 'y-websocket', 'hocuspocus'],
    params: (quick) => ({ nodes: quick ? 10_000 : 100_000, timeoutMs: 30_000 }),
    metrics: [
      { key: 'seconds', label: 'seconds to synced with all nodes', better: 'lower', digits: 3 },
      { key: 'openSeconds', label: 'of which open s', digits: 3 },
      { key: 'bytesDown', label: 'bytes down' },
      { key: 'bytesUp', label: 'bytes up' },
      { key: 'stateBytes', label: 'encoded state bytes' },
      { key: 'wireRatio', label: 'wire ÷ state', better: 'lower', digits: 2 },
    ],
    primary: 'seconds',
    describe: (p) => `A (in its own process) holds ${fmt(p.nodes as number)} nodes, written in one transaction, and stays online; a fresh replica C joins through a byte-counting TCP proxy: time from open to synced with every node; bytes both ways on C's wire (HTTP upgrade and WebSocket framing included) against \`Y.encodeStateAsUpdate\` of A.`,
  },
  {
    id: 'idle',
    title: 'Idle connections',
    workload: 'idle',
    systems: ['rhizome', 'y-websocket', 'hocuspocus', 'bare'],
    // --idle-connections N --idle-per-room k --idle-no-warmup --idle-no-renew --idle-wait-ms T: diagnostics (the figures of record use the defaults).
    params: (quick) => ({
      connections: intFlag('--idle-connections', quick ? 500 : 5000, 1),
      perRoom: intFlag('--idle-per-room', 5, 1),
      timeoutMs: 60_000,
      ...(process.argv.includes('--idle-no-warmup') ? { warmup: false } : {}),
      ...(process.argv.includes('--idle-no-renew') ? { renewPresence: false } : {}),
      ...(argList('--idle-wait-ms') ? { idleMs: intFlag('--idle-wait-ms', 6000, 0) } : {}),
    }),
    metrics: [
      { key: 'serverKiBPerConn', label: 'server RSS KiB/connection', better: 'lower', digits: 1 },
      { key: 'serverHeapKiBPerConn', label: 'server heap KiB/connection', digits: 1 },
      { key: 'serverReducedKiBPerConn', label: 'server RSS KiB/connection, memory-reducing GC', digits: 1 },
      { key: 'serverMarginalKiBPerConn', label: 'server RSS KiB/connection, 2nd half', digits: 1 },
      { key: 'serverMarginalReducedKiBPerConn', label: 'server RSS KiB/connection, 2nd half, memory-reducing GC', digits: 1 },
      { key: 'serverBaseRssMiB', label: 'server RSS before MiB' },
      { key: 'serverReadsPerConn', label: 'server reads/connection', digits: 1 },
      { key: 'serverWritesPerConn', label: 'server writes/connection', digits: 1 },
      { key: 'connectSeconds', label: 'connect+sync s', digits: 2 },
      { key: 'awarenessSeconds', label: 'awareness exchange s', digits: 2 },
      { key: 'clientKiBPerPeer', label: 'client RSS KiB/peer', digits: 0 },
      { key: 'clientGcKiBPerPeer', label: 'client RSS KiB/peer after GC (earlier harness: 1 GC, no warm-up)', digits: 0 },
      { key: 'clientHeap1gcKiBPerPeer', label: 'client heap KiB/peer (earlier harness: 1 GC, no warm-up)', digits: 1 },
      { key: 'clientRssSettledKiBPerPeer', label: 'client RSS KiB/peer after GCs', digits: 0 },
      { key: 'clientRssReducedKiBPerPeer', label: 'client RSS KiB/peer, memory-reducing GC', digits: 0 },
      { key: 'clientHeapKiBPerPeer', label: 'client heap KiB/peer', digits: 2 },
      { key: 'clientHeapBuffersKiBPerPeer', label: 'client heap + ArrayBuffers KiB/peer', digits: 2 },
      { key: 'clientHeapMarginalKiBPerPeer', label: 'client heap KiB/peer, 2nd half', digits: 2 },
      { key: 'clientRssMarginalKiBPerPeer', label: 'client RSS KiB/peer, 2nd half', digits: 0 },
      { key: 'clientWarmupHeapKiB', label: 'client heap KiB left by the warm-up (fixed)', digits: 0 },
      { key: 'clientHeapFreedByGc23KiBPerPeer', label: 'client heap KiB/peer freed by the 2nd and 3rd GC', digits: 2 },
      { key: 'clientsSynced', label: 'replicas synced at the check', digits: 0 },
      { key: 'clientsMissingPeers', label: 'replicas short of peers', digits: 0 },
      { key: 'clientAwarenessStatesPerPeer', label: 'awareness states per replica', digits: 2 },
      { key: 'clientSockets', label: 'client sockets open', digits: 0 },
    ],
    primary: 'serverKiBPerConn',
    describe: (p) => `${fmt(p.connections as number)} replicas, ${p.perRoom as number} per document, connected and synced, then idle; server RSS after a full GC, before and after, divided by the connections; the same after V8's memory-reducing GC (which also returns the young generation's pages a burst touched: a fixed ~16 MiB, not a cost per connection); client (driver process) RSS per replica without a GC, and its RSS and heap (also with the ArrayBuffers' bytes, which heapUsed leaves out) after three full GCs (each half measured after its replicas were idle for ${((p.idleMs as number | undefined) ?? 6000) / 1000} s; the server's marks are taken right after they were ready), from a baseline taken after a warm-up document of ${p.perRoom as number} replicas was opened, synced and closed (modules imported on first connect, compiled code: the process's fixed costs, in every system's baseline), the same after V8's memory-reducing GC; the earlier harness's figures (one GC, baseline before any client, fixed costs included) beside them; then the check that every replica was connected and synced (with its peers) when measured, its awareness states and the client's open sockets. Every replica renews its (empty) awareness state once when opened, as y-protocols does by itself 15 s later: a state at clock 0 from an unknown client is ignored by its receivers, so before that renewal no replica holds the others' states and after it all do; the workload waits until every replica holds the states of its document ("awareness exchange s") and measures that steady state, in every system alike. "2nd half": the replicas connect in two halves (whole documents) with the server and the client measured between them; the second half's growth divided by its connections, the marginal cost of a connection without the fixed costs the first half already paid (the young generation grown by the burst, allocator arenas).`,
  },
  {
    id: 'durable',
    title: 'Durability cost: the tight stream with persistence on',
    workload: 'stream',
    systems: ['rhizome-sqlite', 'rhizome', 'hocuspocus-nf-sqlite', 'hocuspocus-nf'],
    params: (quick) => ({ writes: quick ? 10_000 : 100_000, chunk: 1000, timeoutMs: quick ? 15_000 : 30_000 }),
    paramsFor: (system, base) =>
      system === 'rhizome-sqlite' ? { ...base, persist: true } : SYSTEMS[system]!.sqlite ? { ...base, waitStored: true } : base,
    metrics: [
      { key: 'updatesPerSec', label: 'updates/s (B has all)', better: 'higher' },
      { key: 'durableSeconds', label: 'seconds until durable', better: 'lower', digits: 2 },
      { key: 'serverCpuSeconds', label: 'server CPU s', digits: 2 },
    ],
    primary: 'updatesPerSec',
    describe: (p) =>
      `The tight stream (${fmt(p.writes as number)} writes) with persistence on, beside the same without, in the same runs: Rhizome with a SQLite file at A and at B (the relay keeps nothing); Hocuspocus with its SQLite extension on the server (its Node providers have no local store), with \`flushDelay: false\` since its defaults collapse under this burst with or without SQLite (see the stream table). "Durable" is when every write is on disk at the persisting ends: for Rhizome when B has all (a put is in SQLite before the next macrotask), for Hocuspocus when the server's store hook has written a state holding every write (its debounce is 2 s by default).`,
  },
];

/** A forked child with an IPC request/reply helper. */
interface Child {
  proc: ChildProcess;
  stderr: string[];
}

function forkChild(file: string, args: string[], execArgv: string[], profileDir: string | undefined): Child {
  const argv = profileDir ? [...execArgv, '--cpu-prof', `--cpu-prof-dir=${profileDir}`] : execArgv;
  const proc = fork(file, args, { execArgv: argv, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], cwd: join(HERE, '..') });
  proc.on('error', () => {}); // EPIPE on a child that already exited: its exit is what counts
  const stderr: string[] = [];
  const keep = (chunk: Buffer): void => {
    stderr.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (stderr.length > 40) stderr.splice(0, stderr.length - 40);
  };
  proc.stdout?.on('data', keep);
  // Diagnostics (bench/compare/server-diag.mjs): a child's stdout also goes to a file (V8's GC traces).
  if (process.env.BENCH_SERVER_DIAG) proc.stdout?.on('data', (chunk: Buffer) => appendFileSync(join(process.env.BENCH_SERVER_DIAG!, `stdout-${proc.pid}.txt`), chunk));
  proc.stderr?.on('data', keep);
  return { proc, stderr };
}

function waitMessage<T>(child: Child, pred: (m: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Record<string, unknown>): void => {
      if (!pred(m)) return;
      cleanup();
      resolve(m as T);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`${what}: child exited (${code}) ${child.stderr.slice(-8).join(' | ')}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer in ${timeoutMs} ms ${child.stderr.slice(-8).join(' | ')}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.proc.off('message', onMessage);
      child.proc.off('exit', onExit);
    };
    child.proc.on('message', onMessage);
    child.proc.on('exit', onExit);
  });
}

async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.proc.once('exit', () => resolve()));
  if (child.proc.connected) child.proc.send({ type: 'exit' }, () => {});
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

interface Measured {
  values: Record<string, number>;
  notes: string[];
  versions: Record<string, string>;
}

let statsSeq = 0;
async function serverStats(server: Child, gc: boolean): Promise<ServerStats> {
  const id = `s${++statsSeq}`;
  server.proc.send({ type: 'stats', id, gc });
  return waitMessage<ServerStats>(server, (m) => m.type === 'stats' && m.id === id, 30_000, 'server stats');
}

/** One system, one workload, one run, in fresh processes. */
async function measure(systemId: string, def: WorkloadDef, runParams: Record<string, unknown>, profileRoot: string | undefined): Promise<Measured> {
  const system = SYSTEMS[systemId]!;
  const profileDir = (role: string): string | undefined => (profileRoot ? join(profileRoot, `${def.id}-${systemId}-${role}`) : undefined);
  const tmpDir = mkdtempSync(join(tmpdir(), `rhizome-compare-${def.id}-`));
  let params = runParams;
  const children: Child[] = [];
  try {
    const serverOptions = { ...system.serverOptions, ...(system.sqlite ? { sqlite: join(tmpDir, 'hocuspocus.sqlite') } : {}) };
    // Diagnostics only (never for figures of record): BENCH_SERVER_EXEC_ARGV='--flag ...' for every server alike.
    const diagArgs = process.env.BENCH_SERVER_EXEC_ARGV?.split(' ').filter(Boolean) ?? [];
    const server =
      system.server === 'rhizome'
        ? forkChild(join(HERE, 'compare', 'relay-server.ts'), [JSON.stringify(serverOptions)], [...SERVER_ARGS, ...RELAY_NODE_FLAGS, '--expose-gc', ...diagArgs], profileDir('server'))
        : forkChild(join(PEERS, 'server.mjs'), [system.server, JSON.stringify(serverOptions)], ['--expose-gc', ...diagArgs], profileDir('server'));
    children.push(server);
    const stored: Array<{ room: string; nodes: number; at: number }> = [];
    const storedWaiters = new Set<() => void>();
    server.proc.on('message', (m: Record<string, unknown>) => {
      if (m.type !== 'stored') return;
      stored.push(m as unknown as { room: string; nodes: number; at: number });
      for (const w of storedWaiters) w();
    });
    const ready = await waitMessage<{ port: number; versions: Record<string, string> }>(server, (m) => m.type === 'ready', 30_000, `${systemId} server start`);
    const url = `ws://127.0.0.1:${ready.port}`;

    const startDriver = async (role: string): Promise<Child> => {
      // Diagnostics only, like BENCH_SERVER_EXEC_ARGV: BENCH_DRIVER_EXEC_ARGV='--trace-gc --trace-gc-verbose' for every driver
      // (with BENCH_SERVER_DIAG=<dir> their stdout goes to <dir>/stdout-<pid>.txt).
      const driverDiag = process.env.BENCH_DRIVER_EXEC_ARGV?.split(' ').filter(Boolean) ?? [];
      const child = forkChild(join(HERE, 'compare', 'driver.ts'), [], [...TSX_ARGS, '--expose-gc', '--max-old-space-size=8192', ...driverDiag], profileDir(role));
      children.push(child);
      await waitMessage(child, (m) => m.type === 'hello', 30_000, `${role} start`);
      return child;
    };
    let seeded: Record<string, number> = {};
    if (def.workload === 'cold') {
      // The replica that holds the data runs in its own process (see workloads.seed).
      params = { ...params, room: `cold-${randomUUID()}` };
      const seedDriver = await startDriver('seed');
      seedDriver.proc.send({ type: 'run', system: system.client, workload: 'seed', url, params, tmpDir });
      const out = await waitMessage<{ type: string; result?: WorkloadResult; error?: string }>(
        seedDriver,
        (m) => m.type === 'result' || m.type === 'error',
        (params.timeoutMs as number) + 30_000,
        `${systemId} seed`,
      );
      if (out.type === 'error') throw new Error(out.error);
      seeded = out.result!.values;
    }
    const driver = await startDriver('driver');
    const marks = new Map<string, ServerStats>();
    driver.proc.on('message', (m: Record<string, unknown>) => {
      const reply = (value: unknown): void => {
        if (driver.proc.connected) driver.proc.send({ type: 'reply', id: m.id, value });
      };
      if (m.type === 'mark') {
        serverStats(server, m.gc === true).then(
          (s) => {
            marks.set(m.name as string, s);
            reply(null);
          },
          () => reply(null),
        );
      } else if (m.type === 'wait-stored') {
        const room = m.room as string;
        const nodes = m.nodes as number;
        const find = (): number | undefined => stored.find((s) => s.room === room && s.nodes >= nodes)?.at;
        const found = find();
        if (found !== undefined) return reply(found);
        const timer = setTimeout(() => {
          storedWaiters.delete(check);
          reply(null);
        }, m.timeoutMs as number);
        const check = (): void => {
          const at = find();
          if (at === undefined) return;
          clearTimeout(timer);
          storedWaiters.delete(check);
          reply(at);
        };
        storedWaiters.add(check);
      }
    });
    driver.proc.send({ type: 'run', system: system.client, workload: def.workload, url, params, tmpDir });
    const budget = ((params.timeoutMs as number) ?? 30_000) * 3 + ((params.durationMs as number) ?? 0) + 60_000;
    const outcome = await waitMessage<{ type: string; result?: WorkloadResult; error?: string }>(
      driver,
      (m) => m.type === 'result' || m.type === 'error',
      budget,
      `${systemId} ${def.id}`,
    );
    if (outcome.type === 'error') throw new Error(outcome.error);
    const result = outcome.result!;
    const values = { ...seeded, ...result.values };
    if (values.stateBytes && values.bytesDown !== undefined && values.bytesUp !== undefined) {
      values.wireRatio = (values.bytesDown + values.bytesUp) / values.stateBytes;
    }
    const start = marks.get('start');
    const end = marks.get('end');
    if (start && end) {
      values.serverCpuSeconds = (end.cpuUser + end.cpuSystem - start.cpuUser - start.cpuSystem) / 1e6;
      values.serverPeakRssMiB = end.maxRss / 2 ** 20;
      if (values.delivered) values.serverCpuUsPerDelivery = (values.serverCpuSeconds * 1e6) / values.delivered;
    }
    const before = marks.get('before');
    const after = marks.get('after');
    if (before && after) {
      const n = params.connections as number;
      // The baseline is the settled state before the clients came (after the memory-reducing GC,
      // which the servers run at every GC mark after the plain ones); "after" is read twice, after
      // the plain full GCs and after the memory-reducing one.
      const base = before.rssReduced ?? before.rss;
      values.serverKiBPerConn = (after.rss - base) / 1024 / n;
      values.serverHeapKiBPerConn = (after.heapUsed - (before.heapUsedReduced ?? before.heapUsed)) / 1024 / n;
      if (after.rssReduced !== undefined) values.serverReducedKiBPerConn = (after.rssReduced - base) / 1024 / n;
      values.serverBaseRssMiB = before.rss / 2 ** 20;
      // The marginal cost: the second half of the connections alone, between two settled states
      // of the same process. Fixed costs the first half already paid (the young generation grown
      // to its maximum by the connect burst, ~32 MiB; allocator arenas and code of the first
      // connections) do not count as a cost per connection here.
      const half = marks.get('half');
      const nHalf = idleHalf(n, params.perRoom as number);
      if (half && nHalf > 0 && nHalf < n) {
        values.serverMarginalKiBPerConn = (after.rss - half.rss) / 1024 / (n - nHalf);
        if (after.rssReduced !== undefined && half.rssReduced !== undefined) {
          values.serverMarginalReducedKiBPerConn = (after.rssReduced - half.rssReduced) / 1024 / (n - nHalf);
        }
      }
      // What the connections made the server do: a bare forwarder's idle clients send nothing
      // after the upgrade, a Rhizome replica's opening exchange passes ~40 frames per connection.
      if (after.readCalls !== undefined && before.readCalls !== undefined) values.serverReadsPerConn = (after.readCalls - before.readCalls) / n;
      if (after.writeCalls !== undefined && before.writeCalls !== undefined) values.serverWritesPerConn = (after.writeCalls - before.writeCalls) / n;
    }
    return { values, notes: result.notes ?? [], versions: { ...ready.versions, ...result.versions } };
  } finally {
    await Promise.all(children.reverse().map(stopChild));
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

/** An integer flag `name N` (N >= min), `fallback` when absent; anything else is refused by name. */
function intFlag(name: string, fallback: number, min: number): number {
  const raw = argList(name)?.[0];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name}: expected an integer >= ${min}, got '${raw}'`);
  return value;
}

function argList(name: string): string[] | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? '').split(',').filter(Boolean) : undefined;
}

function ratioText(rhizome: Stats | undefined, other: Stats | undefined, better: 'higher' | 'lower' | undefined): string {
  if (!rhizome || !other || !better || !(rhizome.median > 0) || !(other.median > 0)) return '';
  const r = better === 'higher' ? rhizome.median / other.median : other.median / rhizome.median;
  return `${fmt(r, 2)}×`;
}

export async function run(ctx: BenchContext): Promise<void> {
  const wantWorkloads = argList('--workloads');
  const wantSystems = argList('--systems');
  const runsArg = argList('--runs');
  const runs = runsArg ? Math.max(1, Number(runsArg[0]) || 1) : ctx.runs;
  const profileDir = process.argv.includes('--profile') ? join(HERE, '.profiles') : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const peersInstalled = ['yjs', 'y-websocket', '@y/websocket-server', '@hocuspocus/server', '@hocuspocus/provider', 'ws'].every((p) =>
    existsSync(join(PEERS, 'node_modules', p, 'package.json')),
  );
  if (!peersInstalled) ctx.note('\n**bench/peers is not installed** (`node bench/peers/ensure.mjs` installs it; `npm run bench` does so in prebench): measuring Rhizome alone.');
  if (!process.argv.includes('--source')) buildDist();
  const git = (args: string[]): string => spawnSync('git', args, { cwd: join(HERE, '..'), encoding: 'utf8' }).stdout?.trim() ?? '';
  const dirty = git(['status', '--porcelain', '--', 'packages', 'relay']) !== '';
  ctx.note(`\nCode measured: commit ${git(['rev-parse', '--short', 'HEAD']) || '?'}${dirty ? ' with uncommitted changes under packages/ or relay/' : ''}, ${process.argv.includes('--source') ? 'the sources under tsx (--source)' : 'as built to dist/ (tsc -b)'}.`);
  const load0 = loadavg();
  ctx.note(`\nLoad average at start: ${load0.map((x) => x.toFixed(2)).join(', ')} (2 cores: above ~0.5 something else is running).`);
  ctx.note(
    'Each cell: median (min–max) over the runs. Ratio columns: how many times better Rhizome is on that metric (above 1: Rhizome better; below 1: Rhizome worse). Every run uses fresh server and driver processes.',
  );

  const versions = new Map<string, Record<string, string>>();
  /** Medians by `workload:system:metric`, for the durability-cost note and the targets table. */
  const medians = new Map<string, number>();
  for (const def of WORKLOADS) {
    if (wantWorkloads && !wantWorkloads.includes(def.id)) continue;
    const systems = def.systems.filter((s) => !(ctx.quick && !wantSystems && QUICK_SKIP.has(s)) && (!wantSystems || wantSystems.some((w) => s === w || s.startsWith(`${w}-`))) && (peersInstalled || SYSTEMS[s]!.client === 'rhizome'));
    const base = def.params(ctx.quick);
    const results = new Map<string, Measured[]>();
    const notes = new Map<string, Set<string>>();
    const started = performance.now();
    for (let r = 0; r < runs; r++) {
      for (const s of systems) {
        const params = def.paramsFor ? def.paramsFor(s, base) : base;
        process.stderr.write(`[compare] ${def.id} run ${r + 1}/${runs}: ${s} ... `);
        const t = performance.now();
        try {
          const m = await measure(s, def, params, profileDir);
          if (!results.has(s)) results.set(s, []);
          results.get(s)!.push(m);
          versions.set(SYSTEMS[s]!.label, m.versions);
          for (const n of m.notes) (notes.get(s) ?? notes.set(s, new Set()).get(s)!).add(n);
          process.stderr.write(`${((performance.now() - t) / 1000).toFixed(1)} s\n`);
        } catch (error) {
          const msg = (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 300);
          (notes.get(s) ?? notes.set(s, new Set()).get(s)!).add(`failed: ${msg}`);
          process.stderr.write(`failed: ${msg}\n`);
        }
      }
    }
    const stats = new Map<string, Map<string, Stats>>();
    for (const [s, runs] of results) {
      const m = new Map<string, Stats>();
      for (const metric of def.metrics) {
        const vals = runs.map((x) => x.values[metric.key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
        if (vals.length) m.set(metric.key, summarize(vals));
      }
      stats.set(s, m);
      for (const [k, st] of m) medians.set(`${def.id}:${s}:${k}`, st.median);
    }
    const primary = def.metrics.find((m) => m.key === def.primary)!;
    const reference = stats.get(def.systems[0]!);
    const rows = systems.map((s) => {
      const row: Record<string, string | number> = { system: SYSTEMS[s]!.label };
      for (const metric of def.metrics) {
        const st = stats.get(s)?.get(metric.key);
        row[metric.label] = st ? cell(st, metric.digits ?? 1) : '—';
      }
      row[`Rhizome ÷ this (${primary.label})`] = s === def.systems[0] ? '' : ratioText(reference?.get(primary.key), stats.get(s)?.get(primary.key), primary.better);
      return row;
    });
    ctx.table(`${def.title} (${runs} run${runs > 1 ? 's' : ''})`, rows);
    ctx.note(`\n${def.describe(base)}`);
    for (const [s, set] of notes) for (const n of set) ctx.note(`- ${SYSTEMS[s]!.label}: ${n}`);
    ctx.note(`(${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
  const durabilityNote = (persisted: string, plain: string, label: string): string | undefined => {
    const a = medians.get(`durable:${persisted}:updatesPerSec`);
    const b = medians.get(`durable:${plain}:updatesPerSec`);
    return a && b ? `${label}: ${fmt(a)} updates/s with SQLite vs ${fmt(b)} without (×${fmt(a / b, 2)})` : undefined;
  };
  const costs = [durabilityNote('rhizome-sqlite', 'rhizome', 'Rhizome'), durabilityNote('hocuspocus-nf-sqlite', 'hocuspocus-nf', 'Hocuspocus (flushDelay: false)')].filter(Boolean);
  if (costs.length) ctx.note(`\nDurability cost (medians of the durability table): ${costs.join('; ')}.`);
  ctx.table('Targets (from the issue), on the medians above', targetRows(medians));
  ctx.table(
    'Versions',
    [...versions].map(([system, v]) => ({ system, versions: Object.entries(v).map(([k, x]) => `${k} ${x}`).join(', ') })),
  );
  const load1 = loadavg();
  ctx.note(`\nLoad average at the end: ${load1.map((x) => x.toFixed(2)).join(', ')}.`);
}

/** The issue's targets, each with the measured value and whether it is met. */
function targetRows(m: Map<string, number>): Array<Record<string, string>> {
  const rows: Array<Record<string, string>> = [];
  const add = (target: string, value: number | undefined, text: (v: number) => string, met: (v: number) => boolean): void => {
    if (value === undefined || !Number.isFinite(value)) return;
    rows.push({ target, measured: text(value), met: met(value) ? 'yes' : 'no' });
  };
  const ratio = (a: string, b: string): number | undefined => {
    const x = m.get(a);
    const y = m.get(b);
    return x !== undefined && y !== undefined && y > 0 ? x / y : undefined;
  };
  const x = (v: number): string => `${fmt(v, 2)}×`;
  for (const [wl, what] of [
    ['stream', 'tight loop'],
    ['stream1', 'one write per macrotask'],
  ] as const) {
    add(`stream ≥ 3× y-websocket (${what})`, ratio(`${wl}:rhizome:updatesPerSec`, `${wl}:y-websocket:updatesPerSec`), x, (v) => v >= 3);
    add(`stream ≥ 3× Hocuspocus defaults (${what})`, ratio(`${wl}:rhizome:updatesPerSec`, `${wl}:hocuspocus:updatesPerSec`), x, (v) => v >= 3);
    add(`stream ≥ 3× Hocuspocus flushDelay:false (${what})`, ratio(`${wl}:rhizome:updatesPerSec`, `${wl}:hocuspocus-nf:updatesPerSec`), x, (v) => v >= 3);
  }
  add('p99 propagation at 2,000 writes/s < 10 ms', m.get('paced:rhizome:p99ms'), (v) => `${fmt(v, 2)} ms`, (v) => v < 10);
  add('cold sync of the database < 1 s', m.get('cold:rhizome:seconds'), (v) => `${fmt(v, 3)} s`, (v) => v < 1);
  add('cold sync bytes ≤ 1.5× encoded state', m.get('cold:rhizome:wireRatio'), x, (v) => v <= 1.5);
  add('idle relay memory < 10 KiB/connection', m.get('idle:rhizome:serverKiBPerConn'), (v) => `${fmt(v)} KiB`, (v) => v < 10);
  add('idle relay memory ≤ 1.1× bare ws (issue 12; RSS after full GC)', ratio('idle:rhizome:serverKiBPerConn', 'idle:bare:serverKiBPerConn'), x, (v) => v <= 1.1);
  add('idle relay memory ≤ 1.1× bare ws (issue 12; RSS after memory-reducing GC)', ratio('idle:rhizome:serverReducedKiBPerConn', 'idle:bare:serverReducedKiBPerConn'), x, (v) => v <= 1.1);
  add('idle relay memory ≤ 1.1× bare ws (issue 12; marginal RSS, 2nd half, after memory-reducing GC)', ratio('idle:rhizome:serverMarginalReducedKiBPerConn', 'idle:bare:serverMarginalReducedKiBPerConn'), x, (v) => v <= 1.1);
  add('client memory per peer ≤ y-websocket (issue 12; RSS, no GC)', ratio('idle:rhizome:clientKiBPerPeer', 'idle:y-websocket:clientKiBPerPeer'), x, (v) => v <= 1);
  add('client memory per peer ≤ y-websocket (issue 12; RSS after GCs)', ratio('idle:rhizome:clientRssSettledKiBPerPeer', 'idle:y-websocket:clientRssSettledKiBPerPeer'), x, (v) => v <= 1);
  add('client memory per peer ≤ y-websocket (issue 12; heap after GCs)', ratio('idle:rhizome:clientHeapKiBPerPeer', 'idle:y-websocket:clientHeapKiBPerPeer'), x, (v) => v <= 1);
  add('client memory per peer ≤ y-websocket (issue 12; heap, 2nd half)', ratio('idle:rhizome:clientHeapMarginalKiBPerPeer', 'idle:y-websocket:clientHeapMarginalKiBPerPeer'), x, (v) => v <= 1);
  add('relay forwarding ≥ 0.8× bare (stream, tight loop)', ratio('stream:rhizome:updatesPerSec', 'stream:bare:updatesPerSec'), x, (v) => v >= 0.8);
  add('relay forwarding ≥ 0.8× bare (stream, one write per macrotask)', ratio('stream1:rhizome:updatesPerSec', 'stream1:bare:updatesPerSec'), x, (v) => v >= 0.8);
  add('relay forwarding ≥ 0.8× bare (fan-out delivered/s)', ratio('fanout:rhizome:deliveredPerSec', 'fanout:bare:deliveredPerSec'), x, (v) => v >= 0.8);
  add('relay CPU per delivery ≤ 1.25× bare (fan-out; 0.8× efficiency)', ratio('fanout:rhizome:serverCpuUsPerDelivery', 'fanout:bare:serverCpuUsPerDelivery'), x, (v) => v <= 1.25);
  return rows;
}

function cell(s: Stats, digits: number): string {
  const f = (n: number): string => fmt(n, digits);
  return s.runs > 1 ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : f(s.median);
}
