// The `net` link (net-link.ts): Rhizome's WebSocket client on Node's sockets, against `ws`'s
// server (what the relay runs) and against scripted raw servers for what `ws` never sends.
import { createServer, Socket, type Server } from 'node:net';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, type WebSocket as WsServerSocket } from 'ws';
import { UNCORK_AT_BYTES, defaultImplementation, openLink, type Link, type LinkHandler } from './link.js';
import { prng as rng } from '../../../test/prng.js';
import { NetLink } from './net-link.js';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const OPTS = { timeoutMs: 5000, maxPayload: 1 << 20, implementation: 'net' as const };

/** A `ws` server on 127.0.0.1 (as the relay runs it): the connections it accepted, and the messages each received. */
async function wsServer(options: { maxPayload?: number } = {}): Promise<{ url: string; sockets: WsServerSocket[]; received: Buffer[]; whenReceived(n: number): Promise<void>; whenConnected(): Promise<WsServerSocket> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: options.maxPayload ?? 64 << 20 });
  cleanup.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const received: Buffer[] = [];
  const sockets: WsServerSocket[] = [];
  const waiters: Array<() => void> = [];
  const connected: Array<(ws: WsServerSocket) => void> = [];
  wss.on('connection', (ws) => {
    sockets.push(ws);
    for (const c of connected.splice(0)) c(ws);
    ws.on('message', (data: Buffer) => {
      received.push(data);
      for (const w of waiters.splice(0)) w();
    });
  });
  const { port } = wss.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    sockets,
    received,
    async whenReceived(n) {
      while (received.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    whenConnected: () => (sockets.length > 0 ? Promise.resolve(sockets[sockets.length - 1]!) : new Promise((resolve) => connected.push(resolve))),
  };
}

/** What a link told its handler. */
function recorder(link: Link): { frames: Uint8Array[]; closed: Promise<{ code: number; reason: string }>; whenFrames(n: number): Promise<void> } {
  const frames: Uint8Array[] = [];
  const waiters: Array<() => void> = [];
  let onClose!: (c: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (onClose = resolve));
  let closes = 0;
  const handler: LinkHandler = {
    onLinkFrame(l, frame) {
      expect(l).toBe(link);
      frames.push(Uint8Array.from(frame));
      for (const w of waiters.splice(0)) w();
    },
    onLinkClose(l, code, reason) {
      expect(l).toBe(link);
      closes++;
      expect(closes).toBe(1);
      onClose({ code, reason });
    },
  };
  link.handler = handler;
  return {
    frames,
    closed,
    async whenFrames(n) {
      while (frames.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}

/**
 * A raw TCP server that answers the upgrade itself (a correct 101 unless `answer` says otherwise)
 * and then runs `script` on the socket: for frames `ws` would never send.
 */
async function rawServer(script: (socket: Socket) => void, answer?: (key: string) => string): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const accepted: Socket[] = [];
  const server: Server = createServer((socket) => {
    accepted.push(socket);
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      requests.push(head.slice(0, end));
      const key = /Sec-WebSocket-Key: (.*)/i.exec(head)![1]!.trim();
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(answer ? answer(key) : `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`, 'latin1');
      script(socket);
    };
    socket.on('data', onData);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => {
    for (const s of accepted) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/relay?x=1`, requests };
}

/** An unmasked server frame. */
function frame(opcode: number, payload: Uint8Array | number[], fin = true): Buffer {
  const p = Buffer.from(payload);
  const head = p.length < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, p.length]) : p.length < 0x10000 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 126, p.length >> 8, p.length & 255]) : Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 127, 0, 0, 0, 0]), Buffer.from([p.length >>> 24, (p.length >> 16) & 255, (p.length >> 8) & 255, p.length & 255])]);
  return Buffer.concat([head, p]);
}

/** Reads client frames from a raw socket (masked, zero key expected); a close frame from the client ends the socket, as a relay would. */
function clientFrames(socket: Socket): Array<{ opcode: number; payload: Buffer; mask: Buffer }> {
  const out: Array<{ opcode: number; payload: Buffer; mask: Buffer }> = [];
  let buf = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = buf.readUInt32BE(6);
        off = 10;
      }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len)).map((b, i) => b ^ mask[i % 4]!);
      out.push({ opcode: buf[0]! & 0x0f, payload: Buffer.from(payload), mask: Buffer.from(mask) });
      if ((buf[0]! & 0x0f) === 0x8) socket.end();
      buf = buf.subarray(off + 4 + len);
    }
  });
  return out;
}

const until = async (what: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(what()).toBe(true);
};

describe('the net link', () => {
  it("is Node's default implementation", () => {
    expect(defaultImplementation()).toBe('net');
  });

  it('exchanges binary messages of every length class with a ws server, both ways, in order', async () => {
    const server = await wsServer();
    const link = await openLink(server.url, OPTS);
    cleanup.push(() => link.terminate());
    expect(link).toBeInstanceOf(NetLink);
    const rec = recorder(link);
    const sizes = [0, 1, 125, 126, 65535, 65536, 300_000];
    const messages = sizes.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (i * 31 + j) & 255));
    for (const m of messages) link.send(m);
    await server.whenReceived(messages.length);
    expect(server.received.map((b) => Buffer.compare(b, Buffer.from(messages[server.received.indexOf(b)]!)))).toEqual(sizes.map(() => 0));
    const ws = await server.whenConnected();
    for (const m of messages) ws.send(m);
    ws.send('text is dropped');
    ws.send(Uint8Array.of(9));
    await rec.whenFrames(messages.length + 1);
    expect(rec.frames.map((f) => f.length)).toEqual([...sizes, 1]);
    for (let i = 0; i < messages.length; i++) expect(Buffer.compare(Buffer.from(rec.frames[i]!), Buffer.from(messages[i]!))).toBe(0);
  });

  it("sends one tick's frames as one socket write; a large frame leaves at once with those before it", async () => {
    const server = await wsServer();
    const link = await openLink(server.url, OPTS);
    cleanup.push(() => link.terminate());
    const writev = vi.spyOn(Socket.prototype as unknown as { _writev: (...args: unknown[]) => void }, '_writev');
    const write = vi.spyOn(Socket.prototype as unknown as { _write: (...args: unknown[]) => void }, '_write');
    const writes = (): number => writev.mock.calls.length + write.mock.calls.length;
    for (let i = 0; i < 10; i++) link.send(Uint8Array.of(i));
    expect(writes()).toBe(0);
    link.send(new Uint8Array(UNCORK_AT_BYTES));
    expect(writes()).toBe(1);
    link.send(Uint8Array.of(1));
    await server.whenReceived(12);
    expect(writes()).toBe(2);
  });

  it('wakes a drain waiter once a paused server read the backlog', async () => {
    const server = await wsServer();
    const link = await openLink(server.url, OPTS);
    cleanup.push(() => link.terminate());
    const ws = await server.whenConnected();
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < 48; i++) link.send(chunk);
    expect(link.bufferedAmount).toBeGreaterThan(1 << 20);
    let drained = false;
    const waiting = link.whenDrained(1 << 20).then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(drained).toBe(false);
    socket.resume();
    await waiting;
    expect(link.bufferedAmount).toBeLessThanOrEqual(1 << 20);
    await server.whenReceived(48);
  });

  it('closes with a code and reason both ways (the relay closing, and this side closing), reported once', async () => {
    const server = await wsServer();
    const a = await openLink(server.url, OPTS);
    const recA = recorder(a);
    const wsA = await server.whenConnected();
    wsA.close(4003, 'go away');
    expect(await recA.closed).toEqual({ code: 4003, reason: 'go away' });
    expect(a.open).toBe(false);

    const b = await openLink(server.url, OPTS);
    const recB = recorder(b);
    const wsB = await server.whenConnected();
    const serverSaw = new Promise<[number, string]>((resolve) => wsB.once('close', (code: number, reason: Buffer) => resolve([code, reason.toString()])));
    b.close(1000, 'disconnect');
    expect(b.open).toBe(false);
    b.send(Uint8Array.of(1)); // after close: dropped, no throw
    expect(await serverSaw).toEqual([1000, 'disconnect']);
    expect(await recB.closed).toEqual({ code: 1000, reason: 'disconnect' });

    const c = await openLink(server.url, OPTS);
    const recC = recorder(c);
    await server.whenConnected();
    c.terminate();
    expect(await recC.closed).toEqual({ code: 1006, reason: '' });
  });

  it('reports 1006 when the relay drops the socket without a close frame', async () => {
    const server = await wsServer();
    const link = await openLink(server.url, OPTS);
    const rec = recorder(link);
    (await server.whenConnected()).terminate();
    expect(await rec.closed).toEqual({ code: 1006, reason: '' });
  });

  it('sends the upgrade request with the path and query, masks with a zero key, answers pings, reassembles fragments, drops fragmented text', async () => {
    let seen!: ReturnType<typeof clientFrames>;
    const raw = await rawServer((s) => {
      seen = clientFrames(s);
      s.write(Buffer.concat([frame(0x9, [7, 7]), frame(0x2, [1, 2], false), frame(0x9, [8]), frame(0x0, [3], false), frame(0x0, [4, 5]), frame(0x1, [65], false), frame(0x0, [66]), frame(0x2, [6])]));
    });
    const link = await openLink(raw.url, OPTS);
    cleanup.push(() => link.terminate());
    const rec = recorder(link);
    expect(raw.requests[0]).toMatch(/^GET \/relay\?x=1 HTTP\/1\.1\r\n/);
    expect(raw.requests[0]).toMatch(/\r\nUpgrade: websocket\r\n/);
    expect(raw.requests[0]).toMatch(/\r\nSec-WebSocket-Version: 13\r\n/);
    await rec.whenFrames(2);
    expect(rec.frames.map((f) => [...f])).toEqual([[1, 2, 3, 4, 5], [6]]);
    link.send(Uint8Array.of(42));
    await until(() => seen.length >= 3);
    expect(seen.map((f) => [f.opcode, [...f.payload]])).toEqual([
      [0xa, [7, 7]],
      [0xa, [8]],
      [0x2, [42]],
    ]);
    for (const f of seen) expect([...f.mask]).toEqual([0, 0, 0, 0]);
  });

  it('parses frames split at every byte and many frames in one chunk alike', async () => {
    const messages = [[1], Array.from({ length: 200 }, (_, i) => i & 255), Array.from({ length: 70_000 }, (_, i) => (i * 7) & 255)];
    const bytes = Buffer.concat(messages.map((m) => frame(0x2, m)));
    const raw = await rawServer((s) => {
      // The first 300 bytes one at a time, the rest at once.
      let i = 0;
      const next = (): void => {
        if (i >= 300) {
          s.write(bytes.subarray(300));
          return;
        }
        s.write(bytes.subarray(i, i + 1));
        i++;
        setImmediate(next);
      };
      next();
    });
    const link = await openLink(raw.url, OPTS);
    cleanup.push(() => link.terminate());
    const rec = recorder(link);
    await rec.whenFrames(3);
    expect(rec.frames.map((f) => [...f])).toEqual(messages);
  });

  it('delivers frames that arrive with the answer, after the owner set its handler', async () => {
    const raw = await rawServer(
      () => {},
      (key) => {
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n` + frame(0x2, [5, 6]).toString('latin1');
      },
    );
    const link = await openLink(raw.url, OPTS);
    cleanup.push(() => link.terminate());
    const rec = recorder(link);
    await rec.whenFrames(1);
    expect([...rec.frames[0]!]).toEqual([5, 6]);
  });

  it.each([
    ['ends', (s: Socket) => s.end()],
    ['resets', (s: Socket) => s.resetAndDestroy()],
  ])('reports the close code the relay sent with its 101 answer when it then %s the socket at once (as the ws link)', async (_name, drop) => {
    for (const implementation of ['ws', 'net'] as const) {
      const raw = await rawServer(
        (s) => drop(s),
        (key) => {
          const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
          // A relay at capacity: 101, its close frame (TOO_MANY_CONNECTIONS), and the socket dropped.
          return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n` + frame(0x8, [0x0f, 0xb5, ...Buffer.from('relay is full')]).toString('latin1');
        },
      );
      const link = await openLink(raw.url, { ...OPTS, implementation });
      const rec = recorder(link);
      expect({ implementation, ...(await rec.closed) }).toEqual({ implementation, code: 4021, reason: 'relay is full' });
    }
  });

  it.each([
    ['a message above maxPayload (from its header, before its bytes)', 1009, () => Buffer.from([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0])],
    ['fragments adding up above maxPayload', 1009, () => Buffer.concat([frame(0x2, new Uint8Array(600), false), frame(0x0, new Uint8Array(600))])],
    ['a masked frame from the server', 1002, () => Buffer.from([0x82, 0x81, 0, 0, 0, 0, 1])],
    ['reserved bits', 1002, () => Buffer.from([0xc2, 1, 1])],
    ['an unknown opcode', 1002, () => Buffer.from([0x83, 0])],
    ['a fragmented ping', 1002, () => Buffer.from([0x09, 0])],
    ['a continuation with nothing to continue', 1002, () => frame(0x0, [1])],
    ['a new message inside a fragmented one', 1002, () => Buffer.concat([frame(0x2, [1], false), frame(0x2, [2])])],
    ['a one-byte close frame', 1002, () => Buffer.from([0x88, 1, 3])],
  ])('stops reading on %s, tells the relay %i in a close frame and reports 1006 once the relay closes (as ws)', async (_name, code, bytes) => {
    let seen!: ReturnType<typeof clientFrames>;
    const raw = await rawServer((s) => {
      seen = clientFrames(s);
      // Then a frame that must not be delivered (nothing is read after the error).
      s.write(Buffer.concat([frame(0x2, [1]), bytes(), frame(0x2, [2])]));
    });
    const link = await openLink(raw.url, { ...OPTS, maxPayload: 1000 });
    const rec = recorder(link);
    expect(await rec.closed).toEqual({ code: 1006, reason: '' });
    expect(rec.frames.map((f) => [...f])).toEqual([[1]]);
    expect(seen.map((f) => [f.opcode, f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null])).toEqual([[0x8, code]]);
  });

  it('answers a close frame with its code and reports it (1005 without a code)', async () => {
    let seen!: ReturnType<typeof clientFrames>;
    const raw = await rawServer((s) => {
      seen = clientFrames(s);
      s.write(frame(0x8, []));
    });
    const link = await openLink(raw.url, OPTS);
    const rec = recorder(link);
    expect(await rec.closed).toEqual({ code: 1005, reason: '' });
    await until(() => seen.length === 1);
    expect(seen[0]!.opcode).toBe(0x8);
    expect([...seen[0]!.payload]).toEqual([]);
  });
});

describe('opening a net link fails', () => {
  const opts = { ...OPTS, timeoutMs: 300 };
  it.each([
    ['an HTTP answer that is not an upgrade', () => 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n', 'HTTP 404 instead of a WebSocket upgrade'],
    ['a wrong Sec-WebSocket-Accept', () => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n', 'invalid Sec-WebSocket-Accept header'],
    ['no Upgrade header', () => 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n', 'invalid Upgrade header'],
    ['an extension that was not asked for', (key: string) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`, 'the relay chose an extension, none was asked for'],
    ['garbage', () => 'SSH-2.0-OpenSSH\r\n\r\n', 'not an HTTP answer'],
  ])('on %s', async (_name, answer, why) => {
    const raw = await rawServer(() => {}, answer);
    await expect(openLink(raw.url, opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED', message: `cannot connect to relay ${raw.url}: ${why}` });
  });

  it('on silence (bounded by timeoutMs), a dropped connection, nothing listening, a bad URL', async () => {
    const sockets: Socket[] = [];
    const server = createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
    await expect(openLink(url, opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED', message: `cannot connect to relay ${url}: no answer within 300 ms` });
    server.removeAllListeners('connection');
    server.on('connection', (s) => s.destroy());
    await expect(openLink(url, opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' });
    // Ended without an answer: Node's HTTP client's (and so ws's) 'socket hang up', ECONNRESET in
    // the cause — the CLI's TLS hints read it (ws:// to a TLS relay, wss:// to a plain one).
    server.removeAllListeners('connection');
    server.on('connection', (s) => {
      sockets.push(s);
      s.end();
    });
    await expect(openLink(url, opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED', message: `cannot connect to relay ${url}: socket hang up`, cause: { code: 'ECONNRESET' } });
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await expect(openLink(url, opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED', message: expect.stringContaining(`cannot connect to relay ${url}: `) });
    await expect(openLink('not a url', opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' });
    await expect(openLink('http://127.0.0.1:1', opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' });
  });
});

/** A random stream of server frames: mostly valid (binary, text, fragments, pings, pongs, a close), sometimes not. */
function randomStream(r: () => number): Buffer {
  const parts: Buffer[] = [];
  const n = 1 + Math.floor(r() * 12);
  const bytes = (len: number): number[] => Array.from({ length: len }, () => Math.floor(r() * 256));
  const ascii = (len: number): number[] => Array.from({ length: len }, () => 32 + Math.floor(r() * 90));
  const size = (): number => [0, 1, 5, 125, 126, 200, 1000, 1500, 70_000][Math.floor(r() * 9)]!;
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.4) parts.push(frame(0x2, bytes(size())));
    else if (k < 0.5) {
      const pieces = 2 + Math.floor(r() * 3);
      const text = r() < 0.4;
      for (let p = 0; p < pieces; p++) parts.push(frame(p === 0 ? (text ? 0x1 : 0x2) : 0x0, text ? ascii(Math.floor(r() * 300)) : bytes(Math.floor(r() * 300)), p === pieces - 1));
    } else if (k < 0.58) parts.push(frame(0x1, ascii(Math.floor(r() * 50))));
    else if (k < 0.66) parts.push(frame(0x9, bytes(Math.floor(r() * 20))));
    else if (k < 0.72) parts.push(frame(0xa, bytes(Math.floor(r() * 20))));
    else if (k < 0.8) {
      // A close frame: a valid code, an invalid one, none; a reason, sometimes not UTF-8.
      const code = [1000, 1001, 4003, 3000, 1004, 999, 1005, 5000][Math.floor(r() * 8)]!;
      const reason = r() < 0.2 ? [0xff, 0xfe] : ascii(Math.floor(r() * 10));
      parts.push(r() < 0.2 ? frame(0x8, []) : frame(0x8, [code >> 8, code & 255, ...reason]));
    } else if (k < 0.84) parts.push(frame(0x1, [0xc3, 0x28])); // invalid UTF-8 text
    else if (k < 0.88) parts.push(Buffer.from([0x80 | [3, 7, 11, 15][Math.floor(r() * 4)]!, 0])); // unknown opcode
    else if (k < 0.9) parts.push(Buffer.from([0xc2, 1, 9])); // RSV1
    else if (k < 0.92) parts.push(Buffer.from([0x82, 0x81, 0, 0, 0, 0, 9])); // masked
    else if (k < 0.94) parts.push(frame(0x0, [1])); // stray continuation
    else if (k < 0.96) parts.push(Buffer.from([0x89, 126, 0, 126, ...new Array(126).fill(0)])); // long ping
    else parts.push(frame(0x2, bytes(5000))); // above the 4,096 maxPayload used below
  }
  return Buffer.concat(parts);
}

describe('the net link against the ws link (differential, seeded)', () => {
  it('delivers the same binary messages and reports the same close code for random server streams cut at random points', async () => {
    const seed = Number(process.env.NET_LINK_FUZZ_SEED ?? 20261201);
    const r = rng(seed);
    let stream: Buffer = Buffer.alloc(0);
    let cuts: number[] = [];
    const raw = await rawServer((s) => {
      // The stream in the pieces chosen for this round, then the end of the socket — once the
      // client said it listens (the ws link drops frames that come before its handler is set).
      s.once('data', () => next());
      let at = 0;
      const pieces = [...cuts, stream.length];
      const next = (): void => {
        if (s.destroyed) return;
        const to = pieces.shift();
        if (to === undefined) return void s.end();
        s.write(stream.subarray(at, to));
        at = to;
        setImmediate(next);
      };
    });
    const run = async (implementation: 'net' | 'ws'): Promise<{ frames: string[]; code: number }> => {
      const link = await openLink(raw.url, { ...OPTS, maxPayload: 4096, implementation });
      const rec = recorder(link);
      link.send(Uint8Array.of(1));
      const { code } = await rec.closed;
      return { frames: rec.frames.map((f) => Buffer.from(f).toString('hex')), code };
    };
    for (let round = 0; round < 120; round++) {
      stream = randomStream(r);
      // Mostly a few cuts; sometimes many (frame headers cut too).
      const n = r() < 0.3 ? Math.floor(r() * 40) : Math.floor(r() * 6);
      cuts = Array.from({ length: n }, () => Math.floor(r() * stream.length)).sort((a, b) => a - b);
      const net = await run('net');
      const ws = await run('ws');
      expect({ round, seed, ...net }).toEqual({ round, seed, ...ws });
    }
  }, 120_000);
});
