// Bad input against a running relay (a child process, so its memory is its own) while a
// well-behaved pair of databases keeps syncing through it (ping, ack, ping, ...). Each offender must get its own close
// code, the pair must never stall, and the relay's peak RSS must stay bounded.
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTransport, deriveTopic, generateDatabaseId } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { CloseCode } from '@rhizome/relay';
import { floodFromChildProcess, RawClient, startRelayProcess, type RelayProcess } from '@rhizome/relay/testing';
import { openDatabase, type Database } from '@rhizome/sync';
import { until } from './sync-helpers.js';
import { encodeDataFrame, encodeTopicFrame, FrameType, readU32 } from '@rhizome/transport-relay/protocol';

const WAIT = 15_000;
const PER_IP = 100;
const MAX_FRAME = 1024 * 1024 + 64;
const MAX_BUFFERED = 2 * 1024 * 1024;

let relay: RelayProcess;
let baselineRss = 0;
let a: Database;
let b: Database;
let dir = '';
/** The pair's progress: completed round trips and the longest gap between two of them. */
const pair = { rounds: 0, maxGapMs: 0, last: 0, stop: false, error: null as unknown, done: Promise.resolve() };

async function metrics(): Promise<string> {
  return (await fetch(relay.url.replace('ws', 'http') + '/metrics')).text();
}

async function drops(reason: string): Promise<number> {
  const m = new RegExp(`^rhizome_relay_drops_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(await metrics());
  return m ? Number(m[1]) : 0;
}

async function gauge(name: string): Promise<number> {
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await metrics())?.[1]);
}

/** Waits (bounded) until the relay's drop counter for `reason` reaches `n`. */
async function dropsReach(reason: string, n: number): Promise<number> {
  let seen = 0;
  for (let i = 0; i < 200; i++) {
    seen = await drops(reason);
    if (seen >= n) return seen;
    await new Promise((r) => setTimeout(r, 25));
  }
  return seen;
}

function rawUpgrade(url: string): Promise<Socket> {
  const u = new URL(url);
  const sock = netConnect(Number(u.port), u.hostname);
  sock.on('error', () => {});
  return new Promise((resolve, reject) => {
    sock.once('connect', () => {
      sock.write(
        'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      sock.once('data', (d: Buffer) => (d.toString().startsWith('HTTP/1.1 101') ? resolve(sock) : reject(new Error(d.toString()))));
    });
  });
}

beforeAll(async () => {
  relay = await startRelayProcess([
    '--port', '0', '--host', '127.0.0.1',
    '--max-connections-per-ip', String(PER_IP),
    '--max-topics', '1024',
    '--max-frames-per-second', '2000', '--frame-burst', '5000',
    '--max-bytes-per-second', String(16 * 1024 * 1024), '--byte-burst', String(32 * 1024 * 1024),
    '--max-buffered-bytes', String(MAX_BUFFERED),
    '--max-frame-size', String(MAX_FRAME),
    '--heartbeat-ms', '5000',
  ]);
  baselineRss = relay.memory().rss;
  // The well-behaved pair: two databases with their own SQLite files, syncing through the relay.
  dir = mkdtempSync(join(tmpdir(), 'rhizome-relay-abuse-'));
  const id = generateDatabaseId();
  const open = (name: string): Promise<Database> =>
    openDatabase({ id, path: join(dir, `${name}.db`), transport: createTransport({ mode: 'relay', relayUrl: relay.url, timeoutMs: WAIT }) });
  [a, b] = await Promise.all([open('a'), open('b')]);
  // B acknowledges every ping A writes; A writes the next one 5 ms after the ack arrived.
  void (async () => {
    const sub = b.events.subscribe();
    for await (const e of sub) {
      if (pair.stop) break;
      if (e.type === 'node-upsert' && e.id === 'ping' && e.origin === 'remote') b.put('ack', { i: e.data.i ?? -1 });
    }
    sub.unsubscribe();
  })().catch(() => undefined);
  pair.last = performance.now();
  pair.done = (async () => {
    try {
      for (let i = 0; !pair.stop; i++) {
        a.put('ping', { i });
        await until(a, () => a.get('ack')?.i === i, `ack ${i}`, WAIT);
        const now = performance.now();
        pair.maxGapMs = Math.max(pair.maxGapMs, now - pair.last);
        pair.last = now;
        pair.rounds++;
        await new Promise((r) => setTimeout(r, 5));
      }
    } catch (error) {
      pair.error = error;
    }
  })();
});

afterAll(async () => {
  pair.stop = true;
  await pair.done;
  await Promise.all([a?.close(), b?.close()]);
  expect(await relay?.stop()).toBe(0);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The pair made progress since `before` (a few more round trips). */
async function pairProgressed(before: number): Promise<void> {
  for (let i = 0; i < 400 && pair.rounds < before + 5 && pair.error === null; i++) await new Promise((r) => setTimeout(r, 10));
  expect(pair.error).toBeNull();
  expect(pair.rounds).toBeGreaterThanOrEqual(before + 5);
  console.log(`pair: ${pair.rounds} rounds, longest gap so far ${pair.maxGapMs.toFixed(0)} ms`);
}

describe('relay under bad input, with a pair syncing through it', () => {
  it('garbage bytes instead of HTTP: the socket is dropped', async () => {
    const before = pair.rounds;
    const sock = netConnect(relay.port, '127.0.0.1');
    sock.on('error', () => {});
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write(randomBytes(4096));
    await within(WAIT, 'the garbage socket to close', closed);
    await pairProgressed(before);
  });

  it('garbage bytes after the upgrade (invalid WebSocket framing): closed with 1002', async () => {
    const before = pair.rounds;
    const errorsBefore = await drops('protocol_error');
    const sock = await rawUpgrade(relay.url);
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    // An unmasked frame with reserved bits set: invalid from a client.
    sock.write(Buffer.concat([Buffer.from([0xf2, 0x7e]), randomBytes(64)]));
    await within(WAIT, 'the socket to close', closed);
    const reply = Buffer.concat(chunks);
    expect(reply[0]).toBe(0x88); // a close frame
    expect(reply.readUInt16BE(2)).toBe(CloseCode.PROTOCOL_ERROR);
    expect(await dropsReach('protocol_error', errorsBefore + 1)).toBe(errorsBefore + 1);
    await pairProgressed(before);
  });

  it('unknown frame types: 4001; a frame before HELLO: 4002', async () => {
    const before = pair.rounds;
    const c1 = await RawClient.open(relay.url);
    c1.send(Uint8Array.from([0x42, 1, 2, 3]));
    expect((await within(WAIT, 'close', c1.closed)).code).toBe(CloseCode.UNKNOWN_FRAME_TYPE);
    const c2 = await RawClient.open(relay.url, { hello: false });
    c2.send(randomBytes(300).fill(0xee, 0, 1));
    expect((await within(WAIT, 'close', c2.closed)).code).toBe(CloseCode.UNKNOWN_FRAME_TYPE);
    const c3 = await RawClient.open(relay.url, { hello: false });
    c3.send(encodeTopicFrame(FrameType.JOIN, deriveTopic('x')));
    expect((await within(WAIT, 'close', c3.closed)).code).toBe(CloseCode.HELLO_REQUIRED);
    await pairProgressed(before);
  });

  it('truncated frames: 4000 (malformed)', async () => {
    const before = pair.rounds;
    for (const frame of [
      encodeTopicFrame(FrameType.JOIN, deriveTopic('t')).subarray(0, 20),
      encodeDataFrame(FrameType.SEND, 1, 2).subarray(0, 5),
      Uint8Array.from([FrameType.LOOKUP, 0, 0]),
      new Uint8Array(0),
    ]) {
      const c = await RawClient.open(relay.url);
      c.send(frame);
      expect((await within(WAIT, 'close', c.closed)).code).toBe(CloseCode.MALFORMED_FRAME);
    }
    await pairProgressed(before);
  });

  it('an oversized frame: 1009', async () => {
    const before = pair.rounds;
    const c = await RawClient.open(relay.url);
    c.send(new Uint8Array(MAX_FRAME + 1).fill(FrameType.SEND, 0, 1));
    expect((await within(WAIT, 'close', c.closed)).code).toBe(CloseCode.FRAME_TOO_LARGE);
    expect(await dropsReach('frame_too_large', 1)).toBeGreaterThanOrEqual(1);
    await pairProgressed(before);
  });

  it('joining 10,000 topics: 4020, and the topics it held are released', async () => {
    const before = pair.rounds;
    const c = await RawClient.open(relay.url);
    for (let i = 0; i < 10_000 && c.ws.readyState === WebSocket.OPEN; i++) {
      c.send(encodeTopicFrame(FrameType.JOIN, deriveTopic(`topic ${i}`)));
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    expect((await within(WAIT, 'close', c.closed)).code).toBe(CloseCode.TOO_MANY_TOPICS);
    for (let i = 0; i < 200 && (await gauge('rhizome_relay_topics')) !== 1; i++) await new Promise((r) => setTimeout(r, 25));
    expect(await gauge('rhizome_relay_topics')).toBe(1); // only the pair's
    await pairProgressed(before);
  });

  it('a client flooding frames: 4023; one flooding bytes: 4024', async () => {
    const before = pair.rounds;
    // The flooders run in their own processes: the pair's latency is the relay's, not this process's.
    const [frames, bytes] = await Promise.all([floodFromChildProcess(relay.url, 'frames'), floodFromChildProcess(relay.url, 'bytes')]);
    expect(frames).toBe(CloseCode.FRAME_RATE_EXCEEDED);
    expect(bytes).toBe(CloseCode.BYTE_RATE_EXCEEDED);
    await pairProgressed(before);
  });

  it('a client that never reads: cut once its buffer passes the bound (4025)', async () => {
    const before = pair.rounds;
    const topic = deriveTopic('slow');
    const slow = await RawClient.open(relay.url);
    await slow.join(topic);
    const feeder = await RawClient.open(relay.url);
    const feederTopic = await feeder.join(topic);
    const joined = await feeder.next(FrameType.PEER_JOINED);
    const slowSession = readU32(joined, 5);
    slow.ws.pause(); // never reads from now on
    const left = feeder.next(FrameType.PEER_LEFT).then(() => true);
    let cut = false;
    void left.then(() => (cut = true));
    const chunk = new Uint8Array(256 * 1024);
    let sentBytes = 0;
    for (let i = 0; i < 120 && !cut; i++) {
      await new Promise<void>((r) => feeder.send(encodeDataFrame(FrameType.SEND, feederTopic, slowSession, chunk), () => r()));
      sentBytes += chunk.length;
    }
    await within(WAIT, 'the relay to cut the slow consumer', left);
    expect(sentBytes).toBeGreaterThan(MAX_BUFFERED);
    slow.ws.resume();
    expect((await within(WAIT, 'close', slow.closed)).code).toBe(CloseCode.SLOW_CONSUMER);
    expect(await drops('slow_consumer')).toBe(1);
    feeder.close();
    await pairProgressed(before);
  });

  it(`2,000 connections from one address: those above ${PER_IP} are refused (HTTP 429 before the upgrade, or 4022)`, async () => {
    const before = pair.rounds;
    const codes = new Map<number, number>();
    const open: WebSocket[] = [];
    for (let batch = 0; batch < 20; batch++) {
      await Promise.all(
        Array.from({ length: 100 }, () => {
          const ws = new WebSocket(relay.url, { perMessageDeflate: false });
          ws.on('error', () => {});
          open.push(ws);
          return new Promise<void>((resolve) => {
            // Accepted connections stay open: count them once open and quiet for a moment.
            let timer: ReturnType<typeof setTimeout> | undefined;
            // Sockets over the limit are refused before the upgrade (they count from accept on).
            ws.once('unexpected-response', (req, res) => {
              codes.set(res.statusCode ?? -1, (codes.get(res.statusCode ?? -1) ?? 0) + 1);
              req.destroy();
              ws.removeAllListeners('close');
              resolve();
            });
            ws.once('open', () => {
              timer = setTimeout(() => {
                codes.set(0, (codes.get(0) ?? 0) + 1);
                resolve();
              }, 300);
            });
            ws.once('close', (code) => {
              clearTimeout(timer);
              codes.set(code, (codes.get(code) ?? 0) + 1);
              resolve();
            });
          });
        }),
      );
    }
    const accepted = codes.get(0) ?? 0;
    const refused = (codes.get(CloseCode.TOO_MANY_CONNECTIONS_PER_IP) ?? 0) + (codes.get(429) ?? 0);
    expect(accepted + refused).toBe(2000);
    expect(accepted).toBeLessThanOrEqual(PER_IP - 2);
    expect(refused).toBeGreaterThanOrEqual(2000 - PER_IP);
    await pairProgressed(before);
    for (const ws of open) ws.terminate();
  });

  it('the pair never stalled, and the relay\'s memory stayed bounded', async () => {
    await pairProgressed(pair.rounds);
    expect(pair.maxGapMs).toBeLessThan(3000);
    const { rss, peak } = relay.memory();
    console.log(`relay RSS at start ${(baselineRss / 2 ** 20).toFixed(1)} MiB, now ${(rss / 2 ** 20).toFixed(1)} MiB, peak ${(peak / 2 ** 20).toFixed(1)} MiB; pair rounds ${pair.rounds}, longest gap ${pair.maxGapMs.toFixed(0)} ms`);
    // Generous bounds: the offenders pushed well over 100 MiB through or at the relay.
    expect(peak - baselineRss).toBeLessThan(200 * 2 ** 20);
    expect(rss).toBeLessThan(baselineRss + 150 * 2 ** 20);
  });
});
