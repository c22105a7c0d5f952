// A relay session's start (issue 12, relay memory per connection): the topics a transport already
// has go right behind HELLO, in the same socket write, so the relay reads them at once; what
// changes before WELCOME (a topic left, another joined) is settled when WELCOME comes.
import { Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { deriveTopic } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { RelayTransport } from '@rhizome/transport-relay';
import { FrameType, encodeJoined, encodeWelcome } from '@rhizome/transport-relay/protocol';

const WAIT = 10_000;
const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const name = (type: number): string => Object.entries(FrameType).find(([, v]) => v === type)?.[0] ?? `0x${type.toString(16)}`;

describe('a relay session start', () => {
  it('sends the known topics with HELLO in one socket write, and settles a topic left and one joined before WELCOME', async () => {
    // A stand-in relay that answers HELLO only when told to, and records what it reads.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    cleanup.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    const frames: string[] = [];
    let server: WebSocket | undefined;
    let writes = 0;
    let writesAtUpgrade = -1;
    const helloSeen = new Promise<void>((resolve) =>
      wss.on('connection', (ws) => {
        server = ws;
        writesAtUpgrade = writes;
        ws.on('message', (data: Buffer) => {
          const f = new Uint8Array(data);
          frames.push(f[0] === FrameType.HELLO ? 'HELLO' : `${name(f[0]!)} ${f[1]}`);
          if (f[0] === FrameType.HELLO) resolve();
          if (f[0] === FrameType.JOIN) ws.send(encodeJoined(f[1]!, f.subarray(1, 33)));
        });
      }),
    );
    // Count the client's socket writes (the link sends a tick's frames in one).
    const proto = Socket.prototype as unknown as Record<'_writev' | '_write', (...args: unknown[]) => void>;
    for (const method of ['_writev', '_write'] as const) {
      const original = proto[method];
      vi.spyOn(proto, method).mockImplementation(function (this: Socket, ...args: unknown[]) {
        if (this.remotePort === (wss.address() as { port: number }).port) writes++;
        return original.apply(this, args);
      });
    }

    const t = new RelayTransport({ url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`, timeoutMs: WAIT });
    cleanup.push(() => t.disconnect());
    // Topics whose first byte names them in the records (their hashes are otherwise arbitrary).
    const topic = (b: number): Uint8Array => {
      const h = deriveTopic(`t${b}`);
      h[0] = b;
      return h;
    };
    const leaving = new AbortController();
    void t.connect(topic(1), { signal: leaving.signal });
    void t.connect(topic(2));
    await within(WAIT, 'HELLO at the stand-in relay', helloSeen);
    await within(WAIT, 'the early JOINs', (async () => {
      while (frames.length < 3) await new Promise((r) => setTimeout(r, 5));
    })());
    expect(frames).toEqual(['HELLO', 'JOIN 1', 'JOIN 2']);
    // One write after the upgrade: HELLO and both JOINs.
    expect(writesAtUpgrade).toBeGreaterThanOrEqual(0);
    expect(writes - writesAtUpgrade).toBe(1);

    // Before WELCOME: topic 1 is left, topic 3 joined. At WELCOME: LEAVE 1, JOIN 3, nothing else.
    leaving.abort();
    void t.connect(topic(3));
    await new Promise((r) => setTimeout(r, 50));
    expect(frames).toHaveLength(3);
    server!.send(encodeWelcome(7, 1 << 20));
    await within(WAIT, 'the settling frames', (async () => {
      while (frames.length < 5) await new Promise((r) => setTimeout(r, 5));
    })());
    await new Promise((r) => setTimeout(r, 50));
    expect(frames).toEqual(['HELLO', 'JOIN 1', 'JOIN 2', 'LEAVE 1', 'JOIN 3']);
  });
});
