// WebSocket pings from clients, on real sockets (127.0.0.1). The relay server's sockets leave
// answering them to the core (ws `autoPong: false`: no closure per socket): every ping still
// gets exactly one pong with its payload, and pings count against the connection's frame rate,
// as other frames do. A host that keeps ws's autoPong gets ws's answer, not a second one.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { CloseCode, encodeHello, utf8 } from '@rhizome/transport-relay/protocol';
import { RelayCore } from './core.js';
import { RelayWebSocket } from './relay-websocket.js';
import { createRelayServer, type RelayServer } from './server.js';

const WAIT = 5_000;
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  cleanups.push(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return ws;
}

/** Sends `count` pings and collects the pongs' payloads until `count` came, the socket closed, or WAIT passed. */
async function pingPong(ws: WebSocket, count: number, settleMs = 0): Promise<string[]> {
  const pongs: string[] = [];
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, WAIT);
    const finish = (): void => {
      clearTimeout(timer);
      // Wait a little past the last expected pong, so that a second answer would be seen too.
      setTimeout(resolve, settleMs);
    };
    ws.on('pong', (data: Buffer) => {
      pongs.push(data.toString());
      if (pongs.length === count) finish();
    });
    ws.once('close', finish);
  });
  for (let i = 0; i < count; i++) ws.ping(Buffer.from(`p${i}`));
  await done;
  return pongs;
}

describe('WebSocket pings from clients', () => {
  it('the relay server answers each ping once, with its payload', async () => {
    const relay: RelayServer = await createRelayServer({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => relay.close());
    const ws = await open(relay.url);
    ws.send(encodeHello(utf8('pinger'), null));
    expect(await pingPong(ws, 3, 200)).toEqual(['p0', 'p1', 'p2']);
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });

  it('pings count against the frame rate: a ping flood is cut with 4023', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1', maxFramesPerSecond: 5, frameBurst: 10 });
    cleanups.push(() => relay.close());
    const ws = await open(relay.url);
    const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
    const pongs = await pingPong(ws, 200);
    expect(await closed).toBe(CloseCode.FRAME_RATE_EXCEEDED);
    expect(pongs.length).toBeLessThan(200);
    expect(relay.stats().drops.frame_rate_exceeded).toBe(1);
  });

  it('a host that keeps ws autoPong: RelayWebSocket answers once (by ws), the core does not answer again', async () => {
    const core = new RelayCore();
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false, WebSocket: RelayWebSocket });
    const http: Server = createServer();
    http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => core.attach(ws, { ip: '127.0.0.1' })));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      await core.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    });
    const ws = await open(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
    ws.send(encodeHello(utf8('pinger'), null));
    expect(await pingPong(ws, 3, 200)).toEqual(['p0', 'p1', 'p2']);
  });
});
