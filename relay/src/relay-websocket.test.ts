// RelayWebSocket on real sockets (127.0.0.1): the core serves it without listeners per
// connection, and it still routes, closes, reports errors and runs listeners others add.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
});
