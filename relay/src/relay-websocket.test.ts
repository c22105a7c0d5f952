// RelayWebSocket on real sockets (127.0.0.1): the core serves it without listeners per
// connection, and it still routes, closes, reports errors and runs listeners others add.
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { DATA_HEADER_BYTES, FrameType, encodeDataFrame, encodeHello, encodeTopicFrame, readU32, utf8 } from '@rhizome/transport-relay/protocol';
import { RelayCore } from './core.js';
import { RelayWebSocket } from './relay-websocket.js';

const topic = new Uint8Array(32).fill(7);
const LISTENED = ['message', 'pong', 'close', 'error'] as const;

interface Host {
  core: RelayCore;
  http: Server;
  url: string;
  /** Server-side sockets, in the order they were accepted. */
  accepted: RelayWebSocket[];
}

const hosts: Host[] = [];
const clients: WebSocket[] = [];

async function host(maxFrameSize = 64 * 1024): Promise<Host> {
  const core = new RelayCore({ maxFrameSize });
  const wss = new WebSocketServer({ noServer: true, maxPayload: core.options.maxFrameSize, perMessageDeflate: false, clientTracking: false, WebSocket: RelayWebSocket });
  const accepted: RelayWebSocket[] = [];
  const http = createServer();
  http.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      accepted.push(ws);
      core.attach(ws, { ip: '127.0.0.1' });
    }),
  );
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const h = { core, http, url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}`, accepted };
  hosts.push(h);
  return h;
}

/** A raw relay client: every frame it receives, and a wait for one of a type (bounded). */
async function client(url: string, id: string): Promise<{ ws: WebSocket; frames: Buffer[]; next: (type: number) => Promise<Buffer> }> {
  const ws = new WebSocket(url);
  clients.push(ws);
  const frames: Buffer[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data: Buffer) => {
    frames.push(data);
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let seen = 0;
  const next = async (type: number): Promise<Buffer> => {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const i = frames.findIndex((f, k) => k >= seen && f[0] === type);
      if (i >= 0) {
        seen = i + 1;
        return frames[i]!;
      }
      if (Date.now() > deadline || ws.readyState !== WebSocket.OPEN) throw new Error(`no frame of type 0x${type.toString(16)} (${id})`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  };
  ws.send(encodeHello(utf8(id), null));
  await next(FrameType.WELCOME);
  return { ws, frames, next };
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => (ws.readyState === WebSocket.CLOSED ? resolve(-1) : ws.once('close', (code: number) => resolve(code))));
}

afterEach(async () => {
  for (const ws of clients.splice(0)) ws.terminate();
  for (const h of hosts.splice(0)) {
    await h.core.close();
    await new Promise<void>((resolve) => h.http.close(() => resolve()));
  }
});

describe('RelayWebSocket', () => {
  it('is routed by the core with no listeners of its own, and a listener another adds still runs', async () => {
    const h = await host();
    const a = await client(h.url, 'a');
    const b = await client(h.url, 'b');
    expect(h.accepted).toHaveLength(2);
    for (const socket of h.accepted) {
      expect(socket).toBeInstanceOf(RelayWebSocket);
      for (const event of LISTENED) expect(socket.listenerCount(event)).toBe(0);
    }
    a.ws.send(encodeTopicFrame(FrameType.JOIN, topic));
    const tid = readU32(await a.next(FrameType.JOINED), 1);
    b.ws.send(encodeTopicFrame(FrameType.JOIN, topic));
    await b.next(FrameType.JOINED);
    const peerOfA = readU32(await a.next(FrameType.PEER_JOINED), 5);
    a.ws.send(encodeDataFrame(FrameType.SEND, tid, peerOfA, utf8('through the core')));
    const delivered = await b.next(FrameType.DELIVER);
    expect(new TextDecoder().decode(delivered.subarray(DATA_HEADER_BYTES))).toBe('through the core');

    // Someone else's listener on the server socket: it runs, and the core still releases the connection.
    const heard: number[] = [];
    h.accepted[1]!.on('close', (code: number) => heard.push(code));
    const leftA = a.next(FrameType.PEER_LEFT);
    b.ws.close(1000);
    await closed(b.ws);
    await leftA;
    expect(heard).toEqual([1000]);
    expect(h.core.connections).toBe(1);
  });

  it('calls the send callback in every form ws accepts: (data, cb), (data, options, cb), (data, undefined, cb)', async () => {
    const h = await host();
    const a = await client(h.url, 'a');
    const server = h.accepted[0]!;
    const sent = (call: (cb: (err?: Error) => void) => void): Promise<Error | undefined> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('send callback not called')), 5_000);
        call((err) => {
          clearTimeout(timer);
          resolve(err);
        });
      });
    expect(await sent((cb) => server.send(Uint8Array.of(FrameType.DELIVER, 1), cb))).toBeFalsy();
    expect(await sent((cb) => server.send(Uint8Array.of(FrameType.DELIVER, 2), { binary: true }, cb))).toBeFalsy();
    expect(await sent((cb) => server.send(Uint8Array.of(FrameType.DELIVER, 3), undefined as unknown as { binary?: boolean }, cb))).toBeFalsy();
    const deadline = Date.now() + 5_000;
    while (a.frames.filter((f) => f[0] === FrameType.DELIVER).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(a.frames.filter((f) => f[0] === FrameType.DELIVER).map((f) => f[1])).toEqual([1, 2, 3]);
  });

  it('messages of every size the framing distinguishes arrive intact and in order (small ones framed by RelayWebSocket, large by ws)', async () => {
    const h = await host(256 * 1024);
    const a = await client(h.url, 'a');
    const b = await client(h.url, 'b');
    a.ws.send(encodeTopicFrame(FrameType.JOIN, topic));
    const tid = readU32(await a.next(FrameType.JOINED), 1);
    b.ws.send(encodeTopicFrame(FrameType.JOIN, topic));
    await b.next(FrameType.JOINED);
    const peerOfA = readU32(await a.next(FrameType.PEER_JOINED), 5);
    // Payload sizes around the 7-bit and 16-bit length boundaries and the shortcut's limit.
    const sizes = [0, 1, 116, 117, 118, 3990, 3991, 3992, 65000, 65535 - DATA_HEADER_BYTES, 65536, 100_000];
    const payload = (i: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, k) => (i * 31 + k) & 0xff);
    sizes.forEach((n, i) => a.ws.send(encodeDataFrame(FrameType.SEND, tid, peerOfA, payload(i, n))));
    const got: Buffer[] = [];
    for (let i = 0; i < sizes.length; i++) got.push(await b.next(FrameType.DELIVER));
    expect(got.map((f) => f.length - DATA_HEADER_BYTES)).toEqual(sizes);
    got.forEach((f, i) => expect(Buffer.compare(f.subarray(DATA_HEADER_BYTES), Buffer.from(payload(i, sizes[i]!)))).toBe(0));
    // A send with a callback still goes through ws and comes after the ones before it.
    const server = h.accepted[1]!;
    server.send(Uint8Array.of(FrameType.DELIVER, 9));
    await new Promise<void>((resolve) => server.send(Uint8Array.of(FrameType.DELIVER, 10), () => resolve()));
    server.send(Uint8Array.of(FrameType.DELIVER, 11));
    const tail = [await b.next(FrameType.DELIVER), await b.next(FrameType.DELIVER), await b.next(FrameType.DELIVER)];
    expect(tail.map((f) => f[1])).toEqual([9, 10, 11]);
  });

  it('an oversized frame is counted and closes that connection with 1009, not the process', async () => {
    const h = await host(1024);
    const a = await client(h.url, 'a');
    const b = await client(h.url, 'b');
    const errorsBefore = h.core.stats().errors;
    a.ws.send(new Uint8Array(4096).fill(FrameType.SEND, 0, 1));
    expect(await closed(a.ws)).toBe(1009);
    // The error event had no listener on the server socket: handled by the core, nothing thrown.
    expect(h.core.stats().errors).toBe(errorsBefore + 1);
    expect(h.core.stats().drops).toMatchObject({ frame_too_large: 1 });
    // The other connection is untouched.
    b.ws.send(encodeTopicFrame(FrameType.JOIN, topic));
    await b.next(FrameType.JOINED);
    const deadline = Date.now() + 5_000;
    while (h.core.connections !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(h.core.connections).toBe(1);
  });
  it('send(): byte-exact messages of lengths 0..65536 in call order with pings, callbacks and the close; a send after close or on a dead socket throws nothing', async () => {
    // A bare RelayWebSocket server (no core): what send() writes itself (small messages) and
    // what it leaves to ws (large ones, callbacks, control frames) share one order on the wire.
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, WebSocket: RelayWebSocket });
    const http = createServer();
    const accepted: RelayWebSocket[] = [];
    http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => accepted.push(ws)));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
      clients.push(ws);
      const events: string[] = [];
      const messages: Buffer[] = [];
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        messages.push(data);
        events.push(`m${data.length}${isBinary ? '' : ' text'}`);
      });
      ws.on('ping', (data: Buffer) => events.push(`ping:${data.toString()}`));
      const gone = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const deadline = Date.now() + 5_000;
      while (accepted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const server = accepted[0]!;
      const sizes = [0, 1, 125, 126, 127, 4000, 4001, 65535, 65536];
      const body = (i: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, k) => (i * 37 + k * 7) & 0xff);
      const expected: string[] = [];
      sizes.forEach((n, i) => {
        // A view into a larger buffer: only its own bytes go out.
        const backing = new Uint8Array(n + 8).fill(0xee);
        backing.set(body(i, n), 4);
        server.send(backing.subarray(4, 4 + n));
        expected.push(`m${n}`);
        if (i === 2) {
          server.ping(Buffer.from('p1'));
          expected.push('ping:p1');
        }
        if (i === 5) {
          server.send(Buffer.from('cb'), () => undefined);
          expected.push('m2');
        }
      });
      server.close(1000, 'done');
      // After close(): ws's own handling (nothing sent, nothing thrown).
      expect(() => server.send(Uint8Array.of(1, 2, 3))).not.toThrow();
      expect(await gone).toBe(1000);
      expect(events).toEqual(expected);
      const data = messages.filter((m) => m.length !== 2 || m.toString() !== 'cb');
      data.forEach((m, i) => expect(Buffer.compare(m, Buffer.from(body(i, sizes[i]!)))).toBe(0));

      // A socket that died under an OPEN WebSocket (the close not processed yet): no throw, no crash.
      const ws2 = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
      clients.push(ws2);
      await new Promise<void>((resolve, reject) => {
        ws2.once('open', resolve);
        ws2.once('error', reject);
      });
      while (accepted.length < 2 && Date.now() < deadline + 5_000) await new Promise((r) => setTimeout(r, 10));
      const server2 = accepted[1]!;
      (server2 as unknown as { _socket: { destroy(): void } })._socket.destroy();
      expect(server2.readyState).toBe(WebSocket.OPEN);
      expect(() => server2.send(Uint8Array.of(9, 9))).not.toThrow();
      await new Promise<void>((resolve) => (server2.readyState === WebSocket.CLOSED ? resolve() : server2.once('close', () => resolve())));
    } finally {
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });

  it('receive: whole binary frames parsed by RelayWebSocket, everything else by ws, one order; unmasked and oversized frames still rejected', async () => {
    // A bare RelayWebSocket server (no core) and a raw TCP client writing hand-made frames, several
    // per write: whole masked binary frames (the relay's traffic) are taken by RelayWebSocket's
    // own parser, control frames, text, fragments and frames cut by a read go to ws's Receiver.
    const wss = new WebSocketServer({ noServer: true, maxPayload: 70_000, perMessageDeflate: false, clientTracking: false, WebSocket: RelayWebSocket });
    const http = createServer();
    const accepted: RelayWebSocket[] = [];
    const events: string[] = [];
    const messages: Buffer[] = [];
    const errors: string[] = [];
    http.on('upgrade', (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        accepted.push(ws);
        ws.on('message', (data: Buffer, isBinary: boolean) => {
          messages.push(Buffer.from(data));
          events.push(`${isBinary ? 'b' : 't'}${data.length}`);
        });
        ws.on('ping', (data: Buffer) => events.push(`ping:${data.toString()}`));
        ws.on('error', (error: Error & { code?: string }) => errors.push(error.code ?? error.message));
      }),
    );
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as AddressInfo).port;
    const sockets: Socket[] = [];
    /** A raw client after the upgrade: what the server sent after its 101 response, and its socket. */
    const raw = async (): Promise<{ socket: Socket; received: () => Buffer; ended: Promise<void> }> => {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      let buf = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => (buf = Buffer.concat([buf, chunk])));
      const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      socket.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      const deadline = Date.now() + 5_000;
      while (!buf.includes('\r\n\r\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(buf.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
      const headEnd = buf.indexOf('\r\n\r\n') + 4;
      return { socket, received: () => buf.subarray(headEnd), ended };
    };
    /** A client frame: FIN + opcode, masked (unless `masked` is false), 7-, 16- or 64-bit length. */
    const frame = (opcode: number, payload: Uint8Array, { fin = true, masked = true, len64 = false } = {}): Buffer => {
      const n = payload.length;
      const head = len64 ? [127, 0, 0, 0, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff] : n < 126 ? [n] : [126, n >>> 8, n & 0xff];
      head[0]! |= masked ? 0x80 : 0;
      const mask = masked ? [0x12, 0x9a, 0x00, 0xff] : [];
      const body = Buffer.from(payload.map((b, i) => (masked ? b ^ mask[i & 3]! : b)));
      return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, ...head, ...mask]), body]);
    };
    const body = (i: number, n: number): Buffer => Buffer.from(Uint8Array.from({ length: n }, (_, k) => (i * 41 + k * 3) & 0xff));
    const until = async (done: () => boolean): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    };
    try {
      const c = await raw();
      // One write: binary frames of every length form (parsed by RelayWebSocket), then a ping, text,
      // a fragmented message, a 64-bit length (ws) with binary frames between them.
      const sizes = [0, 1, 5, 125, 126, 4000, 65535];
      const parts: Buffer[] = sizes.map((n, i) => frame(0x2, body(i, n)));
      const expected = sizes.map((n) => `b${n}`);
      const payloads: Buffer[] = sizes.map((n, i) => body(i, n));
      parts.push(frame(0x9, Buffer.from('p1')));
      expected.push('ping:p1');
      parts.push(frame(0x1, Buffer.from('hi')), frame(0x2, body(20, 3)));
      expected.push('t2', 'b3');
      payloads.push(Buffer.from('hi'), body(20, 3));
      parts.push(frame(0x2, body(21, 4), { fin: false }), frame(0x0, body(22, 6)), frame(0x2, body(23, 7)));
      expected.push('b10', 'b7');
      payloads.push(Buffer.concat([body(21, 4), body(22, 6)]), body(23, 7));
      parts.push(frame(0x2, body(24, 300), { len64: true }), frame(0x2, body(25, 2)));
      expected.push('b300', 'b2');
      payloads.push(body(24, 300), body(25, 2));
      await until(() => accepted.length === 1);
      // ws's own 'data' listener was replaced by RelayWebSocket's parser.
      const dataListeners = (accepted[0] as unknown as { _socket: Socket })._socket.listeners('data').map((f) => (f as { name?: string }).name);
      expect(dataListeners).toEqual(['onSocketData']);
      c.socket.write(Buffer.concat(parts));
      // Frames cut across writes: header, mask and payload each split.
      const cut = Buffer.concat([frame(0x2, body(26, 200)), frame(0x2, body(27, 9))]);
      for (const [from, to] of [[0, 1], [1, 3], [3, 6], [6, 100], [100, cut.length]] as const) {
        c.socket.write(cut.subarray(from, to));
        await new Promise((r) => setTimeout(r, 20)); // separate reads, most likely (either way the result is the same)
      }
      expected.push('b200', 'b9');
      payloads.push(body(26, 200), body(27, 9));
      await until(() => events.length >= expected.length);
      expect(events).toEqual(expected);
      expect(messages.map((m) => m.toString('hex'))).toEqual(payloads.map((p) => p.toString('hex')));
      // ws answered the ping in its place (a pong frame with the payload).
      await until(() => c.received().includes(Buffer.from([0x8a, 0x02, 0x70, 0x31])));
      expect(c.received().includes(Buffer.from([0x8a, 0x02, 0x70, 0x31]))).toBe(true);

      // An unmasked frame after good ones in the same write: the good ones arrive, then ws closes with 1002.
      const before = events.length;
      const d = await raw();
      d.socket.write(Buffer.concat([frame(0x2, body(30, 3)), frame(0x2, body(31, 3), { masked: false }), frame(0x2, body(32, 3))]));
      await d.ended;
      expect(events.slice(before)).toEqual(['b3']);
      expect(d.received().subarray(0, 4)).toEqual(Buffer.from([0x88, 0x02, 1002 >> 8, 1002 & 0xff]));
      // Over maxPayload (70,000): 1009, and nothing of it delivered.
      const e = await raw();
      e.socket.write(frame(0x2, body(33, 70_001), { len64: true }));
      await e.ended;
      expect(events.slice(before)).toEqual(['b3']);
      expect(e.received().subarray(0, 4)).toEqual(Buffer.from([0x88, 0x02, 1009 >> 8, 1009 & 0xff]));
      expect(errors).toEqual(['WS_ERR_EXPECTED_MASK', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH']);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });

  it('frames sent while a read is handled go out in one socket write per socket when the read is done, in call order with control frames, large messages and the close; and terminate', async () => {
    // A bare RelayWebSocket server: client A's messages make the server send to B, C and D from
    // inside A's read (what the core does when it forwards). Every server socket write is recorded.
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, WebSocket: RelayWebSocket });
    const http = createServer();
    const accepted: RelayWebSocket[] = [];
    const writes: Buffer[][] = [];
    http.on('upgrade', (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        const i = accepted.push(ws) - 1;
        writes.push([]);
        const raw = (ws as unknown as { _socket: Socket })._socket;
        const write = raw.write.bind(raw) as (chunk: Buffer) => boolean;
        (raw as unknown as { write: (chunk: Buffer) => boolean }).write = (chunk: Buffer) => {
          writes[i]!.push(Buffer.from(chunk));
          return write(chunk);
        };
      }),
    );
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const until = async (done: () => boolean): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    };
    const open = async (): Promise<{ ws: WebSocket; events: string[]; gone: Promise<number> }> => {
      const n = accepted.length;
      const ws = new WebSocket(url);
      clients.push(ws);
      const events: string[] = [];
      ws.on('message', (data: Buffer) => events.push(data.length > 100 ? `big${data.length}` : data.toString()));
      ws.on('ping', (data: Buffer) => events.push(`ping:${data.toString()}`));
      const gone = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      await until(() => accepted.length > n);
      return { ws, events, gone };
    };
    /** The unmasked frame a server writes for a small binary message. */
    const framed = (text: string): Buffer => Buffer.concat([Buffer.from([0x82, text.length]), Buffer.from(text)]);
    try {
      const a = await open();
      const b = await open();
      const c = await open();
      const d = await open();
      const [sa, sb, sc, sd] = accepted as [RelayWebSocket, RelayWebSocket, RelayWebSocket, RelayWebSocket];
      const big = new Uint8Array(5000).fill(3);
      sa.on('message', (data: Buffer) => {
        if (data.toString() !== 'go') return;
        sb.send(Buffer.from('b1'));
        sa.send(Buffer.from('a1'));
        sb.send(Uint8Array.from(Buffer.from('b2'))); // a plain Uint8Array is framed the same
        sb.ping(Buffer.from('p'));
        sb.send(Buffer.from('b3'));
        sb.send(Buffer.from('b4'));
        sb.send(big); // large: ws frames it, after b3 and b4
        sb.send(Buffer.from('b5'));
        sa.send(Buffer.from('a2'));
        sc.send(Buffer.from('c1'));
        sc.close(1000, 'bye'); // after c1
        sd.send(Buffer.from('d1'));
        sd.terminate(); // after d1 (handed to the kernel first, as a send always was)
      });
      const before = writes.map((w) => w.length);
      a.ws.send(Buffer.from('go'));
      await until(() => b.events.length >= 7 && a.events.length >= 2 && c.events.length >= 1);
      expect(b.events).toEqual(['b1', 'b2', 'ping:p', 'b3', 'b4', 'big5000', 'b5']);
      expect(a.events).toEqual(['a1', 'a2']);
      expect(c.events).toEqual(['c1']);
      expect(await c.gone).toBe(1000);
      expect(await d.gone).toBe(1006);
      expect(d.events).toEqual(['d1']);
      // A's two frames in one write, when the read was done.
      expect(writes[0]!.slice(before[0])).toEqual([Buffer.concat([framed('a1'), framed('a2')])]);
      // B: b1+b2 written before the ping, b3+b4 before the large message, b5 at the end of the read.
      const toB = writes[1]!.slice(before[1]);
      expect(toB[0]).toEqual(Buffer.concat([framed('b1'), framed('b2')]));
      expect(toB.findIndex((w) => w.equals(Buffer.concat([framed('b3'), framed('b4')])))).toBeGreaterThan(0);
      expect(toB.at(-1)).toEqual(framed('b5'));
      expect(writes[2]!.slice(before[2])[0]).toEqual(framed('c1'));
      expect(writes[3]!.slice(before[3])).toEqual([framed('d1')]);
      // Outside a read (here: a timer), a small message is written at once, on its own.
      const n = writes[0]!.length;
      const atOnce = await new Promise<Buffer[]>((resolve) =>
        setTimeout(() => {
          sa.send(Buffer.from('t1'));
          resolve(writes[0]!.slice(n));
        }, 0),
      );
      expect(atOnce).toEqual([framed('t1')]);
      await until(() => a.events.length >= 3);
      expect(a.events).toEqual(['a1', 'a2', 't1']);
    } finally {
      for (const ws of clients.splice(0)) ws.terminate();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });
});
