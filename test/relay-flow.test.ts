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
import { RelayTransport } from '@rhizome/transport-relay';
import { FrameType, encodeHello, encodePing, utf8 } from '@rhizome/transport-relay/protocol';
import { openDatabase, type Database } from '@rhizome/sync';
import { nextEvent } from './sync-helpers.js';

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

async function firstConnection(t: RelayTransport, topic: Uint8Array): Promise<Connection> {
  const it = (await t.connect(topic))[Symbol.asyncIterator]();
  const r = await within(WAIT, 'a connection', it.next());
  if (r.done) throw new Error('iterable ended');
  return r.value;
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
  it('an app Connection nobody reads does not stall the database on the same socket; it alone closes with ERR_SLOW_CONSUMER', async () => {
    const relay = await relayWith();
    const errorsA: RhizomeError[] = [];
    // Default bounds: the scenario (the old client paused the socket at 8,192 unread messages).
    const ta = transport(relay.url, { onError: (e) => errorsA.push(e) });
    const tb = transport(relay.url);
    const id = 'hol database';
    const [a, b] = await Promise.all([db(id, ta), db(id, tb)]);
    await within(WAIT, 'first sync', Promise.all([a.whenSynced({ minPeers: 1 }), b.whenSynced({ minPeers: 1 })]));

    // An app protocol on another topic of the same two transports; A never reads it.
    const appTopic = deriveTopic('hol app topic');
    const [unread, appSender] = await Promise.all([firstConnection(ta, appTopic), firstConnection(tb, appTopic)]);
    const N = 12_000;
    const payload = new Uint8Array(64);
    for (let i = 0; i < N && !appSender.closed; i++) await appSender.send(payload).catch(() => undefined);

    // The database keeps working both ways while that Connection overflows.
    const seen = nextEvent(a, (e) => e.type === 'node-upsert' && e.id === 'from-b', 'B→A put to arrive', WAIT);
    b.put('from-b', { n: 1 });
    await seen;
    const seenB = nextEvent(b, (e) => e.type === 'node-upsert' && e.id === 'from-a', 'A→B put to arrive', WAIT);
    a.put('from-a', { n: 2 });
    await seenB;

    // The unread Connection was closed on its own, with a typed error, and the remote saw the pair close.
    await until(() => errorsA.some((e) => e.code === 'ERR_SLOW_CONSUMER'), 'the overflow error');
    expect(unread.closed).toBe(true);
    await expect(unread.receive()).rejects.toMatchObject({ code: 'ERR_SLOW_CONSUMER', messages: 8193 });
    expect(await drain(appSender, 'the sender to see the pair close')).toBe(null);
    expect(relay.stats().drops.slow_consumer ?? 0).toBe(0);
    expect(ta.state).toBe('connected');
  });

  it('the byte bound closes a Connection holding too many unread bytes, and only it', async () => {
    const relay = await relayWith();
    const errors: RhizomeError[] = [];
    const ta = transport(relay.url, { inboundMaxBytes: 4 * 1024 * 1024, onError: (e) => errors.push(e) });
    const tb = transport(relay.url);
    const [unread, sender] = await Promise.all([firstConnection(ta, deriveTopic('bytes unread')), firstConnection(tb, deriveTopic('bytes unread'))]);
    const [readA, readB] = await Promise.all([firstConnection(ta, deriveTopic('bytes read')), firstConnection(tb, deriveTopic('bytes read'))]);
    const big = new Uint8Array(512 * 1024);
    for (let i = 0; i < 12 && !sender.closed; i++) await sender.send(big).catch(() => undefined);
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

  it('a link that dies while a Connection holds unread messages is noticed by the client and by the relay', async () => {
    // Heartbeats of 1 s: short enough for a test, long enough that a loaded CI machine (client,
    // relay and sender share this process) does not miss a pong on a healthy link.
    const relay = await relayWith({ heartbeatIntervalMs: 1000 });
    const proxy = await freezableProxy(relay.url);
    const errors: RhizomeError[] = [];
    const ta = transport(proxy.url, { heartbeatIntervalMs: 1000, inboundHighWaterMark: 100_000, onError: (e) => errors.push(e) });
    const tb = transport(relay.url);
    const topic = deriveTopic('dies while unread');
    const [, sender] = await Promise.all([firstConnection(ta, topic), firstConnection(tb, topic)]);
    // 9,000 unread messages: past the old client's pause point (8,192), within this one's bound.
    for (let i = 0; i < 9000; i++) {
      await sender.send(new Uint8Array(16));
      // Let the relay (in this process) and the pongs run: a blocked loop is not a dead link.
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => relay.stats().framesOut >= 9000, () => `the messages to leave the relay: ${JSON.stringify(relay.stats())} ${errors.map((e) => e.message).join('; ')}`);
    proxy.freeze();
    await until(() => errors.some((e) => e.code === 'ERR_CONNECT_FAILED' && /silent/.test(e.message)), 'the client to notice the silent link');
    await until(() => (relay.stats().drops.heartbeat_timeout ?? 0) > 0, 'the relay to cut the silent client');
  });
});
