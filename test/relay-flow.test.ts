// Relay flow control and liveness (issue 10, defect 2): one unread app Connection must never
// stall the database's traffic on the same socket; its overflow closes that Connection alone
// with ERR_SLOW_CONSUMER; and a dead link or a dead reader is noticed on both sides within the
// heartbeat bound.
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { deriveTopic, type Connection, type RhizomeError } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { RelayTransport, type RelayConnection } from '@rhizome/transport-relay';
import { FrameType, encodeDataFrame, encodeHello, encodePing, utf8 } from '@rhizome/transport-relay/protocol';
import { RawClient } from '@rhizome/relay/testing';
import { openDatabase, type Database } from '@rhizome/sync';
import { firstConnection, nextEvent } from './sync-helpers.js';

const WAIT = 15_000;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

function transport(url: string, extra: Partial<ConstructorParameters<typeof RelayTransport>[0]> = {}): RelayTransport {
  const t = new RelayTransport({ url, timeoutMs: WAIT, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, ...extra });
  cleanup.push(() => t.disconnect());
  return t;
}

/** Polls `cond` every 10 ms (letting I/O run) until it holds; throws after `ms`. */
async function until(cond: () => boolean, what: string | (() => string), ms = WAIT): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Reads `conn` until it ends (null) or fails; resolves with the error, or null when it ended cleanly. */
async function drain(conn: Connection, what: string): Promise<unknown> {
  const deadline = Date.now() + WAIT;
  try {
    for (;;) {
      if (Date.now() > deadline) throw new Error(`timed out after ${WAIT} ms waiting for ${what}`);
      if ((await within(WAIT, what, conn.receive())) === null) return null;
    }
  } catch (error) {
    return error;
  }
}

async function relayWith(options: Parameters<typeof createRelayServer>[0] = {}): Promise<RelayServer> {
  const r = await createRelayServer({ port: 0, host: '127.0.0.1', ...options });
  cleanup.push(() => r.close());
  return r;
}

async function db(id: string, t: RelayTransport): Promise<Database> {
  const d = await openDatabase({ id, transport: t });
  cleanup.push(() => d.close());
  return d;
}


/** A TCP proxy that can be frozen: it then stops forwarding both ways but keeps both sockets open. */
async function freezableProxy(target: string): Promise<{ url: string; freeze: () => void; close: () => Promise<void> }> {
  const to = new URL(target);
  const pairs: Array<[Socket, Socket]> = [];
  let frozen = false;
  const server: Server = createServer((client) => {
    const upstream = netConnect(Number(to.port), to.hostname);
    client.on('error', () => {});
    upstream.on('error', () => {});
    pairs.push([client, upstream]);
    client.on('data', (d) => {
      if (!frozen) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!frozen) client.write(d);
    });
    // Frozen means dead in both directions: a close on one side does not reach the other either.
    client.on('close', () => !frozen && upstream.destroy());
    upstream.on('close', () => !frozen && client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const close = async (): Promise<void> => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    await new Promise<void>((r) => server.close(() => r()));
  };
  cleanup.push(close);
  return { url: `ws://127.0.0.1:${port}`, freeze: () => void (frozen = true), close };
}

describe('per-Connection flow control on one relay socket', () => {
  it('an app Connection nobody reads does not stall the database on the same socket: its sender waits on its window, and nothing is lost', async () => {
    const relay = await relayWith();
    const errorsA: RhizomeError[] = [];
    // Default bounds: the scenario (the old client paused the socket at 8,192 unread messages).
    const ta = transport(relay.url, { onError: (e) => errorsA.push(e) });
    const tb = transport(relay.url);
    const id = 'hol database';
    const [a, b] = await Promise.all([db(id, ta), db(id, tb)]);
    await within(WAIT, 'first sync', Promise.all([a.whenSynced({ minPeers: 1 }), b.whenSynced({ minPeers: 1 })]));

    // An app protocol on another topic of the same two transports; A does not read it (yet).
    const appTopic = deriveTopic('hol app topic');
    const [unread, appSender] = await Promise.all([firstConnection(ta, appTopic, WAIT), firstConnection(tb, appTopic, WAIT)]);
    const N = 12_000;
    let sent = 0;
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < N; i++) {
      const m = new Uint8Array(64);
      new DataView(m.buffer).setUint32(0, i);
      sends.push(appSender.send(m).then(() => void sent++));
    }

    // The database keeps working both ways while that Connection is full.
    const seen = nextEvent(a, (e) => e.type === 'node-upsert' && e.id === 'from-b', 'B→A put to arrive', WAIT);
    b.put('from-b', { n: 1 });
    await seen;
    const seenB = nextEvent(b, (e) => e.type === 'node-upsert' && e.id === 'from-a', 'A→B put to arrive', WAIT);
    a.put('from-a', { n: 2 });
    await seenB;

    // The app sender was held back by A's window (4 MiB of credit, 576 per 64-byte message), not
    // by the socket: fewer than N sends went, A holds them unread, and nothing overflowed.
    expect(sent).toBeLessThan(N);
    expect((unread as RelayConnection).buffered).toBeLessThanOrEqual(Math.ceil((4 * 1024 * 1024) / 576));
    expect(unread.closed).toBe(false);
    // Now A reads: every message arrives, in order, and every send resolves.
    for (let i = 0; i < N; i++) {
      const m = await within(WAIT, `message ${i}`, unread.receive());
      expect(new DataView(m!.buffer, m!.byteOffset).getUint32(0)).toBe(i);
    }
    await within(WAIT, 'every send to resolve', Promise.all(sends));
    expect(errorsA.filter((e) => e.code === 'ERR_SLOW_CONSUMER')).toEqual([]);
    expect(relay.stats().drops.slow_consumer ?? 0).toBe(0);
    expect(ta.state).toBe('connected');
  });

  it('a sender that ignores the window (a raw client) overflows only its own Connection: ERR_SLOW_CONSUMER at the message bound', async () => {
    const relay = await relayWith();
    const errorsA: RhizomeError[] = [];
    const ta = transport(relay.url, { onError: (e) => errorsA.push(e) });
    const tb = transport(relay.url);
    const id = 'overflow database';
    const [a, b] = await Promise.all([db(id, ta), db(id, tb)]);
    await within(WAIT, 'first sync', Promise.all([a.whenSynced({ minPeers: 1 }), b.whenSynced({ minPeers: 1 })]));
    // A raw client pairs with A on an app topic and floods it with SENDs, granting itself credit.
    const appTopic = deriveTopic('overflow app topic');
    const raw = await RawClient.open(relay.url);
    cleanup.push(async () => raw.close());
    const unreadP = firstConnection(ta, appTopic, WAIT);
    const topicId = await raw.join(appTopic);
    const peerJoined = await within(WAIT, 'PEER_JOINED', raw.next(FrameType.PEER_JOINED));
    const unread = await unreadP;
    const to = new DataView(peerJoined.buffer, peerJoined.byteOffset).getUint32(5);
    for (let i = 0; i < 9000; i++) {
      raw.send(encodeDataFrame(FrameType.SEND, topicId, to, new Uint8Array(64)));
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => errorsA.some((e) => e.code === 'ERR_SLOW_CONSUMER'), 'the overflow error');
    expect(unread.closed).toBe(true);
    await expect(unread.receive()).rejects.toMatchObject({ code: 'ERR_SLOW_CONSUMER', messages: 8193 });
    // The remote heard the pair close; the database on the same socket carries on.
    await within(WAIT, 'PEER_CLOSED at the raw client', raw.next(FrameType.PEER_CLOSED));
    const seen = nextEvent(a, (e) => e.type === 'node-upsert' && e.id === 'after-overflow', 'B→A put after the overflow', WAIT);
    b.put('after-overflow', { n: 1 });
    await seen;
    expect(ta.state).toBe('connected');
    expect(relay.stats().drops.slow_consumer ?? 0).toBe(0);
  });

  it('the byte bound closes a Connection holding too many unread bytes, and only it', async () => {
    const relay = await relayWith();
    const errors: RhizomeError[] = [];
    const ta = transport(relay.url, { inboundMaxBytes: 2 * 1024 * 1024, onError: (e) => errors.push(e) });
    const tb = transport(relay.url);
    const [unread, sender] = await Promise.all([firstConnection(ta, deriveTopic('bytes unread'), WAIT), firstConnection(tb, deriveTopic('bytes unread'), WAIT)]);
    const [readA, readB] = await Promise.all([firstConnection(ta, deriveTopic('bytes read'), WAIT), firstConnection(tb, deriveTopic('bytes read'), WAIT)]);
    // The window (4 MiB) is larger than this reader's byte bound (2 MiB): the bound trips first.
    const big = new Uint8Array(512 * 1024);
    for (let i = 0; i < 6 && !sender.closed; i++) await sender.send(big).catch(() => undefined);
    await readB.send(utf8('still here'));
    const got = await within(WAIT, 'a message on the other Connection', readA.receive());
    expect(new TextDecoder().decode(got!)).toBe('still here');
    await until(() => unread.closed, 'the unread Connection to close');
    expect(await drain(unread, 'the unread Connection to fail')).toMatchObject({ code: 'ERR_SLOW_CONSUMER' });
    expect(errors.some((e) => e.code === 'ERR_SLOW_CONSUMER')).toBe(true);
    expect(readA.closed).toBe(false);
  });
});

describe('liveness on both sides', () => {
  it('the relay does not take frames from a client as liveness: a client that writes but stopped reading is cut by the heartbeat', async () => {
    const relay = await relayWith({ heartbeatIntervalMs: 500 });
    const ws = new WebSocket(relay.url, { perMessageDeflate: false });
    ws.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const welcome = new Promise<void>((r) => ws.on('message', (d: Buffer) => d[0] === FrameType.WELCOME && r()));
    ws.send(encodeHello(utf8('writer-not-reader'), null));
    await within(WAIT, 'WELCOME', welcome);
    // Stop reading (no pong can be sent for a ping never read), but keep writing PINGs.
    ws.pause();
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    let n = 0;
    const writer = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(encodePing(FrameType.PING, ++n));
    }, 20);
    cleanup.push(async () => clearInterval(writer));
    await until(() => (relay.stats().drops.heartbeat_timeout ?? 0) > 0, 'the relay to cut the dead reader');
    ws.resume();
    await within(WAIT, 'the socket to close', closed);
    expect(n).toBeGreaterThan(0);
  });

  it('a link that dies after a flood of unread messages (past the old pause point) is noticed by the client and by the relay', async () => {
    // Heartbeats of 1 s: short enough for a test, long enough that a loaded CI machine (client,
    // relay and sender share this process) does not miss a pong on a healthy link.
    const relay = await relayWith({ heartbeatIntervalMs: 1000 });
    const proxy = await freezableProxy(relay.url);
    const errors: RhizomeError[] = [];
    const ta = transport(proxy.url, { heartbeatIntervalMs: 1000, onError: (e) => errors.push(e) });
    const topic = deriveTopic('dies while unread');
    const raw = await RawClient.open(relay.url);
    cleanup.push(async () => raw.close());
    const conn = firstConnection(ta, topic, WAIT);
    const topicId = await raw.join(topic);
    const peerJoined = await within(WAIT, 'PEER_JOINED', raw.next(FrameType.PEER_JOINED));
    await conn;
    const to = new DataView(peerJoined.buffer, peerJoined.byteOffset).getUint32(5);
    // 8,500 unread messages, ignoring the window: past the old client's pause point (8,192).
    for (let i = 0; i < 8500; i++) {
      raw.send(encodeDataFrame(FrameType.SEND, topicId, to, new Uint8Array(16)));
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => errors.some((e) => e.code === 'ERR_SLOW_CONSUMER'), 'the unread Connection to overflow');
    proxy.freeze();
    await until(() => errors.some((e) => e.code === 'ERR_CONNECT_FAILED' && /silent/.test(e.message)), 'the client to notice the silent link');
    await until(() => (relay.stats().drops.heartbeat_timeout ?? 0) > 0, 'the relay to cut the silent client');
  });
});
