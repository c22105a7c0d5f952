// The workloads of the comparison, written once against `ClientKit` and run in a driver process
// (bench/compare/driver.ts) for each system. Every wait is bounded by a time-out; every loop by
// a count. Times within one process use performance.now(); times compared with the server's
// use performance.timeOrigin + performance.now() (one clock on one machine).
import { randomUUID } from 'node:crypto';
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
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
async function countingProxy(target: URL): Promise<{ url: string; down: () => number; up: () => number; close: () => void }> {
  let down = 0;
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
  const t0 = performance.now();
  const c = await ctx.kit.open({ url: proxy.url, room, peers: 1 });
  const tOpened = performance.now();
  await c.ready(p.timeoutMs);
  const tSynced = performance.now();
  const complete = await untilRemote(c, () => c.size() === p.nodes, p.timeoutMs);
  const tAll = performance.now();
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

/** Idle: `connections` replicas, `perRoom` to a document, connected and synced; then nothing. */
export async function idle(ctx: WorkloadContext, p: IdleParams): Promise<WorkloadResult> {
  const rooms = Array.from({ length: Math.ceil(p.connections / p.perRoom) }, () => `idle-${randomUUID()}`);
  const specs = Array.from({ length: p.connections }, (_, i) => ({ url: ctx.url, room: rooms[Math.floor(i / p.perRoom)]!, peers: Math.min(p.perRoom, p.connections - Math.floor(i / p.perRoom) * p.perRoom) - 1 }));
  const gc = (globalThis as { gc?: () => void }).gc;
  const rss0 = process.memoryUsage().rss;
  gc?.();
  const gc0 = process.memoryUsage();
  await ctx.io.mark('before', true);
  // Two halves of whole documents, the server marked (settled, after its GCs) between them: the
  // second half alone gives the marginal memory of a connection (bench/compare.ts).
  const half = idleHalf(p.connections, p.perRoom);
  const t0 = performance.now();
  const first = await openMany(ctx.kit, specs.slice(0, half), 50);
  await Promise.all(first.map((c) => c.ready(p.timeoutMs)));
  const t1 = performance.now();
  await ctx.io.mark('half', true);
  const t2 = performance.now();
  const second = await openMany(ctx.kit, specs.slice(half), 50);
  await Promise.all(second.map((c) => c.ready(p.timeoutMs)));
  const seconds = (t1 - t0 + performance.now() - t2) / 1000;
  await ctx.io.mark('after', true);
  const rss1 = process.memoryUsage().rss;
  // The same after a full GC in this process (the driver runs with --expose-gc), as for the server.
  gc?.();
  const gc1 = process.memoryUsage();
  const values: Record<string, number> = { connectSeconds: seconds, clientKiBPerPeer: (rss1 - rss0) / 1024 / p.connections };
  if (gc) {
    values.clientGcKiBPerPeer = (gc1.rss - gc0.rss) / 1024 / p.connections;
    values.clientHeapKiBPerPeer = (gc1.heapUsed - gc0.heapUsed) / 1024 / p.connections;
  }
  return { values };
}
