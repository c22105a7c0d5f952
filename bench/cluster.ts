// Relay scale-out benchmark: 1, 2 and 3 relay instances on one Redis (and the single-process
// relay without Redis), each a real `rhizome-relay` process; a real redis-server.
//
//   npm run bench -- --only cluster [--quick]
//
// - Fan-out: one writer, 30 receivers spread round-robin over the instances (the writer on the
//   first), 64-byte BROADCAST frames: aggregate delivered frames/s, and relay CPU (all instances
//   together, from /proc) per delivery; Redis's own CPU per delivery beside it.
// - Same- vs cross-instance CPU: the writer on instance 1 and every receiver on instance 1
//   (same) or on instance 2 (cross).
// - Latency: one sender, one receiver, SEND at a fixed rate; same instance vs across instances.
// - Hocuspocus 4.7 with @hocuspocus/extension-redis on two instances, in the same run: one
//   writer, 30 receivers on the other instance, one Y.Map.set per update; server CPU (both
//   instances) per delivered update.
//
// The clients run in this process and speak the relay protocol directly (no Yjs, no sealing):
// what is measured is the relays' work.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { deriveTopic } from '@rhizome/core';
import { startRedis, startRelayProcess, type RedisProcess, type RelayProcess } from '@rhizome/relay/testing';
import { DATA_HEADER_BYTES, FrameType, encodeHello, encodeTopicFrame, readU32, utf8 } from '@rhizome/transport-relay/protocol';
import { fmt, percentile, summarize, type BenchContext } from './harness.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const PEERS = join(HERE, 'peers');
const RECEIVERS = 30;
const PAYLOAD = 64;
const TICK_MS = 1000 / 100; // /proc/<pid>/stat counts in clock ticks of 10 ms (USER_HZ 100)

/** CPU time (user + system) of a process so far, in ms, from /proc/<pid>/stat. */
function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

const RELAY_LIMITS = [
  '--max-frames-per-second', '1000000000', '--frame-burst', '1000000000',
  '--max-bytes-per-second', '1000000000000', '--byte-burst', '1000000000000',
  '--max-buffered-bytes', '536870912', '--max-connections-per-ip', '100000', '--max-connections', '100000',
];

/** A relay protocol client: HELLO, JOIN, counts DELIVERs, records PEER_JOINED sessions. */
class Client {
  readonly ws: WebSocket;
  topicId = 0;
  delivered = 0;
  readonly peers = new Map<string, number>();
  onDeliver: ((frame: Buffer) => void) | null = null;
  /** Shared by every client: a check waits for a frame at any of them. */
  static #waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer) => {
      switch (data[0]) {
        case FrameType.DELIVER:
          this.delivered++;
          this.onDeliver?.(data);
          break;
        case FrameType.JOINED:
          this.topicId = readU32(data, 1);
          break;
        case FrameType.PEER_JOINED:
          this.peers.set(data.subarray(10).toString(), readU32(data, 5));
          break;
        default:
          break;
      }
      for (const w of Client.#waiters.splice(0)) w();
    });
  }

  static async open(url: string, name: string, topic: Uint8Array): Promise<Client> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.binaryType = 'nodebuffer';
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const c = new Client(ws);
    ws.send(encodeHello(utf8(name), null, globalThis.crypto.getRandomValues(new Uint8Array(16))));
    ws.send(encodeTopicFrame(FrameType.JOIN, topic));
    await c.until(() => c.topicId !== 0, 'JOINED');
    return c;
  }

  /** Resolves when `check()` holds (re-checked on every frame), or rejects after 30 s. */
  until(check: () => boolean, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench client: no ${what} within 30 s`)), 30_000);
      const test = (): void => {
        if (check()) {
          clearTimeout(timer);
          resolve();
        } else Client.#waiters.push(test);
      };
      Client.#waiters.push(test);
    });
  }

  close(): void {
    this.ws.terminate();
  }
}

interface Layout {
  /** Instance index of the writer and of each receiver. */
  writer: number;
  receivers: number[];
}

async function fanout(relays: RelayProcess[], layout: Layout, frames: number, tag: string): Promise<{ perSec: number; cpuUs: number; redisUs: number }> {
  const topic = deriveTopic(`cluster bench ${tag} ${Math.random()}`);
  const receivers = await Promise.all(layout.receivers.map((i, k) => Client.open(relays[i]!.url, `r${k}`, topic)));
  const writer = await Client.open(relays[layout.writer]!.url, 'writer', topic);
  await writer.until(() => writer.peers.size === receivers.length, 'pairing with every receiver');
  const frame = Buffer.alloc(DATA_HEADER_BYTES + PAYLOAD);
  frame[0] = FrameType.BROADCAST;
  frame.writeUInt32BE(writer.topicId, 1);
  const pids = relays.map((r) => r.child.pid!);
  const cpu0 = pids.map(procCpuMs);
  const redis0 = redisPid === 0 ? 0 : procCpuMs(redisPid);
  const started = performance.now();
  const lowest = (): number => Math.min(...receivers.map((r) => r.delivered));
  // A window of frames in flight, so the measurement is the steady state, not a buffer fill.
  const window = 2000;
  for (let sent = 0; sent < frames; ) {
    const burst = Math.min(frames - sent, 250);
    for (let i = 0; i < burst; i++) writer.ws.send(frame);
    sent += burst;
    if (sent - lowest() > window) await receivers[0]!.until(() => sent - lowest() <= window / 2, 'progress');
  }
  await Promise.all(receivers.map((r) => r.until(() => r.delivered >= frames, 'every frame')));
  const seconds = (performance.now() - started) / 1000;
  const cpu = pids.map(procCpuMs).reduce((s, v, i) => s + v - cpu0[i]!, 0);
  const redisCpu = redisPid === 0 ? 0 : procCpuMs(redisPid) - redis0;
  for (const c of [writer, ...receivers]) c.close();
  const deliveries = frames * receivers.length;
  return { perSec: deliveries / seconds, cpuUs: (cpu * 1000) / deliveries, redisUs: (redisCpu * 1000) / deliveries };
}

async function latency(relays: RelayProcess[], from: number, to: number, rate: number, seconds: number): Promise<{ p50: number; p99: number }> {
  const topic = deriveTopic(`cluster latency ${Math.random()}`);
  const b = await Client.open(relays[to]!.url, 'b', topic);
  const a = await Client.open(relays[from]!.url, 'a', topic);
  await a.until(() => a.peers.has('b'), 'pairing');
  const samples: number[] = [];
  b.onDeliver = (f) => samples.push(performance.now() - f.readDoubleBE(DATA_HEADER_BYTES));
  const frame = Buffer.alloc(DATA_HEADER_BYTES + PAYLOAD);
  frame[0] = FrameType.SEND;
  frame.writeUInt32BE(a.topicId, 1);
  frame.writeUInt32BE(a.peers.get('b')!, 5);
  const total = Math.round(rate * seconds);
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    // Yield every frame (setImmediate when the next is due within 1 ms), so receiving runs too.
    await new Promise((r) => (wait > 1 ? setTimeout(r, wait) : setImmediate(r)));
    frame.writeDoubleBE(performance.now(), DATA_HEADER_BYTES);
    a.ws.send(Buffer.from(frame));
  }
  await b.until(() => b.delivered >= total, 'every latency frame');
  a.close();
  b.close();
  const warm = samples.slice(Math.floor(samples.length / 10));
  return { p50: percentile(warm, 50) * 1000, p99: percentile(warm, 99) * 1000 };
}

let redisPid = 0;

async function startRelays(n: number, redis: RedisProcess | null): Promise<RelayProcess[]> {
  const args = ['--port', '0', '--host', '127.0.0.1', ...RELAY_LIMITS, ...(redis ? ['--redis', redis.url] : [])];
  const relays = await Promise.all(Array.from({ length: n }, () => startRelayProcess(args, { timeoutMs: 60_000 })));
  if (redis && n > 1) {
    // Wait until every instance sees the others (heartbeats).
    for (const r of relays) {
      for (let i = 0; i < 200; i++) {
        const h = (await (await fetch(`${r.url.replace(/^ws/, 'http')}/healthz`)).json()) as { cluster?: { instances: number } };
        if (h.cluster?.instances === n) break;
        await new Promise((res) => setTimeout(res, 50));
      }
    }
  }
  return relays;
}

async function stopRelays(relays: RelayProcess[]): Promise<void> {
  await Promise.all(relays.map((r) => r.stop()));
}

// ---------------------------------------------------------------------------------------------
// Hocuspocus with its Redis extension

interface HocusServer {
  port: number;
  pid: number;
  child: ChildProcess;
}

function startHocuspocus(redis: RedisProcess): Promise<HocusServer> {
  const child = fork(join(PEERS, 'server.mjs'), ['hocuspocus', JSON.stringify({ redis: { host: '127.0.0.1', port: redis.port } })], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`hocuspocus exited with ${code}`)));
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m.type === 'ready') resolve({ port: m.port!, pid: child.pid!, child });
    });
  });
}

interface HocusClient {
  doc: { getMap(name: string): { set(k: string, v: unknown): void; size: number }; on(e: 'update', f: () => void): void; transact(f: () => void): void };
  provider: { isSynced: boolean; destroy(): void; on(e: string, f: () => void): void };
  updates: number;
}

async function hocuspocusFanout(redis: RedisProcess, updates: number): Promise<{ perSec: number; cpuUs: number; redisUs: number }> {
  const servers = [await startHocuspocus(redis), await startHocuspocus(redis)];
  const Y = (await import(join(PEERS, 'node_modules/yjs/dist/yjs.mjs'))) as { Doc: new () => HocusClient['doc'] };
  const { HocuspocusProvider } = (await import(join(PEERS, 'node_modules/@hocuspocus/provider/dist/hocuspocus-provider.esm.js'))) as {
    HocuspocusProvider: new (o: Record<string, unknown>) => HocusClient['provider'];
  };
  const room = `bench-${Math.random()}`;
  const open = async (server: HocusServer): Promise<HocusClient> => {
    const doc = new Y.Doc();
    const provider = new HocuspocusProvider({ url: `ws://127.0.0.1:${server.port}`, name: room, document: doc, WebSocketPolyfill: WebSocket });
    const client: HocusClient = { doc, provider, updates: 0 };
    await new Promise<void>((resolve) => (provider.isSynced ? resolve() : provider.on('synced', () => resolve())));
    // Delivered = distinct keys arrived (Hocuspocus may merge several updates into one message).
    const nodes = doc.getMap('nodes');
    doc.on('update', () => (client.updates = nodes.size));
    return client;
  };
  const writer = await open(servers[0]!);
  const receivers: HocusClient[] = [];
  for (let i = 0; i < RECEIVERS; i++) receivers.push(await open(servers[1]!));
  const map = writer.doc.getMap('nodes');
  const cpu0 = servers.map((s) => procCpuMs(s.pid));
  const redis0 = procCpuMs(redisPid);
  const started = performance.now();
  const deadline = started + 120_000;
  for (let i = 0; i < updates; i++) {
    map.set(`k${i}`, i);
    if (i % 50 === 49) {
      // Bounded in flight, as the relay runs are.
      while (Math.min(...receivers.map((r) => r.updates)) < i - 500 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    }
  }
  while (Math.min(...receivers.map((r) => r.updates)) < updates && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - started) / 1000;
  const got = receivers.reduce((s, r) => s + Math.min(r.updates, updates), 0);
  const cpu = servers.reduce((s, srv, i) => s + procCpuMs(srv.pid) - cpu0[i]!, 0);
  const redisCpu = procCpuMs(redisPid) - redis0;
  for (const c of [writer, ...receivers]) c.provider.destroy();
  for (const s of servers) s.child.kill('SIGTERM');
  return { perSec: got / seconds, cpuUs: (cpu * 1000) / got, redisUs: (redisCpu * 1000) / got };
}

// ---------------------------------------------------------------------------------------------

export async function run(ctx: BenchContext): Promise<void> {
  const frames = ctx.quick ? 5_000 : 40_000;
  const runs = ctx.runs;
  const redis = await startRedis();
  redisPid = redis.pid;
  try {
    const spread = (n: number): Layout => ({ writer: 0, receivers: Array.from({ length: RECEIVERS }, (_, k) => k % n) });
    const rows: Array<Record<string, string | number>> = [];
    const results: Record<string, { perSec: number; cpuUs: number; redisUs: number }> = {};
    const configs: Array<{ label: string; n: number; redis: boolean; layout: Layout }> = [
      { label: '1 instance, no Redis (today\'s relay)', n: 1, redis: false, layout: spread(1) },
      { label: '2 instances, receivers spread', n: 2, redis: true, layout: spread(2) },
      { label: '3 instances, receivers spread', n: 3, redis: true, layout: spread(3) },
      { label: '2 instances, all on one (same-instance)', n: 2, redis: true, layout: { writer: 0, receivers: Array<number>(RECEIVERS).fill(0) } },
      { label: '2 instances, writer alone (cross-instance)', n: 2, redis: true, layout: { writer: 0, receivers: Array<number>(RECEIVERS).fill(1) } },
    ];
    let flagsNoted = false;
    for (const c of configs) {
      const relays = await startRelays(c.n, c.redis ? redis : null);
      if (!flagsNoted) {
        // rhizome-relay re-launches itself with the relay's Node flags (same pid): say what it ran with.
        const semi = readFileSync(`/proc/${relays[0]!.child.pid}/cmdline`, 'utf8').split('\0').find((a) => a.startsWith('--max-semi-space-size'));
        ctx.note(`Relay instances: rhizome-relay processes, started with ${semi ?? "V8's default semi-spaces"} (the relay's Node flags, as \`rhizome relay\` runs).`);
        flagsNoted = true;
      }
      const per: number[] = [];
      const cpu: number[] = [];
      const rcpu: number[] = [];
      try {
        await fanout(relays, c.layout, Math.min(frames, 2000), `${c.label} warm-up`);
        for (let i = 0; i < runs; i++) {
          const r = await fanout(relays, c.layout, frames, c.label);
          per.push(r.perSec);
          cpu.push(r.cpuUs);
          rcpu.push(r.redisUs);
        }
      } catch (error) {
        // Reported, not fatal: e.g. Redis disconnecting a subscriber that fell 32 MiB behind on
        // an overloaded machine (the outage path drops that instance's remote pairs).
        ctx.note(`fan-out '${c.label}' did not complete: ${(error as Error).message}`);
      } finally {
        await stopRelays(relays);
      }
      if (per.length === 0) {
        rows.push({ configuration: c.label, 'delivered frames/s (all receivers)': 'did not complete', 'relay CPU µs/delivery (all instances)': '—', 'Redis CPU µs/delivery': '—' });
        results[c.label] = { perSec: Number.NaN, cpuUs: Number.NaN, redisUs: Number.NaN };
        continue;
      }
      const res = { perSec: summarize(per).median, cpuUs: summarize(cpu).median, redisUs: summarize(rcpu).median };
      results[c.label] = res;
      rows.push({
        configuration: c.label,
        'delivered frames/s (all receivers)': fmt(res.perSec, 0),
        'relay CPU µs/delivery (all instances)': fmt(res.cpuUs, 2),
        'Redis CPU µs/delivery': c.redis ? fmt(res.redisUs, 2) : '—',
      });
    }
    ctx.table(`Fan-out: 1 writer → ${RECEIVERS} receivers, ${PAYLOAD} B BROADCAST, ${frames} frames (median of ${runs})`, rows);

    // Latency at a fixed rate.
    const relays = await startRelays(2, redis);
    const lat: Array<Record<string, string | number>> = [];
    try {
      const rate = 2000;
      const secs = ctx.quick ? 1 : 3;
      await latency(relays, 0, 1, rate, 0.5);
      for (const [label, from, to] of [
        ['same instance', 0, 0],
        ['across instances (through Redis)', 0, 1],
      ] as const) {
        const p50s: number[] = [];
        const p99s: number[] = [];
        for (let i = 0; i < runs; i++) {
          const r = await latency(relays, from, to, rate, secs);
          p50s.push(r.p50);
          p99s.push(r.p99);
        }
        lat.push({ path: label, rate: `${rate} msg/s`, 'p50 µs': fmt(summarize(p50s).median, 0), 'p99 µs': fmt(summarize(p99s).median, 0) });
      }
    } finally {
      await stopRelays(relays);
    }
    ctx.table(`One-way latency, SEND ${PAYLOAD} B, 2 instances (median of ${runs})`, lat);

    // Hocuspocus + Redis, two instances, in the same run.
    let hocus: { perSec: number; cpuUs: number; redisUs: number } | null = null;
    if (existsSync(join(PEERS, 'node_modules/@hocuspocus/extension-redis/package.json'))) {
      hocus = await hocuspocusFanout(redis, ctx.quick ? 500 : 3000);
      ctx.table(`Hocuspocus 4.7 + @hocuspocus/extension-redis, 2 instances: 1 writer → ${RECEIVERS} receivers on the other instance, one Y.Map.set per update`, [
        {
          'delivered updates/s': fmt(hocus.perSec, 0),
          'server CPU µs/delivery (both instances)': fmt(hocus.cpuUs, 2),
          'Redis CPU µs/delivery': fmt(hocus.redisUs, 2),
        },
      ]);
    } else {
      ctx.note('Hocuspocus + Redis: bench/peers is not installed (npm run prebench); skipped.');
    }

    const same = results['2 instances, all on one (same-instance)']!;
    const cross = results['2 instances, writer alone (cross-instance)']!;
    const single = results['1 instance, no Redis (today\'s relay)']!;
    const targets: Array<Record<string, string>> = [
      {
        target: 'cross-instance CPU/delivery ≤ 2× same-instance',
        measured: `${fmt(cross.cpuUs, 2)} / ${fmt(same.cpuUs, 2)} µs = ${fmt(cross.cpuUs / same.cpuUs, 2)}×`,
        met: cross.cpuUs <= 2 * same.cpuUs ? 'yes' : 'no',
      },
      {
        target: 'same-instance in a cluster ≈ single relay (no Redis on that path)',
        measured: `${fmt(same.cpuUs, 2)} vs ${fmt(single.cpuUs, 2)} µs = ${fmt(same.cpuUs / single.cpuUs, 2)}×`,
        met: same.cpuUs <= 1.25 * single.cpuUs ? 'yes' : 'no',
      },
    ];
    if (hocus) {
      targets.push({
        target: 'Rhizome cross-instance CPU/delivery < Hocuspocus + Redis',
        measured: `${fmt(cross.cpuUs, 2)} vs ${fmt(hocus.cpuUs, 2)} µs = ${fmt(hocus.cpuUs / cross.cpuUs, 1)}× less`,
        met: cross.cpuUs < hocus.cpuUs ? 'yes' : 'no',
      });
    }
    ctx.table('Targets', targets);
  } finally {
    await redis.stop();
  }
}
