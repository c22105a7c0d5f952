import { Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { UNCORK_AT_BYTES, openLink } from './link.js';

/** `ws`'s frame builder (exported by the package, not by its type declarations). */
const Sender = (wsModule as unknown as { Sender: { frame(data: unknown, options: { maskBuffer?: Uint8Array }): unknown } }).Sender;

const servers: WebSocketServer[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/** A `ws` server on 127.0.0.1 that collects the binary messages it receives. */
async function collectingServer(): Promise<{ url: string; received: Buffer[]; whenReceived(n: number): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  servers.push(wss);
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const received: Buffer[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => {
      received.push(data);
      for (const w of waiters.filter((x) => received.length >= x.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
  });
  const { port } = wss.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    received,
    whenReceived: (n) => (received.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

describe('WsLink', () => {
  it('sends the frames of one tick as one socket write, in order, and the next tick as another', async () => {
    const server = await collectingServer();
    const link = await openLink(server.url, { timeoutMs: 5000, maxPayload: 1 << 20, implementation: 'ws' });
    try {
      // Every write that reaches the kernel goes through net.Socket's _writev (several chunks)
      // or _write (one): count them while the link sends.
      const writev = vi.spyOn(Socket.prototype as unknown as { _writev: (...args: unknown[]) => void }, '_writev');
      const write = vi.spyOn(Socket.prototype as unknown as { _write: (...args: unknown[]) => void }, '_write');
      const frames = Array.from({ length: 10 }, (_, i) => Uint8Array.of(i, i + 1, i + 2));
      for (const f of frames) link.send(f);
      await server.whenReceived(10);
      expect(writev.mock.calls.length + write.mock.calls.length).toBe(1);
      link.send(Uint8Array.of(42));
      await server.whenReceived(11);
      expect(writev.mock.calls.length + write.mock.calls.length).toBe(2);
      expect(server.received.map((b) => [...b])).toEqual([...frames.map((f) => [...f]), [42]]);
    } finally {
      link.close(1000, 'done');
    }
  });
  it('writes a large frame at once, with the frames queued before it; the rest of the tick goes in one write after', async () => {
    const server = await collectingServer();
    const link = await openLink(server.url, { timeoutMs: 5000, maxPayload: 4 << 20, implementation: 'ws' });
    try {
      const writev = vi.spyOn(Socket.prototype as unknown as { _writev: (...args: unknown[]) => void }, '_writev');
      const write = vi.spyOn(Socket.prototype as unknown as { _write: (...args: unknown[]) => void }, '_write');
      const writes = (): number => writev.mock.calls.length + write.mock.calls.length;
      const before = [Uint8Array.of(1), Uint8Array.of(2)];
      const large = new Uint8Array(UNCORK_AT_BYTES).fill(7);
      const after = [Uint8Array.of(3), Uint8Array.of(4)];
      for (const f of before) link.send(f);
      expect(writes()).toBe(0); // small frames wait for the end of the tick
      link.send(large);
      expect(writes()).toBe(1); // the large one left now, in one write with the two before it
      for (const f of after) link.send(f);
      expect(writes()).toBe(1);
      await server.whenReceived(5);
      expect(writes()).toBe(2); // the frames after it: one write at the end of the tick
      expect(server.received.map((b) => b.length)).toEqual([1, 1, UNCORK_AT_BYTES, 1, 1]);
      expect(server.received[2]!.every((b) => b === 7)).toBe(true);
      // Just below the size: held for the end of the tick like any small frame.
      link.send(new Uint8Array(UNCORK_AT_BYTES - 1));
      expect(writes()).toBe(2);
      await server.whenReceived(6);
      expect(writes()).toBe(3);
    } finally {
      link.close(1000, 'done');
    }
  });

  it('wakes a drain waiter once the socket wrote its backlog, with one write callback shared by every link (no closure per link)', async () => {
    // A server that stops reading each connection until told: the client's frames pile up in its socket.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 << 20 });
    servers.push(wss);
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const paused: Array<{ resume(): void }> = [];
    wss.on('connection', (ws) => {
      const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      socket.pause();
      paused.push(socket);
    });
    const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
    const send = vi.spyOn(WebSocket.prototype, 'send');
    const a = await openLink(url, { timeoutMs: 5000, maxPayload: 1 << 20, implementation: 'ws' });
    const b = await openLink(url, { timeoutMs: 5000, maxPayload: 1 << 20, implementation: 'ws' });
    try {
      b.send(Uint8Array.of(1));
      // Enough to fill the kernel's buffers on both ends, so most of it stays in the socket.
      const chunk = new Uint8Array(1 << 20);
      for (let i = 0; i < 48; i++) a.send(chunk);
      const callbacks = send.mock.calls.map((call) => call[call.length - 1]);
      expect(typeof callbacks[0]).toBe('function');
      expect(new Set(callbacks).size).toBe(1);
      const lowWater = 1 << 20;
      expect(a.bufferedAmount).toBeGreaterThan(lowWater);
      let drained = false;
      const waiting = a.whenDrained(lowWater).then(() => (drained = true));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(drained).toBe(false);
      for (const socket of paused) socket.resume();
      await waiting;
      expect(a.bufferedAmount).toBeLessThanOrEqual(lowWater);
      // A second wait after the first was released: nothing is buffered, so it resolves at once.
      await a.whenDrained(0);
    } finally {
      a.close(1000, 'done');
      b.close(1000, 'done');
    }
  });

  it('every socket frames with the one zero masking key of the process (no mask buffer per socket), and the relay reads the frames unmasked', async () => {
    const server = await collectingServer();
    const frame = vi.spyOn(Sender, 'frame');
    const a = await openLink(server.url, { timeoutMs: 5000, maxPayload: 1 << 20, implementation: 'ws' });
    const b = await openLink(server.url, { timeoutMs: 5000, maxPayload: 1 << 20, implementation: 'ws' });
    try {
      a.send(Uint8Array.of(1, 2, 3));
      b.send(Uint8Array.of(4, 5, 6));
      await server.whenReceived(2);
      const masks = frame.mock.calls.map((call) => call[1].maskBuffer);
      expect(masks).toHaveLength(2);
      expect(masks[0]).toBeInstanceOf(Uint8Array);
      expect(masks[1]).toBe(masks[0]);
      expect([...masks[0]!]).toEqual([0, 0, 0, 0]);
      expect(server.received.map((m) => [...m]).sort()).toEqual([
        [1, 2, 3],
        [4, 5, 6],
      ]);
    } finally {
      a.close(1000, 'done');
      b.close(1000, 'done');
    }
  });
});

describe('openLink failures', () => {
  const opts = { timeoutMs: 300, maxPayload: 1 << 20, implementation: 'ws' as const };
  const listen = async (handler: (s: Socket) => void): Promise<{ url: string; close(): Promise<void> }> => {
    const { createServer } = await import('node:net');
    const accepted: Socket[] = [];
    const server = createServer((s) => {
      accepted.push(s);
      handler(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    return {
      url: `ws://127.0.0.1:${port}`,
      close: () => {
        for (const s of accepted) s.destroy();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  };

  it('rejects with ERR_CONNECT_FAILED naming the URL and why, and leaves the socket closed', async () => {
    const sockets: WebSocket[] = [];
    const on = WebSocket.prototype.on;
    vi.spyOn(WebSocket.prototype, 'on').mockImplementation(function (this: WebSocket, ...args: Parameters<WebSocket['on']>) {
      if (!sockets.includes(this)) sockets.push(this);
      return on.apply(this, args);
    });
    // An HTTP answer that is not an upgrade.
    const http = await listen((s) => s.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'));
    await expect(openLink(http.url, opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED', message: `cannot connect to relay ${http.url}: HTTP 404 instead of a WebSocket upgrade` });
    // A server that accepts the connection and never answers: bounded by timeoutMs.
    const silent = await listen(() => {});
    await expect(openLink(silent.url, opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED', message: `cannot connect to relay ${silent.url}: no answer within 300 ms` });
    // A server that drops the connection at once.
    const rude = await listen((s) => s.destroy());
    await expect(openLink(rude.url, opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' });
    // Nothing listening.
    const closed = await listen(() => {});
    await closed.close();
    await expect(openLink(closed.url, opts)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED', message: expect.stringContaining(`cannot connect to relay ${closed.url}: `) });
    // Every failed socket is closed (or closing), with only the error sink left listening.
    expect(sockets.length).toBe(4);
    for (const ws of sockets) {
      expect(ws.readyState).toBeGreaterThanOrEqual(WebSocket.CLOSING);
      expect(ws.eventNames()).toEqual(['error']);
    }
    await Promise.all([http.close(), silent.close(), rude.close()]);
  });

  it('rejects (does not throw) for a URL ws refuses', async () => {
    const opening = openLink('not a url', opts);
    await expect(opening).rejects.toThrow();
  });
});
