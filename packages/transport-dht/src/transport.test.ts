// Robustness of the DHT transport against peers that speak the protocol wrongly, stall, or are
// not there at all. A "raw" peer is a bare libp2p node of the same stack that opens streams on
// the sync protocol and writes bytes by hand. Everything runs on 127.0.0.1.
import { createServer, type Server, type Socket } from 'node:net';
import type { Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import type { Connection, RhizomeError } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { generatePrivateKey } from './keys.js';
import { createRhizomeNode, type RhizomeLibp2p } from './node.js';
import { syncProtocol } from './options.js';
import { Cleanup, eventually as eventuallyWithin, recordingTransport, syncStreams as syncStreamsOf, topicMaker } from './testing/fixtures.js';
import type { DhtTransport } from './transport.js';
import { encodeFrame, encodeHello, HandshakeStatus } from './wire.js';

const PROTOCOL = syncProtocol('/rhizome');
const LOCAL = ['/ip4/127.0.0.1/tcp/0'];
const WAIT = 10_000;

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const freshTopic = topicMaker('dht-robustness');

/** A transport that records the errors it reports. */
function transport(options: ConstructorParameters<typeof DhtTransport>[0] = {}): { t: DhtTransport; errors: RhizomeError[] } {
  return recordingTransport(cleanup, { handshakeTimeoutMs: 500 }, options);
}

async function rawPeer(): Promise<RhizomeLibp2p> {
  const node = await createRhizomeNode({
    privateKey: generatePrivateKey(),
    listen: LOCAL,
    protocolPrefix: '/rhizome',
    dhtClientMode: true,
    allowPrivateAddresses: true,
    dialTimeoutMs: 5000,
    pingTimeoutMs: 30_000,
  });
  await node.start();
  cleanup.push(() => node.stop());
  return node;
}

interface Recorded {
  bytes(): Buffer;
  /** How the stream ended: the remote's FIN, or a close (with an error if reset/aborted). */
  ended: Promise<{ how: 'fin' | 'closed' | 'reset'; error?: Error }>;
}

function record(stream: Stream): Recorded {
  const chunks: Uint8Array[] = [];
  let resolve!: (v: { how: 'fin' | 'closed' | 'reset'; error?: Error }) => void;
  const ended = new Promise<{ how: 'fin' | 'closed' | 'reset'; error?: Error }>((r) => (resolve = r));
  stream.addEventListener('message', (e) => chunks.push(e.data.subarray()));
  stream.addEventListener('remoteCloseWrite', () => resolve({ how: 'fin' }));
  stream.addEventListener('close', (e) => resolve(e.error ? { how: 'reset', error: e.error } : { how: 'closed' }));
  return { bytes: () => Buffer.concat(chunks), ended };
}

const syncStreams = (t: DhtTransport): number => syncStreamsOf(t, PROTOCOL);
const eventually = (what: string, cond: () => boolean): Promise<void> => eventuallyWithin(what, cond, WAIT);

async function first(conns: AsyncIterable<Connection>): Promise<Connection> {
  for await (const c of conns) return c;
  throw new Error('iterable ended without a connection');
}

describe('DhtTransport robustness', () => {
  it('closes peers with a wrong topic, a wrong version or garbage, and keeps serving others', async () => {
    const { t: listener, errors } = transport();
    const topic = freshTopic();
    const lConns = await listener.connect(topic);
    const addr = multiaddr(listener.multiaddrs()[0]!);
    const raw = await rawPeer();

    // 1. A HELLO for a topic the listener has not joined: status UNKNOWN_TOPIC, then a clean close.
    const s1 = await raw.dialProtocol(addr, PROTOCOL);
    const r1 = record(s1);
    s1.send(encodeHello(freshTopic()));
    expect((await within(WAIT, 'the refusal', r1.ended)).how).toBe('fin');
    expect([...r1.bytes()]).toEqual([HandshakeStatus.UNKNOWN_TOPIC]);
    await s1.close();

    // 2. A wrong version byte: status BAD_VERSION.
    const s2 = await raw.dialProtocol(addr, PROTOCOL);
    const r2 = record(s2);
    const badVersion = encodeHello(topic);
    badVersion[0] = 0x7f;
    s2.send(badVersion);
    expect((await within(WAIT, 'the refusal', r2.ended)).how).toBe('fin');
    expect([...r2.bytes()]).toEqual([HandshakeStatus.BAD_VERSION]);
    await s2.close();

    // 3. A few bytes of garbage and then silence: reset after the handshake timeout.
    const s3 = await raw.dialProtocol(addr, PROTOCOL);
    const r3 = record(s3);
    s3.send(new Uint8Array([1, 2, 3, 4, 5]));
    expect((await within(WAIT, 'the reset', r3.ended)).how).toBe('reset');
    expect(r3.bytes().length).toBe(0);

    // 4. 4 KiB of random garbage: its first byte is no version we speak.
    const s4 = await raw.dialProtocol(addr, PROTOCOL);
    const r4 = record(s4);
    const garbage = new Uint8Array(4096).map((_, i) => (i * 131 + 7) & 0xff);
    s4.send(garbage);
    const end4 = await within(WAIT, 'the close', r4.ended);
    expect(['fin', 'reset']).toContain(end4.how);
    await s4.close().catch(() => {});

    expect(errors.map((e) => e.code)).toEqual(expect.arrayContaining(['ERR_PROTOCOL', 'ERR_TIMEOUT']));

    // The listener still serves a well-behaved peer, which finds it through the DHT.
    const { t: good } = transport({ bootstrap: [listener.multiaddrs()[0]!] });
    const [cl, cg] = await within(WAIT, 'the good pair', Promise.all([first(lConns), first(await good.connect(topic))]));
    expect(cl.peerId).toBe(good.peerId);
    expect(cg.peerId).toBe(listener.peerId);
    await cg.send(new Uint8Array([42]));
    expect(await within(WAIT, 'a message', cl.receive())).toEqual(new Uint8Array([42]));

    // Nothing of the refused streams lingers: one sync stream, the good pair's.
    await eventually('refused streams to be gone', () => syncStreams(listener) === 1);
  });

  it('a peer speaking the protocol by hand: bytes on the wire are as documented', async () => {
    const { t: listener } = transport();
    const topic = freshTopic();
    const lConns = await listener.connect(topic);
    const raw = await rawPeer();
    const s = await raw.dialProtocol(multiaddr(listener.multiaddrs()[0]!), PROTOCOL);
    const r = record(s);
    s.send(encodeHello(topic));
    const conn = await within(WAIT, 'the connection', first(lConns));
    expect(conn.peerId).toBe(raw.peerId.toString());
    // Two frames in one write, the second split from its header.
    s.send(Buffer.concat([encodeFrame(new Uint8Array([1, 2, 3])), encodeFrame(new Uint8Array(0)).subarray(0, 2)]));
    s.send(new Uint8Array([0, 0]));
    expect(await within(WAIT, 'frame 1', conn.receive())).toEqual(new Uint8Array([1, 2, 3]));
    expect(await within(WAIT, 'frame 2', conn.receive())).toEqual(new Uint8Array(0));
    await conn.send(new Uint8Array([7, 8]));
    await conn.close();
    expect((await within(WAIT, 'the close', r.ended)).how).toBe('fin');
    expect([...r.bytes()]).toEqual([HandshakeStatus.OK, 0, 0, 0, 2, 7, 8]);
    await s.close();
    await eventually('the stream to be gone', () => syncStreams(listener) === 0);
  });

  it('an oversized frame closes that connection with ERR_FRAME_TOO_LARGE', async () => {
    const { t: listener, errors } = transport({ maxMessageSize: 4096 });
    const topic = freshTopic();
    const lConns = await listener.connect(topic);
    const raw = await rawPeer();
    const s = await raw.dialProtocol(multiaddr(listener.multiaddrs()[0]!), PROTOCOL);
    const r = record(s);
    s.send(encodeHello(topic));
    const conn = await within(WAIT, 'the connection', first(lConns));
    s.send(encodeFrame(new Uint8Array([1])));
    // A header announcing 4097 bytes: refused before the payload is buffered.
    s.send(new Uint8Array([0, 0, 0x10, 0x01]));
    expect(await within(WAIT, 'the frame before', conn.receive())).toEqual(new Uint8Array([1]));
    expect(await within(WAIT, 'the close', conn.receive())).toBeNull();
    expect(conn.closed).toBe(true);
    expect((await within(WAIT, 'the reset', r.ended)).how).toBe('reset');
    expect(errors.find((e) => e.code === 'ERR_FRAME_TOO_LARGE')).toMatchObject({ size: 4097, limit: 4096 });
    await eventually('the stream to be gone', () => syncStreams(listener) === 0);
  });

  it('a peer that stops reading makes send fail with ERR_TIMEOUT and closes the connection', async () => {
    const { t: listener, errors } = transport({ timeoutMs: 1000 });
    const topic = freshTopic();
    const lConns = await listener.connect(topic);
    const raw = await rawPeer();
    const s = await raw.dialProtocol(multiaddr(listener.multiaddrs()[0]!), PROTOCOL);
    record(s);
    s.send(encodeHello(topic));
    const conn = await within(WAIT, 'the connection', first(lConns));
    s.pause(); // yamux stops granting window: the listener's sends back up
    const chunk = new Uint8Array(64 * 1024);
    let failure: unknown = null;
    // Bounded: the stream window (4 MiB) plus buffers fill long before 64 MiB.
    for (let i = 0; i < 1024 && failure === null; i++) {
      await conn.send(chunk).catch((e: unknown) => (failure = e));
    }
    expect(failure).toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(conn.closed).toBe(true);
    expect(errors.map((e) => e.code)).toContain('ERR_TIMEOUT');
    await expect(conn.send(chunk)).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
  });

  it('unreachable and silent bootstrap peers: typed errors, no crash, connect still joins', async () => {
    // A port nobody listens on.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    // A server that accepts TCP and never says a word.
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanup.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          silent.close(() => r());
        }),
    );
    const silentPort = (silent.address() as { port: number }).port;
    const { t, errors } = transport({
      bootstrap: [`/ip4/127.0.0.1/tcp/${deadPort}`, `/ip4/127.0.0.1/tcp/${silentPort}`],
      timeoutMs: 2000,
      // No LAN discovery: a node of a test file running beside this one, found by mDNS, would
      // connect to this one and give announce/lookup a DHT peer (seen as a flake: "promise
      // resolved instead of rejecting").
      mdns: false,
    });
    const topic = freshTopic();
    await expect(t.announce(topic)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' });
    await expect(t.lookup(topic)).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' });
    expect(errors.map((e) => e.code)).toEqual(expect.arrayContaining(['ERR_CONNECT_FAILED', 'ERR_TIMEOUT']));
    const conns = await t.connect(topic);
    const ended = (async () => {
      for await (const c of conns) return c;
      return null;
    })();
    await t.disconnect();
    expect(await within(WAIT, 'the iterable to end', ended)).toBeNull();
  });

  it('a listen address that cannot be bound fails start with ERR_CONNECT_FAILED (connect reports it and retries)', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => taken.close(() => r())));
    const port = (taken.address() as { port: number }).port;
    const { t, errors } = transport({ listen: [`/ip4/127.0.0.1/tcp/${port}`] });
    await expect(t.start()).rejects.toMatchObject({ code: 'ERR_CONNECT_FAILED' });
    await t.connect(freshTopic());
    expect(errors.some((e) => e.code === 'ERR_CONNECT_FAILED')).toBe(true);
    await t.disconnect();
    await expect(t.start()).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
  });

  it('a link cut under a connection is seen on both sides, and the pair reconnects by itself', async () => {
    const { t: a } = transport({ lookupIntervalMs: 600_000 });
    await a.start();
    const { t: b } = transport({ bootstrap: [a.multiaddrs()[0]!], lookupIntervalMs: 600_000 });
    const topic = freshTopic();
    const [ia, ib] = await Promise.all([a.connect(topic), b.connect(topic)]);
    const ita = ia[Symbol.asyncIterator]();
    const itb = ib[Symbol.asyncIterator]();
    const [ca, cb] = await within(WAIT, 'the pair', Promise.all([ita.next(), itb.next()]));
    // Cut the libp2p connection under the stream (as a failed ping or a broken link would).
    for (const c of a.libp2p!.getConnections()) c.abort(new Error('link cut by the test'));
    expect(await within(WAIT, 'the close on a', (ca.value as Connection).receive())).toBeNull();
    expect(await within(WAIT, 'the close on b', (cb.value as Connection).receive())).toBeNull();
    // A new pair comes up without waiting for the next scheduled lookup (10 minutes away).
    const [na, nb] = await within(WAIT, 'the new pair', Promise.all([ita.next(), itb.next()]));
    expect((na.value as Connection).peerId).toBe(b.peerId);
    expect((nb.value as Connection).peerId).toBe(a.peerId);
    await (na.value as Connection).send(new Uint8Array([3]));
    expect(await within(WAIT, 'a message on the new pair', (nb.value as Connection).receive())).toEqual(new Uint8Array([3]));
  });

  it('the provider record of a peer that left expires from the DHT nodes that stored it', async () => {
    // A DHT server with records living 1.5 s and a sweep every 300 ms (deployments: 1 h, 10 min).
    const server = await createRhizomeNode({
      privateKey: generatePrivateKey(),
      listen: LOCAL,
      protocolPrefix: '/rhizome',
      dhtClientMode: false,
      allowPrivateAddresses: true,
      dialTimeoutMs: 5000,
      pingTimeoutMs: 30_000,
      providerValidityMs: 1500,
      providerSweepIntervalMs: 300,
    });
    await server.start();
    cleanup.push(() => server.stop());
    const addr = server.getMultiaddrs()[0]!.toString();
    const topic = freshTopic();
    const { t: leaver } = transport({ bootstrap: [addr] });
    await leaver.announce(topic);
    await leaver.disconnect();
    const { t: seeker } = transport({ bootstrap: [addr] });
    const found = await seeker.lookup(topic);
    expect(found.map((p) => p.peerId)).toEqual([leaver.peerId]);
    // Gone after the record's lifetime and one sweep: polled, since the sweep is a timer inside
    // kad-dht; bounded in count and time.
    let left = found;
    const deadline = Date.now() + WAIT;
    for (let i = 0; left.length > 0 && i < 100 && Date.now() < deadline; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await seeker.lookup(topic);
    }
    expect(left).toEqual([]);
  });

  it('a topic joined twice is ERR_TOPIC_ALREADY_JOINED; after leaving it can be joined again', async () => {
    const { t } = transport();
    const topic = freshTopic();
    const ac = new AbortController();
    await t.connect(topic, { signal: ac.signal });
    await expect(t.connect(topic)).rejects.toMatchObject({ code: 'ERR_TOPIC_ALREADY_JOINED' });
    ac.abort();
    await t.connect(topic);
  });
});

describe('DhtTransport listen failures', () => {
  it('a listen address that cannot be bound is reported and retried with backoff; the node starts once it is free', async () => {
    // Hold a port with a plain TCP server, and ask the transport to listen on it.
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    let blocked = true;
    cleanup.push(() => (blocked ? new Promise<void>((r) => blocker.close(() => r())) : Promise.resolve()));
    const { t, errors } = transport({ listen: [`/ip4/127.0.0.1/tcp/${port}`] });
    // connect() no longer rejects: the topic is registered and the start is retried.
    const conns = await t.connect(freshTopic());
    expect(conns).toBeDefined();
    await eventually('the bind failure to be reported', () => errors.some((e) => e.code === 'ERR_CONNECT_FAILED'));
    await eventually('a retry to be reported too', () => errors.filter((e) => e.code === 'ERR_CONNECT_FAILED').length >= 2);
    await new Promise<void>((r) => blocker.close(() => r()));
    blocked = false;
    await eventually('the node to listen on the freed port', () => t.multiaddrs().some((a) => a.includes(`/tcp/${port}/`)));
  });
});
