// yamux window updates (yamux-window.ts): a receiver of many small messages no longer answers each
// data frame with a window update frame. Real libp2p nodes (tcp, noise, yamux) on 127.0.0.1, with a
// TCP relay between them that counts the bytes each way.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { noise } from '@chainsafe/libp2p-noise';
import type { Libp2p, Stream } from '@libp2p/interface';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, eventually } from './testing/fixtures.js';
import { lazyWindowUpdates, rhizomeYamux } from './yamux-window.js';

const WAIT = 10_000;
const PROTOCOL = '/rhizome-test/sink/1.0.0';
const MESSAGES = 200;
const SIZE = 64;
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function node(lazy: boolean): Promise<Libp2p> {
  const n = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [rhizomeYamux({ enableKeepAlive: false }, lazy)],
    connectionMonitor: { enabled: false },
  });
  cleanup.push(() => n.stop());
  return n;
}

/** A TCP relay to `port` that counts the bytes flowing back (server → client). */
async function countingRelay(port: number): Promise<{ port: number; back: () => number }> {
  let back = 0;
  const sockets: Socket[] = [];
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.push(client, upstream);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      back += chunk.length;
      client.write(chunk);
    });
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as { port: number }).port, back: () => back };
}

/** Bytes the receiver sends back while it takes MESSAGES small messages on one stream. */
async function bytesBackDuringBurst(lazy: boolean): Promise<number> {
  const [sender, receiver] = await Promise.all([node(lazy), node(lazy)]);
  let received = 0;
  await receiver.handle(PROTOCOL, async (stream: Stream) => {
    for await (const chunk of stream) received += chunk.byteLength;
  });
  const port = Number(receiver.getMultiaddrs()[0]!.toString().split('/tcp/')[1]!.split('/')[0]);
  const relay = await countingRelay(port);
  const stream = await sender.dialProtocol(multiaddr(`/ip4/127.0.0.1/tcp/${relay.port}/p2p/${receiver.peerId.toString()}`), PROTOCOL);
  // The first message opens the stream (the receiver's ACK goes back with a window update).
  stream.send(new Uint8Array(SIZE));
  await eventually('the first message', () => received === SIZE, WAIT);
  const before = relay.back();
  for (let i = 1; i < MESSAGES; i++) {
    if (!stream.send(new Uint8Array(SIZE))) await new Promise((resolve) => stream.addEventListener('drain', resolve, { once: true }));
    // One message per macrotask, as a session sends: each is its own yamux data frame.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await eventually('every message', () => received === MESSAGES * SIZE, WAIT);
  return relay.back() - before;
}

describe('yamux window updates', () => {
  it('a receiver of small messages sends no window update until half the window is used', async () => {
    // A window update is a 12-byte yamux header in a noise message (2-byte length, 16-byte tag).
    // Some of the last may still be in flight when the count is read, and the stream's ACK (sent
    // with the first update) may pass the relay late: hence the margins.
    const eager = await bytesBackDuringBurst(false);
    const lazy = await bytesBackDuringBurst(true);
    expect(eager).toBeGreaterThanOrEqual((MESSAGES / 2) * 30);
    expect(lazy).toBeLessThanOrEqual(2 * 30);
  });

  it('a large transfer still flows (updates go out once half the window is used)', async () => {
    const [sender, receiver] = await Promise.all([node(true), node(true)]);
    let received = 0;
    await receiver.handle(PROTOCOL, async (stream: Stream) => {
      for await (const chunk of stream) received += chunk.byteLength;
    });
    const stream = await sender.dialProtocol(receiver.getMultiaddrs()[0]!, PROTOCOL);
    const total = 4 * 1024 * 1024; // 16 times the initial 256 KiB window
    for (let sent = 0; sent < total; sent += 16 * 1024) {
      if (!stream.send(new Uint8Array(16 * 1024))) await new Promise((resolve) => stream.addEventListener('drain', resolve, { once: true }));
    }
    await eventually('4 MiB through', () => received === total, WAIT);
  });

  it('the hook reports when yamux does not have the shape it expects (then nothing is changed)', () => {
    expect(lazyWindowUpdates({})).toBe(false);
  });
});
