// Client CPU per frame, net link vs ws link, in one process, interleaved (Session 15, heaptrim).
// The server (a `ws` WebSocketServer, as the relay runs it) is a child process, so its CPU is not
// counted. Send: the client sends blocks of 64 B / 1 KiB frames, 100 per tick (corked, one write
// per tick), and waits until the server counted them. Receive: the server sends blocks of frames
// as fast as its socket takes them; the client counts. CPU = process.cpuUsage (user + system) of
// the client over the block, per frame.
//   node --conditions=rhizome-source --import tsx bench/results/2026-12-01-heaptrim15-linkbench.mts [rounds]
import { fork } from 'node:child_process';
import { openLink, type Link } from '../../packages/transport-relay/src/link.js';

if (process.argv[2] === '--server') {
  const { WebSocketServer } = await import('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 << 20 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws) => {
    let count = 0;
    ws.on('message', (data: Buffer) => {
      if (data.length === 1 && data[0] === 0xff) {
        ws.send(Buffer.from(JSON.stringify({ count })));
        count = 0;
        return;
      }
      if (data.length === 2 && data[0] === 0xfe) {
        // send N frames of size given
        const size = data[1] === 2 ? 1 << 20 : data[1] === 1 ? 1024 : 64;
        const n = size === 1 << 20 ? 100 : 20_000;
        const frame = Buffer.alloc(size, 7);
        let i = 0;
        const pump = (): void => {
          while (i < n) {
            ws.send(frame);
            i++;
            if (ws.bufferedAmount > 1 << 20) return void setImmediate(pump);
          }
          ws.send(Buffer.from([0xee]));
        };
        pump();
        return;
      }
      count++;
    });
  });
  process.send!({ port: (wss.address() as { port: number }).port });
} else {
  const rounds = Number(process.argv[2] ?? 6);
  const child = fork(new URL(import.meta.url), ['--server'], { execArgv: process.execArgv });
  const port = await new Promise<number>((r) => child.on('message', (m: { port: number }) => r(m.port)));
  const url = `ws://127.0.0.1:${port}`;
  const links: Record<string, Link> = {};
  const inbox: Record<string, { count: number; wake: (() => void) | null; reply: ((s: string) => void) | null }> = {};
  for (const impl of ['net', 'ws'] as const) {
    const link = await openLink(url, { timeoutMs: 5000, maxPayload: 64 << 20, implementation: impl });
    const box = { count: 0, wake: null as (() => void) | null, reply: null as ((s: string) => void) | null };
    link.handler = {
      onLinkFrame(_l, f) {
        if (f.length === 1 && f[0] === 0xee) return box.wake?.();
        if (f[0] === 0x7b) return box.reply?.(Buffer.from(f).toString());
        box.count++;
      },
      onLinkClose() {},
    };
    links[impl] = link;
    inbox[impl] = box;
  }
  const cpu = (): number => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const sendBlock = async (impl: string, size: number, n: number): Promise<number> => {
    const link = links[impl]!;
    const frame = new Uint8Array(size).fill(1);
    const t0 = cpu();
    for (let i = 0; i < n; i += 100) {
      for (let j = 0; j < 100; j++) link.send(frame);
      if (link.bufferedAmount > 1 << 20) await link.whenDrained(1 << 19);
      else await new Promise((r) => setImmediate(r));
    }
    const t1 = cpu();
    const reply = new Promise<string>((r) => (inbox[impl]!.reply = r));
    link.send(Uint8Array.of(0xff));
    const { count } = JSON.parse(await reply) as { count: number };
    if (count !== n) throw new Error(`${impl}: server counted ${count} of ${n}`);
    return (t1 - t0) / n;
  };
  const recvBlock = async (impl: string, size: number): Promise<number> => {
    const n = size === 1 << 20 ? 100 : 20_000;
    const box = inbox[impl]!;
    box.count = 0;
    const done = new Promise<void>((r) => (box.wake = r));
    const t0 = cpu();
    links[impl]!.send(Uint8Array.of(0xfe, size === 1 << 20 ? 2 : size === 1024 ? 1 : 0));
    await done;
    const t1 = cpu();
    if (box.count !== n) throw new Error(`${impl}: got ${box.count}`);
    return (t1 - t0) / n;
  };
  const results: Record<string, number[]> = {};
  const add = (k: string, v: number): void => void (results[k] ??= []).push(v);
  // warm-up
  for (const impl of ['net', 'ws']) {
    await sendBlock(impl, 64, 20_000);
    await recvBlock(impl, 64);
  }
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['net', 'ws'] : ['ws', 'net'];
    for (const impl of order) {
      add(`${impl} send 64 B`, await sendBlock(impl, 64, 20_000));
      add(`${impl} send 1 KiB`, await sendBlock(impl, 1024, 20_000));
      add(`${impl} receive 64 B`, await recvBlock(impl, 64));
      add(`${impl} receive 1 KiB`, await recvBlock(impl, 1024));
      add(`${impl} receive 1 MiB`, await recvBlock(impl, 1 << 20));
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`load ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}; ${rounds} rounds, 20,000 frames per block (100 of 1 MiB); client CPU µs per frame: median (min–max)`);
  for (const k of Object.keys(results).sort()) {
    const xs = results[k]!;
    console.log(`${k.padEnd(18)} ${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`);
  }
  for (const l of Object.values(links)) l.close(1000, 'done');
  child.kill();
}
