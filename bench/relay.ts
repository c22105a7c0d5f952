// Relay benchmark: forwarding throughput (64 B and 4 KiB frames), one-way latency at a fixed
// rate, and idle memory per connection — each beside a minimal bare `ws` forwarder measured in
// the same run as this machine's ceiling. The server under test runs in a child process (its
// own core and heap); the two clients run in this process. The relay's process starts with the
// relay's Node flags (RELAY_NODE_FLAGS, as `rhizome relay` and `rhizome-relay` run), the bare
// forwarder with Node's defaults (as a plain `ws` server ships); the report says which.
//
//   npm run bench -- --only relay [--quick]
//
// The same file is the child: `bench/relay.ts --relay-bench-child relay|bare`.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { deriveTopic } from '@rhizome/core';
import { maxSemiSpaceMiB, missingRelayNodeFlags } from '@rhizome/relay/node-flags';
import { fmt, fmtStats, percentile, summarize, type BenchContext } from './harness.js';

const CHILD_FLAG = '--relay-bench-child';
export type ServerKind = 'relay' | 'bare';

// ---------------------------------------------------------------------------------------------
// Child side: a server that prints READY <port>, answers `rss` on stdin with its RSS after GC.

async function childMain(kind: ServerKind): Promise<void> {
  let port: number;
  if (kind === 'relay') {
    // Started as the relay's own entry points start it (startServer passes the flags): a relay
    // bench on V8's defaults would measure a relay nobody runs.
    const missing = missingRelayNodeFlags();
    if (missing.length > 0) throw new Error(`the relay bench's server must run with the relay's Node flags (missing ${missing.join(' ')})`);
    const { createRelayServer } = await import('@rhizome/relay');
    const relay = await createRelayServer({
      port: 0,
      host: '127.0.0.1',
      maxFramesPerSecond: 1e9,
      frameBurst: 1e9,
      maxBytesPerSecond: 1e12,
      byteBurst: 1e12,
      maxBufferedBytes: 512 * 1024 * 1024,
      maxConnections: 100_000,
      maxConnectionsPerIp: 100_000,
    });
    port = relay.port;
  } else {
    // The ceiling: parse nothing, route nothing; a message from one client goes to the other.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, clientTracking: false, maxPayload: 2 * 1024 * 1024 });
    const pair: { a: WebSocket | null; b: WebSocket | null } = { a: null, b: null };
    wss.on('connection', (ws, req) => {
      if (req.url === '/a') pair.a = ws;
      else if (req.url === '/b') pair.b = ws;
      ws.on('message', (data: Buffer) => {
        // Idle-memory connections say hello once and get it echoed, as relay clients do.
        const to = req.url === '/idle' ? ws : ws === pair.a ? pair.b : pair.a;
        to?.send(data);
      });
      ws.on('error', () => {});
    });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    port = (wss.address() as { port: number }).port;
  }
  process.stdout.write(`READY ${port} ${maxSemiSpaceMiB() ?? 'default'}\n`);
  let buffer = '';
  process.stdin.on('data', (d: Buffer) => {
    buffer += d.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const cmd = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (cmd === 'cpu') {
        const u = process.cpuUsage();
        process.stdout.write(`CPU ${u.user + u.system}\n`);
      } else if (cmd === 'rss') {
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        gc?.();
        const m = process.memoryUsage();
        process.stdout.write(`RSS ${m.rss} ${m.heapUsed} ${m.external + m.arrayBuffers}\n`);
      }
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------
// Parent side

export interface ServerProc {
  port: number;
  /** The child's `--max-semi-space-size` in MiB, or `'default'` (V8's). */
  semiSpace: string;
  child: ChildProcess;
  /** RSS, V8 heap used, and external + ArrayBuffer bytes, after GC. */
  rss(): Promise<{ rss: number; heap: number; external: number }>;
  /** CPU time (user + system) the child used so far, in ms (`process.cpuUsage`, µs resolution). */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

/** Starts the server under test in its own process (exported for test/relay-node-flags.test.ts). */
export function startServer(kind: ServerKind): Promise<ServerProc> {
  // RELAY_BENCH_NODE_ARGS: extra Node flags for the server child, e.g. `--cpu-prof` (a
  // `--max-semi-space-size` there wins over the relay's, as an operator's own value does).
  const extra = (process.env.RELAY_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const relayFlags = kind === 'relay' ? missingRelayNodeFlags(extra) : [];
  const child = spawn(process.execPath, [...relayFlags, ...extra, '--expose-gc', '--conditions=rhizome-source', '--import', 'tsx', SELF, CHILD_FLAG, kind], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  const lineWaiters: Array<{ prefix: string; resolve: (line: string) => void }> = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      const i = lineWaiters.findIndex((w) => line.startsWith(w.prefix));
      if (i >= 0) lineWaiters.splice(i, 1)[0]!.resolve(line);
    }
  });
  const nextLine = (prefix: string): Promise<string> => new Promise((resolve) => lineWaiters.push({ prefix, resolve }));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const failed = exited.then(() => Promise.reject(new Error(`the ${kind} server process exited before it was ready (exit code ${child.exitCode})`)));
  return Promise.race([nextLine('READY '), failed]).then((line) => ({
    port: Number(line.split(' ')[1]),
    semiSpace: line.split(' ')[2] ?? 'default',
    child,
    async rss() {
      const reply = nextLine('RSS ');
      child.stdin!.write('rss\n');
      const [, rss, heap, external] = (await reply).split(' ').map(Number);
      return { rss: rss!, heap: heap!, external: external! };
    },
    async cpuMs() {
      const reply = nextLine('CPU ');
      child.stdin!.write('cpu\n');
      return Number((await reply).split(' ')[1]) / 1000;
    },
    async stop() {
      child.stdin!.end();
      await exited;
    },
  }));
}

function openWs(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  ws.binaryType = 'nodebuffer';
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** A sender and a receiver connected through a server; `frame(payload)` wraps a payload for the wire. */
interface Pair {
  a: WebSocket;
  b: WebSocket;
  /** Bytes the server adds in front of the payload. */
  header: number;
  frame(payload: Uint8Array): Uint8Array;
  close(): void;
}

async function barePair(port: number): Promise<Pair> {
  const a = await openWs(`ws://127.0.0.1:${port}/a`);
  const b = await openWs(`ws://127.0.0.1:${port}/b`);
  return { a, b, header: 0, frame: (p) => p, close: () => (a.terminate(), b.terminate()) };
}

async function relayPair(port: number): Promise<Pair> {
  const proto = await import('@rhizome/transport-relay/protocol');
  const url = `ws://127.0.0.1:${port}`;
  const hello = async (name: string): Promise<WebSocket> => {
    const ws = await openWs(url);
    const welcome = new Promise<void>((r) => ws.once('message', () => r()));
    ws.send(proto.encodeHello(proto.utf8(name), null));
    await welcome;
    return ws;
  };
  const a = await hello(`bench-a-${Math.random()}`);
  const b = await hello(`bench-b-${Math.random()}`);
  const topic = deriveTopic(`bench ${Math.random()}`);
  // a joins, then b: a hears PEER_JOINED(b) and learns b's session; both learn the topic id.
  const aFrames: Buffer[] = [];
  const aWait = (type: number): Promise<Buffer> =>
    new Promise((resolve) => {
      const check = (): void => {
        const f = aFrames.find((x) => x[0] === type);
        if (f) {
          a.off('message', onMsg);
          resolve(f);
        }
      };
      const onMsg = (d: Buffer): void => {
        aFrames.push(d);
        check();
      };
      a.on('message', onMsg);
      check();
    });
  const aJoined = aWait(proto.FrameType.JOINED);
  a.send(proto.encodeTopicFrame(proto.FrameType.JOIN, topic));
  const topicId = proto.readU32(await aJoined, 1);
  const peerJoined = aWait(proto.FrameType.PEER_JOINED);
  const bReady = new Promise<void>((resolve) => {
    const onMsg = (d: Buffer): void => {
      if (d[0] === proto.FrameType.PEER_JOINED) {
        b.off('message', onMsg);
        resolve();
      }
    };
    b.on('message', onMsg);
  });
  b.send(proto.encodeTopicFrame(proto.FrameType.JOIN, topic));
  const bSession = proto.readU32(await peerJoined, 5);
  await bReady;
  a.removeAllListeners('message');
  b.removeAllListeners('message');
  return {
    a,
    b,
    header: proto.DATA_HEADER_BYTES,
    frame: (p) => proto.encodeDataFrame(proto.FrameType.SEND, topicId, bSession, p),
    close: () => (a.terminate(), b.terminate()),
  };
}

/** Sends `count` frames of `size` bytes as fast as backpressure allows; returns frames/s and server CPU per frame. */
async function throughput(server: ServerProc, pair: Pair, size: number, count: number): Promise<{ fps: number; cpuUsPerFrame: number }> {
  const frame = pair.frame(new Uint8Array(size).fill(7));
  let received = 0;
  const done = new Promise<void>((resolve) => {
    pair.b.on('message', () => {
      if (++received === count) resolve();
    });
  });
  const cpu0 = await server.cpuMs();
  const t0 = performance.now();
  const HIGH = 1024 * 1024;
  for (let sent = 0; sent < count; sent++) {
    if (pair.a.bufferedAmount > HIGH) {
      await new Promise<void>((r) => pair.a.send(frame, () => r()));
    } else {
      pair.a.send(frame);
    }
  }
  await done;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = (await server.cpuMs()) - cpu0;
  pair.b.removeAllListeners('message');
  return { fps: count / seconds, cpuUsPerFrame: (cpu * 1000) / count };
}

/** Server CPU per frame at a fixed offered load (the same for both servers), in µs. */
async function cpuAtRate(server: ServerProc, pair: Pair, size: number, rate: number, seconds: number): Promise<number> {
  const total = Math.round(rate * seconds);
  const frame = pair.frame(new Uint8Array(size).fill(3));
  let received = 0;
  const done = new Promise<void>((resolve) => {
    pair.b.on('message', () => {
      if (++received === total) resolve();
    });
  });
  const cpu0 = await server.cpuMs();
  const t0 = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      for (; sent < due; sent++) pair.a.send(frame);
      if (sent >= total) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await done;
  pair.b.removeAllListeners('message');
  return (((await server.cpuMs()) - cpu0) * 1000) / total;
}

/** One-way latency at a fixed rate (timestamps in the payload; sender and receiver share a clock). */
async function latency(pair: Pair, rate: number, seconds: number): Promise<{ p50: number; p99: number; n: number }> {
  const total = Math.round(rate * seconds);
  const samples: number[] = [];
  const payload = new Uint8Array(64);
  const view = new DataView(payload.buffer);
  const done = new Promise<void>((resolve) => {
    pair.b.on('message', (d: Buffer) => {
      const sentAt = d.readDoubleLE(pair.header);
      samples.push((performance.now() - sentAt) * 1000);
      if (samples.length === total) resolve();
    });
  });
  const t0 = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      for (; sent < due; sent++) {
        view.setFloat64(0, performance.now(), true);
        pair.a.send(pair.frame(payload));
      }
      if (sent >= total) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await done;
  pair.b.removeAllListeners('message');
  const warm = samples.slice(Math.floor(samples.length * 0.05));
  return { p50: percentile(warm, 50), p99: percentile(warm, 99), n: warm.length };
}

/** RSS per idle connection: `n` connections (relay: HELLO + JOIN of one topic each). */
async function idleMemory(kind: ServerKind, n: number): Promise<{ perConnKB: number; heapPerConnKB: number; baseMiB: number; totalMiB: number }> {
  const server = await startServer(kind);
  const sockets: WebSocket[] = [];
  try {
    // One connection first, so lazily loaded code paths are in the baseline.
    const warm = kind === 'relay' ? await relayPair(server.port) : await barePair(server.port);
    warm.close();
    const base = await server.rss();
    const proto = await import('@rhizome/transport-relay/protocol');
    const topic = deriveTopic('idle');
    for (let i = 0; i < n; i += 250) {
      await Promise.all(
        Array.from({ length: Math.min(250, n - i) }, async (_, j) => {
          const ws = await openWs(`ws://127.0.0.1:${server.port}/idle`);
          sockets.push(ws);
          if (kind === 'relay') {
            const joined = new Promise<void>((resolve) => {
              const onMsg = (d: Buffer): void => {
                if (d[0] === proto.FrameType.JOINED) {
                  ws.off('message', onMsg);
                  resolve();
                }
              };
              ws.on('message', onMsg);
            });
            ws.send(proto.encodeHello(proto.utf8(`idle-${i + j}`), null));
            ws.send(proto.encodeTopicFrame(proto.FrameType.ANNOUNCE, topic));
            await joined;
          } else {
            const echoed = new Promise<void>((resolve) => ws.once('message', () => resolve()));
            ws.send(new Uint8Array(40));
            await echoed;
          }
        }),
      );
    }
    const total = await server.rss();
    return {
      perConnKB: (total.rss - base.rss) / n / 1000,
      heapPerConnKB: (total.heap + total.external - base.heap - base.external) / n / 1000,
      baseMiB: base.rss / 2 ** 20,
      totalMiB: total.rss / 2 ** 20,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
}

/** Which server runs first in run `i`: alternating, so neither always gets the warmer (or noisier) slot. */
function order(i: number): ReadonlyArray<ServerKind> {
  return i % 2 === 0 ? ['bare', 'relay'] : ['relay', 'bare'];
}

export async function run(ctx: BenchContext): Promise<void> {
  const sizes = [
    { size: 64, count: ctx.quick ? 30_000 : 200_000 },
    { size: 4096, count: ctx.quick ? 10_000 : 50_000 },
  ];
  const rows: Array<Record<string, string | number>> = [];
  const servers = { bare: await startServer('bare'), relay: await startServer('relay') };
  const semi = (s: ServerProc): string => (s.semiSpace === 'default' ? "V8's default semi-spaces" : `--max-semi-space-size=${s.semiSpace}`);
  ctx.note(`Server processes: @rhizome/relay with ${semi(servers.relay)} (the relay's Node flags, as \`rhizome relay\` runs), bare ws forwarder with ${semi(servers.bare)}.`);
  try {
    const pairs = {
      bare: await barePair(servers.bare.port),
      relay: await relayPair(servers.relay.port),
    };
    for (const { size, count } of sizes) {
      const fps: Record<ServerKind, number[]> = { bare: [], relay: [] };
      const cpu: Record<ServerKind, number[]> = { bare: [], relay: [] };
      for (const kind of ['bare', 'relay'] as const) await throughput(servers[kind], pairs[kind], size, Math.min(count, 5000)); // warm-up
      // Alternate the two servers run by run, so load from elsewhere on the machine hits both alike.
      for (let i = 0; i < ctx.runs; i++) {
        for (const kind of order(i)) {
          const r = await throughput(servers[kind], pairs[kind], size, count);
          fps[kind].push(r.fps);
          cpu[kind].push(r.cpuUsPerFrame);
        }
      }
      const bare = summarize(fps.bare);
      for (const kind of ['bare', 'relay'] as const) {
        const st = summarize(fps[kind]);
        rows.push({
          server: kind === 'bare' ? 'bare ws forwarder' : '@rhizome/relay',
          payload: `${size} B`,
          'frames/s': fmtStats(st),
          'MB/s (payload)': fmt((st.median * size) / 1e6),
          'server CPU µs/frame': fmt(summarize(cpu[kind]).median, 2),
          'vs bare (medians)': kind === 'bare' ? '1.00x' : `${(st.median / bare.median).toFixed(2)}x`,
          'vs bare (median of per-run ratios)': kind === 'bare' ? '1.00x' : `${summarize(fps.relay.map((v, i) => v / fps.bare[i]!)).median.toFixed(2)}x`,
        });
      }
    }
    ctx.table('Relay forwarding throughput, as fast as the clients go (A → server → B, server in its own process)', rows);

    // The clients share one process and one core, so the rows above are often client-bound:
    // the server's CPU per frame at the same fixed load is the steadier measure of its cost.
    const effRows: Array<Record<string, string | number>> = [];
    for (const { size, rate } of [
      { size: 64, rate: 50_000 },
      { size: 4096, rate: 10_000 },
    ]) {
      const us: Record<ServerKind, number[]> = { bare: [], relay: [] };
      for (let i = 0; i < ctx.runs; i++) {
        for (const kind of order(i)) us[kind].push(await cpuAtRate(servers[kind], pairs[kind], size, rate, ctx.quick ? 1 : 3));
      }
      const bareUs = summarize(us.bare).median;
      for (const kind of ['bare', 'relay'] as const) {
        const m = summarize(us[kind]).median;
        effRows.push({
          server: kind === 'bare' ? 'bare ws forwarder' : '@rhizome/relay',
          load: `${fmt(rate)} frames/s of ${size} B`,
          'server CPU µs/frame': fmtStats(summarize(us[kind]), 2),
          'frames/s per core (1e6 / µs)': fmt(1e6 / m),
          'vs bare': kind === 'bare' ? '1.00x' : `${(bareUs / m).toFixed(2)}x`,
        });
      }
    }
    ctx.table('Server CPU per forwarded frame at a fixed load (lower is better; capacity = 1 / cost)', effRows);
    pairs.bare.close();
    pairs.relay.close();

    const rate = 5000;
    const seconds = ctx.quick ? 1 : 3;
    const lat: Array<Record<string, string | number>> = [];
    for (const kind of ['bare', 'relay'] as const) {
      const pair = kind === 'relay' ? await relayPair(servers[kind].port) : await barePair(servers[kind].port);
      const p50s: number[] = [];
      const p99s: number[] = [];
      for (let i = 0; i < ctx.runs; i++) {
        const r = await latency(pair, rate, seconds);
        p50s.push(r.p50);
        p99s.push(r.p99);
      }
      pair.close();
      lat.push({
        server: kind === 'bare' ? 'bare ws forwarder' : '@rhizome/relay',
        rate: `${rate} msg/s, 64 B`,
        'p50 µs': fmtStats(summarize(p50s)),
        'p99 µs': fmtStats(summarize(p99s)),
      });
    }
    ctx.table(`One-way latency at a fixed rate (median of ${ctx.runs} run(s) of ${seconds} s)`, lat);
  } finally {
    await Promise.all([servers.bare.stop(), servers.relay.stop()]);
  }

  const n = ctx.quick ? 1000 : 5000;
  const mem: Array<Record<string, string | number>> = [];
  for (const kind of ['bare', 'relay'] as const) {
    const m = await idleMemory(kind, n);
    mem.push({
      server: kind === 'bare' ? 'bare ws server (one 40 B message echoed each)' : '@rhizome/relay (HELLO + one topic each)',
      connections: n,
      'RSS before (MiB)': fmt(m.baseMiB),
      'RSS after (MiB)': fmt(m.totalMiB),
      'RSS KB per connection': fmt(m.perConnKB, 2),
      'JS heap + buffers KB per connection': fmt(m.heapPerConnKB, 2),
    });
  }
  ctx.table('Idle memory per connection (server process RSS after GC)', mem);
}

if (process.argv.includes(CHILD_FLAG)) {
  const kind = process.argv[process.argv.indexOf(CHILD_FLAG) + 1] as ServerKind;
  await childMain(kind);
}
