// The workloads of the comparison, written once against `ClientKit` and run in a driver process
// (bench/compare/driver.ts) for each system. Every wait is bounded by a time-out; every loop by
// a count. Times within one process use performance.now(); times compared with the server's
// use performance.timeOrigin + performance.now() (one clock on one machine).
import { randomUUID } from 'node:crypto';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import { idleHalf, type BenchClient, type ClientKit, type ColdParams, type FanoutParams, type IdleParams, type PacedParams, type StreamParams, type WorkloadResult } from './types.js';

/** What a workload may ask of the parent (which owns the server process). */
export interface DriverIo {
  /** Samples the server's counters under `name` (after a full GC when `gc`). */
  mark(name: string, gc?: boolean): Promise<void>;
  /** Absolute time at which the server stored `room` with at least `nodes` nodes, if it did in time. */
  waitStored(room: string, nodes: number, timeoutMs: number): Promise<number | undefined>;
}

export interface WorkloadContext {
  kit: ClientKit;
  url: string;
  tmpDir: string;
  io: DriverIo;
}

const absNow = (): number => performance.timeOrigin + performance.now();

/** A promise resolved by `done()`, rejected when `timeoutMs` passes first. */
function deadline(timeoutMs: number): { promise: Promise<boolean>; done: () => void } {
  let done!: () => void;
  const promise = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    done = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
  return { promise, done };
}

/** Waits until `check()` holds, re-checking after every remote change seen by `client`. */
async function untilRemote(client: BenchClient, check: () => boolean, timeoutMs: number): Promise<boolean> {
  if (check()) return true;
  const d = deadline(timeoutMs);
  let settled = false;
  client.onRemote(() => {
    if (!settled && check()) {
      settled = true;
      d.done();
    }
  });
  return d.promise;
}

/** Opens `count` clients with at most `parallel` opens in flight. */
async function openMany(kit: ClientKit, specs: Array<Parameters<ClientKit['open']>[0]>, parallel: number): Promise<BenchClient[]> {
  const out: BenchClient[] = new Array<BenchClient>(specs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < specs.length) {
      const i = next++;
      out[i] = await kit.open(specs[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, specs.length) }, worker));
  return out;
}

async function closeAll(clients: BenchClient[], timeoutMs: number): Promise<void> {
  await Promise.race([Promise.allSettled(clients.map((c) => c.close())), sleep(timeoutMs)]);
}

/**
 * Stream: A writes `writes` single-field puts (distinct nodes) as fast as it can, yielding
 * every `chunk` writes; the result is the time until B has all of them.
 */
export async function stream(ctx: WorkloadContext, p: StreamParams): Promise<WorkloadResult> {
  const room = `stream-${randomUUID()}`;
  const notes: string[] = [];
  const a = await ctx.kit.open({ url: ctx.url, room, peers: 1, ...(p.persist ? { path: join(ctx.tmpDir, `${room}-a.db`) } : {}) });
  const b = await ctx.kit.open({ url: ctx.url, room, peers: 1, ...(p.persist ? { path: join(ctx.tmpDir, `${room}-b.db`) } : {}) });
  await Promise.all([a.ready(p.timeoutMs), b.ready(p.timeoutMs)]);
  let got = 0;
  let tDone = Number.NaN;
  const d = deadline(p.timeoutMs);
  b.onRemote((id, field) => {
    if (field === 'v' && id.charCodeAt(0) === 115 /* s */ && ++got === p.writes) {
      tDone = performance.now();
      d.done();
    }
  });
  await ctx.io.mark('start');
  const t0 = performance.now();
  const t0abs = absNow();
  for (let i = 0; i < p.writes; i++) {
    a.put(`s${i}`, { v: i });
    if ((i + 1) % p.chunk === 0) await immediate();
  }
  const tWritten = performance.now();
  const complete = await d.promise;
  const tEnd = complete ? tDone : performance.now();
  if (!complete) notes.push(`timed out after ${p.timeoutMs / 1000} s with ${got} of ${p.writes} delivered`);
  let durable = Number.NaN;
  if (p.waitStored && complete) {
    const at = await ctx.io.waitStored(room, p.writes, p.timeoutMs);
    if (at === undefined) notes.push('the server never stored every write in time');
    else durable = Math.max(at - t0abs, tEnd - t0) / 1000;
  } else if (p.persist && complete) {
    // Rhizome: a put is in SQLite before the next macrotask; B writes on receipt.
    await immediate();
    durable = (performance.now() - t0) / 1000;
  }
  await ctx.io.mark('end');
  const seconds = (tEnd - t0) / 1000;
  return {
    values: {
      seconds,
      updatesPerSec: got / seconds,
      delivered: got,
      writerSeconds: (tWritten - t0) / 1000,
      ...(Number.isNaN(durable) ? {} : { durableSeconds: durable }),
    },
    notes,
  };
}

/** Paced stream: `rate` writes/s from A; per-write propagation latency to B. */
export async function paced(ctx: WorkloadContext, p: PacedParams): Promise<WorkloadResult> {
  const room = `paced-${randomUUID()}`;
  const a = await ctx.kit.open({ url: ctx.url, room, peers: 1 });
  const b = await ctx.kit.open({ url: ctx.url, room, peers: 1 });
  await Promise.all([a.ready(p.timeoutMs), b.ready(p.timeoutMs)]);
  const sent = new Float64Array(p.writes);
  const latency = new Float64Array(p.writes).fill(Number.NaN);
  let got = 0;
  const d = deadline(p.timeoutMs);
  b.onRemote((id, field) => {
    if (field !== 'v' || id.charCodeAt(0) !== 112 /* p */) return;
    const i = Number(id.slice(1));
    if (!Number.isNaN(latency[i]!)) return;
    latency[i] = performance.now() - sent[i]!;
    if (++got === p.writes) d.done();
  });
  const t0 = performance.now();
  let i = 0;
  for (let ticks = 0; i < p.writes && ticks < p.writes * 4; ticks++) {
    const due = Math.min(p.writes, Math.floor(((performance.now() - t0) * p.rate) / 1000) + 1);
    for (; i < due; i++) {
      sent[i] = performance.now();
      a.put(`p${i}`, { v: i });
    }
    await sleep(1);
  }
  const writeSeconds = (performance.now() - t0) / 1000;
  const complete = await d.promise;
  const values = Array.from(latency).filter((x) => !Number.isNaN(x)).sort((x, y) => x - y);
  const pct = (q: number): number => values[Math.min(values.length - 1, Math.max(0, Math.ceil((q / 100) * values.length) - 1))] ?? Number.NaN;
  return {
    values: {
      p50ms: pct(50),
      p99ms: pct(99),
      maxMs: values[values.length - 1] ?? Number.NaN,
      achievedRate: i / writeSeconds,
      delivered: got,
    },
    notes: complete ? [] : [`timed out with ${got} of ${p.writes} delivered`],
  };
}

/**
 * Fan-out: `databases` × `peers` clients; every peer writes `rate` times a second for
 * `durationMs` (70% to one of 64 shared nodes, 30% to a new node; each writer its own field
 * `w<peer>` = its sequence number, sometimes a second field too). Receivers count delivered
 * writes by the highest sequence number seen per writer, which stays exact when a server merges
 * updates.
 */
export async function fanout(ctx: WorkloadContext, p: FanoutParams): Promise<WorkloadResult> {
  const notes: string[] = [];
  const rooms = Array.from({ length: p.databases }, () => `fan-${randomUUID()}`);
  const specs = rooms.flatMap((room) => Array.from({ length: p.peers }, () => ({ url: ctx.url, room, peers: p.peers - 1 })));
  const tOpen = performance.now();
  const clients = await openMany(ctx.kit, specs, 25);
  await Promise.all(clients.map((c) => c.ready(p.timeoutMs)));
  const openSeconds = (performance.now() - tOpen) / 1000;
  let delivered = 0;
  clients.forEach((c) => {
    const last = new Int32Array(p.peers).fill(-1);
    c.onRemote((_id, field, value) => {
      if (field.charCodeAt(0) !== 119 /* w */ || typeof value !== 'number') return;
      const w = Number(field.slice(1));
      if (value > last[w]!) {
        delivered += value - last[w]!;
        last[w] = value;
      }
    });
  });
  const seq = new Int32Array(clients.length);
  let rnd = 0x2545f491;
  const random = (): number => {
    rnd ^= rnd << 13;
    rnd ^= rnd >>> 17;
    rnd ^= rnd << 5;
    return (rnd >>> 0) / 4294967296;
  };
  await ctx.io.mark('start');
  const total = clients.length;
  const t0 = performance.now();
  let written = 0;
  for (let ticks = 0; ticks < p.durationMs; ticks++) {
    const elapsed = performance.now() - t0;
    if (elapsed >= p.durationMs) break;
    const due = Math.floor((elapsed * p.rate * total) / 1000);
    for (; written < due; written++) {
      const k = written % total;
      const peer = k % p.peers;
      const s = seq[k]!++;
      const id = random() < 0.3 ? `n${peer}-${s}` : `k${Math.floor(random() * 64)}`;
      const data: Record<string, number> = { [`w${peer}`]: s };
      if (random() < 0.3) data[`x${peer}`] = s;
      clients[k]!.put(id, data);
    }
    await sleep(2);
  }
  const window = (performance.now() - t0) / 1000;
  const deliveredInWindow = delivered;
  const expected = written * (p.peers - 1);
  const drainTimeout = Math.max(10_000, p.durationMs);
  const tDrain = performance.now();
  for (let i = 0; delivered < expected && i < drainTimeout / 10; i++) await sleep(10);
  const drainSeconds = (performance.now() - tDrain) / 1000;
  if (delivered < expected) notes.push(`${expected - delivered} of ${expected} deliveries still missing ${(drainTimeout / 1000).toFixed(0)} s after the window`);
  await ctx.io.mark('end');
  const values = {
    writes: written,
    writesPerSec: written / window,
    deliveredPerSec: deliveredInWindow / window,
    drainSeconds,
    delivered,
    expected,
    openSeconds,
    driverRssMiB: process.memoryUsage().rss / 2 ** 20,
  };
  await closeAll(clients, 5000);
  return { values, notes };
}

/** A TCP pass-through that counts the bytes each way (the wire of one client). */
async function countingProxy(target: URL): Promise<{ url: string; down: () => number; up: () => number; firstDown: () => number; lastDown: () => number; close: () => void }> {
  let down = 0;
  let firstDown = NaN;
  let lastDown = NaN;
  let up = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      up += chunk.length;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (down === 0) firstDown = performance.now();
      lastDown = performance.now();
      down += chunk.length;
      client.write(chunk);
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `ws://127.0.0.1:${port}`,
    down: () => down,
    up: () => up,
    firstDown: () => firstDown,
    lastDown: () => lastDown,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * Seed of the cold sync, in its own process (it plays the part a server plays for the peers, so
 * it must not share a core with the joining replica): A writes `nodes` nodes in one transaction
 * and stays online until the parent ends the process.
 */
export async function seed(ctx: WorkloadContext, p: ColdParams): Promise<WorkloadResult> {
  const a = await ctx.kit.open({ url: ctx.url, room: p.room, peers: 0 });
  await a.ready(p.timeoutMs);
  a.putMany('c', p.nodes);
  return { values: { stateBytes: a.stateBytes() } };
}

/**
 * Cold sync: A (the seed process) holds `nodes` nodes and is online; a warm-up replica proves
 * the server (or A) serves them; then a fresh replica C joins through a byte-counting proxy:
 * seconds until C is synced and holds every node, and bytes on its wire.
 */
export async function cold(ctx: WorkloadContext, p: ColdParams): Promise<WorkloadResult> {
  const room = p.room;
  const notes: string[] = [];
  const w = await ctx.kit.open({ url: ctx.url, room, peers: 1 });
  await w.ready(p.timeoutMs);
  if (!(await untilRemote(w, () => w.size() === p.nodes, p.timeoutMs))) throw new Error(`cold: warm-up replica has ${w.size()} of ${p.nodes} nodes`);
  await w.close();
  const proxy = await countingProxy(new URL(ctx.url));
  const stages = process.env.COLD_STAGES ? coldStages() : null;
  const t0 = performance.now();
  const c = await ctx.kit.open({ url: proxy.url, room, peers: 1 });
  const tOpened = performance.now();
  stages?.watch(c, proxy);
  await c.ready(p.timeoutMs);
  const tSynced = performance.now();
  const complete = await untilRemote(c, () => c.size() === p.nodes, p.timeoutMs);
  const tAll = performance.now();
  if (stages) await stages.report(t0, tSynced, tAll, notes);
  if (!complete) notes.push(`C holds ${c.size()} of ${p.nodes} nodes after ${p.timeoutMs / 1000} s`);
  if (tAll - tSynced > 1) notes.push(`'synced' came ${((tAll - tSynced) / 1000).toFixed(2)} s before the last node`);
  const values = {
    seconds: (tAll - t0) / 1000,
    openSeconds: (tOpened - t0) / 1000,
    syncedSeconds: (tSynced - t0) / 1000,
    bytesDown: proxy.down(),
    bytesUp: proxy.up(),
  };
  proxy.close();
  return { values, notes };
}

/**
 * Diagnostics of one cold sync (COLD_STAGES=1, not for figures of record): C's first and last byte
 * down, its longest transaction (the apply of the step 2, whichever system), and the GCs of this
 * process in the window, by kind, each placed before, in or after that transaction.
 */
function coldStages(): {
  watch(c: BenchClient, proxy: { firstDown(): number; lastDown(): number }): void;
  report(t0: number, tSynced: number, tEnd: number, notes: string[]): Promise<void>;
} {
  const gcs: Array<{ at: number; ms: number; kind: number }> = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ at: e.startTime, ms: e.duration, kind: (e as unknown as { detail: { kind: number } }).detail.kind });
  });
  obs.observe({ entryTypes: ['gc'] });
  let byteTimes: { firstDown(): number; lastDown(): number } | null = null;
  const cpu0 = process.cpuUsage();
  const main0 = process.threadCpuUsage();
  let longest = { start: NaN, end: NaN };
  const heap0 = getHeapStatistics();
  return {
    watch(c, proxy) {
      const h = c.handle as { doc?: unknown; document?: unknown; awareness?: { doc?: unknown } };
      const doc = (h.doc ?? h.document ?? h.awareness?.doc) as { on(e: string, f: () => void): void } | undefined;
      let start = 0;
      doc?.on('beforeTransaction', () => {
        start = performance.now();
      });
      doc?.on('afterTransaction', () => {
        const end = performance.now();
        if (!(end - start <= longest.end - longest.start)) longest = { start, end };
      });
      byteTimes = proxy;
    },
    async report(t0, tSynced, tEnd, notes) {
      const cpu = process.cpuUsage(cpu0);
      const main = process.threadCpuUsage(main0);
      await sleep(50);
      obs.disconnect();
      const inWin = gcs.filter((g) => g.at >= t0 && g.at <= tEnd);
      const where = (g: { at: number }): string => (g.at < longest.start ? 'before' : g.at <= longest.end ? 'in' : 'after');
      const kinds: Record<number, string> = { 1: 'scav', 2: 'minor', 4: 'MC', 8: 'incr', 16: 'weak' };
      const sum: Record<string, { n: number; ms: number }> = {};
      for (const g of inWin) {
        const k = `${where(g)}:${kinds[g.kind] ?? g.kind}`;
        (sum[k] ??= { n: 0, ms: 0 }).n++;
        sum[k].ms += g.ms;
      }
      const f = (x: number): string => (x - t0).toFixed(0);
      const firstByte = byteTimes?.firstDown() ?? NaN;
      const lastByte = byteTimes?.lastDown() ?? NaN;
      notes.push(
        `stages ms: first byte ${f(firstByte)}, last byte ${f(lastByte)}, longest tx ${f(longest.start)}–${f(longest.end)} (${(longest.end - longest.start).toFixed(0)}), synced ${f(tSynced)}, end ${f(tEnd)}; heap at C's open ${(heap0.used_heap_size / 2 ** 20).toFixed(0)} MiB; CPU ms (open to end, this process) main thread ${((main.user + main.system) / 1000).toFixed(0)}, all threads ${((cpu.user + cpu.system) / 1000).toFixed(0)}; GCs ` +
          Object.entries(sum)
            .map(([k, v]) => `${k} ${v.n}×/${v.ms.toFixed(0)}ms`)
            .join(', ') +
          `; GCs after the apply: ${inWin
            .filter((g) => g.at > longest.end)
            .map((g) => `${kinds[g.kind] ?? g.kind} at ${f(g.at)} ${g.ms.toFixed(0)}ms`)
            .join(', ')}`,
      );
    },
  };
}

/** Full GCs in this process, then its memory (the driver runs with --expose-gc). */
type Gc = (options?: unknown) => void;
function settled(gc: Gc | undefined, times: number): NodeJS.MemoryUsage {
  for (let i = 0; i < times; i++) gc?.();
  return process.memoryUsage();
}

/** Sockets this process holds open (Linux /proc/self/fd; -1 elsewhere): one per replica for every system. */
function openSockets(): number {
  try {
    return readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    }).length;
  } catch {
    return -1;
  }
}

/**
 * Opens the replicas of `specs` (whole documents), renews their awareness state (see
 * `ClientKit.renewPresence`), waits until each is ready and, when the kit can tell, holds the
 * awareness state of every replica of its document. Returns the clients and the seconds the
 * awareness exchange took after the last was ready (NaN when it did not finish in time).
 */
async function openIdle(kit: ClientKit, specs: Array<Parameters<ClientKit['open']>[0] & { peers: number }>, timeoutMs: number, renew: boolean): Promise<{ clients: BenchClient[]; awarenessSeconds: number }> {
  const clients = await openMany(kit, specs, 50);
  if (!renew) {
    await Promise.all(clients.map((c) => c.ready(timeoutMs)));
    return { clients, awarenessSeconds: 0 };
  }
  if (kit.renewPresence) for (const c of clients) kit.renewPresence(c);
  await Promise.all(clients.map((c) => c.ready(timeoutMs)));
  const t = performance.now();
  if (!kit.renewPresence || !kit.awarenessStates) return { clients, awarenessSeconds: 0 };
  // Not kit.inspect: Rhizome's db.stats() leaves per-session records behind (see ClientKit.awarenessStates).
  const all = (): boolean => clients.every((c, i) => kit.awarenessStates!(c) >= specs[i]!.peers + 1);
  while (!all()) {
    if (performance.now() - t > timeoutMs) return { clients, awarenessSeconds: Number.NaN };
    await sleep(100);
  }
  return { clients, awarenessSeconds: (performance.now() - t) / 1000 };
}

/**
 * Idle: `connections` replicas, `perRoom` to a document, connected and synced; then nothing.
 *
 * The client's own memory (the driver process) is measured the same way for every system and
 * the same way as the server's and bench/client-memory.mjs's (BENCHMARKS.md § Issue 12, Session
 * 12 (audit)): after a warm-up document opened, synced and closed (so that modules imported on
 * first connect, compiled code and caches are in the baseline of every system: y-websocket's
 * provider module and Rhizome's transport are both imported lazily), three full GCs at each point
 * (before, between the halves, after), and the second half alone as the marginal cost of a
 * replica. The figures of the earlier harness (one full GC, baseline before any client, fixed
 * costs of the process included) are kept in the same run as `clientHeap1gcKiBPerPeer` and
 * `clientGcKiBPerPeer`.
 */
export async function idle(ctx: WorkloadContext, p: IdleParams): Promise<WorkloadResult> {
  const rooms = Array.from({ length: Math.ceil(p.connections / p.perRoom) }, () => `idle-${randomUUID()}`);
  const specs = Array.from({ length: p.connections }, (_, i) => ({ url: ctx.url, room: rooms[Math.floor(i / p.perRoom)]!, peers: Math.min(p.perRoom, p.connections - Math.floor(i / p.perRoom) * p.perRoom) - 1 }));
  const gc = (globalThis as { gc?: Gc }).gc;
  const idleMs = p.idleMs ?? 6000;
  // Diagnostics (never for figures of record): BENCH_CLIENT_HEAP_SNAPSHOTS=<dir> writes the client's
  // heap snapshot after each half's figures were read; bench/heap-owners.mjs on the two with
  // (connections - half) gives the second half's heap per replica by owner.
  const snapshotDir = process.env.BENCH_CLIENT_HEAP_SNAPSHOTS;
  const snapshot = (name: string): void => {
    if (snapshotDir) writeHeapSnapshot(join(snapshotDir, `client-${process.pid}-${name}.heapsnapshot`));
  };
  const rss0 = process.memoryUsage().rss;
  // The earlier harness's baseline: one full GC, before any client of the process.
  const gc0 = settled(gc, 1);
  const sockets0 = openSockets();
  // The server's baseline stays where it was, before any client (the server's figures keep their
  // meaning; a server's fixed costs of its first connections count in them as before).
  await ctx.io.mark('before', true);
  let warmupSeconds = 0;
  if (p.warmup !== false) {
    const tw = performance.now();
    const room = `idle-warmup-${randomUUID()}`;
    const { clients: warm } = await openIdle(ctx.kit, Array.from({ length: p.perRoom }, () => ({ url: ctx.url, room, peers: p.perRoom - 1 })), p.timeoutMs, p.renewPresence !== false);
    await closeAll(warm, 5000);
    // Until its sockets are gone (a closing socket still holds its objects).
    for (let i = 0; i < 500 && openSockets() > sockets0; i++) await sleep(10);
    warmupSeconds = (performance.now() - tw) / 1000;
  }
  const base = settled(gc, 3);
  // Two halves of whole documents, the server marked (settled, after its GCs) between them: the
  // second half alone gives the marginal memory of a connection (bench/compare.ts).
  const half = idleHalf(p.connections, p.perRoom);
  const t0 = performance.now();
  const { clients: first, awarenessSeconds: aw1 } = await openIdle(ctx.kit, specs.slice(0, half), p.timeoutMs, p.renewPresence !== false);
  const t1 = performance.now();
  await ctx.io.mark('half', true);
  // The client waits idleMs; the server's marks stay right after the replicas are ready, where the
  // earlier harness took them (a relay read 6 s later holds ~1.3 KiB more RSS per connection
  // after its GCs, heap unchanged: Session 12 (audit)).
  await sleep(idleMs);
  const mid = settled(gc, 3);
  snapshot('half');
  const t2 = performance.now();
  const { clients: second, awarenessSeconds: aw2 } = await openIdle(ctx.kit, specs.slice(half), p.timeoutMs, p.renewPresence !== false);
  // Connect and sync only (the awareness exchange after the last was ready is awarenessSeconds).
  const seconds = (t1 - t0 + performance.now() - t2) / 1000 - (aw1 || 0) - (aw2 || 0);
  await ctx.io.mark('after', true);
  await sleep(idleMs);
  const rss1 = process.memoryUsage().rss;
  const gc1 = settled(gc, 1);
  const end = settled(gc, 2); // three in all
  snapshot('after');
  const n = p.connections;
  const nSecond = n - half;
  const kib = (a: number, b: number, count: number): number => (b - a) / 1024 / count;
  const values: Record<string, number> = { connectSeconds: seconds, awarenessSeconds: Math.max(aw1, aw2), clientKiBPerPeer: kib(rss0, rss1, n) };
  if (gc) {
    // Earlier harness (kept for comparison): one GC, baseline before the warm-up.
    values.clientGcKiBPerPeer = kib(gc0.rss, gc1.rss, n);
    values.clientHeap1gcKiBPerPeer = kib(gc0.heapUsed, gc1.heapUsed, n);
    // What the second and third full GC free after the first (the earlier harness ran one).
    values.clientHeapFreedByGc23KiBPerPeer = kib(end.heapUsed, gc1.heapUsed, n);
    // This harness: three GCs, baseline after the warm-up; and the second half alone.
    values.clientHeapKiBPerPeer = kib(base.heapUsed, end.heapUsed, n);
    // The heap with the ArrayBuffers' bytes (`heapUsed` leaves out typed arrays' memory: Rhizome's
    // peer meters are rows of typed arrays since Session 13, peerpark).
    values.clientHeapBuffersKiBPerPeer = kib(base.heapUsed + base.arrayBuffers, end.heapUsed + end.arrayBuffers, n);
    values.clientRssSettledKiBPerPeer = kib(base.rss, end.rss, n);
    if (nSecond > 0 && half > 0) {
      values.clientHeapMarginalKiBPerPeer = kib(mid.heapUsed, end.heapUsed, nSecond);
      values.clientRssMarginalKiBPerPeer = kib(mid.rss, end.rss, nSecond);
    }
    // What the warm-up left (the process's fixed costs of a first connection), KiB in all.
    values.clientWarmupHeapKiB = kib(gc0.heapUsed, base.heapUsed, 1);
    (gc as Gc)({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    const reduced = process.memoryUsage();
    values.clientRssReducedKiBPerPeer = kib(base.rss, reduced.rss, n);
  }
  // Were they all connected and synced when their memory was read (read after it, so the check
  // allocates nothing that was measured)?
  values.clientSockets = openSockets() - sockets0;
  if (ctx.kit.inspect) {
    const clients = [...first, ...second];
    let synced = 0;
    let awareness = 0;
    let peersShort = 0;
    for (let i = 0; i < clients.length; i++) {
      const st = ctx.kit.inspect(clients[i]!);
      if (st.synced && (st.connected || specs[i]!.peers === 0)) synced++;
      if (st.peers !== null && st.peers < specs[i]!.peers) peersShort++;
      awareness += st.awarenessStates;
    }
    values.clientsSynced = synced;
    values.clientsMissingPeers = peersShort;
    values.clientAwarenessStatesPerPeer = awareness / clients.length;
  }
  if (p.warmup !== false) values.warmupSeconds = warmupSeconds;
  const notes = Number.isNaN(values.awarenessSeconds) ? [`not every replica held the awareness states of its document after ${p.timeoutMs / 1000} s`] : [];
  return { values, notes };
}
