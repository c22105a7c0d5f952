// The relay client against a real relay: sessions that end and come back, takeover of a peer
// id, and inbound flow control.
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deriveTopic, type Connection } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { startRelayProcess } from '@rhizome/relay/testing';
import { RelayTransport } from '@rhizome/transport-relay';
import { PEER_LIST_LIMIT } from '../packages/transport-relay/src/transport.js';
import { encodeWelcome, FrameType } from '@rhizome/transport-relay/protocol';
import { WebSocketServer } from 'ws';

const WAIT = 15_000;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function transport(url: string, extra: Partial<ConstructorParameters<typeof RelayTransport>[0]> = {}): RelayTransport {
  const t = new RelayTransport({ url, timeoutMs: WAIT, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, ...extra });
  cleanup.push(() => t.disconnect());
  return t;
}

async function relayOn(port = 0): Promise<RelayServer> {
  const r = await createRelayServer({ port, host: '127.0.0.1' });
  cleanup.push(() => r.close());
  return r;
}

async function next(it: AsyncIterator<Connection>, what: string): Promise<Connection> {
  const r = await within(WAIT, what, it.next());
  if (r.done) throw new Error(`iterable ended while waiting for ${what}`);
  return r.value;
}

describe('relay client sessions', () => {
  it('a relay restart closes the old Connections and yields new ones to the same peers', async () => {
    const relay = await relayOn();
    const a = transport(relay.url);
    const b = transport(relay.url);
    const topic = deriveTopic('restart');
    const [ia, ib] = (await Promise.all([a.connect(topic), b.connect(topic)])).map((x) => x[Symbol.asyncIterator]());
    const [ca, cb] = await Promise.all([next(ia!, 'a conn'), next(ib!, 'b conn')]);
    expect(ca.peerId).toBe(b.peerId);
    await relay.close();
    expect(await within(WAIT, 'old connection to close', cb.receive())).toBeNull();
    expect(ca.closed || (await within(WAIT, 'old a close', ca.receive())) === null).toBe(true);
    await expect(ca.send(new Uint8Array([1]))).rejects.toMatchObject({ code: 'ERR_CONNECTION_CLOSED' });
    const again = await relayOn(relay.port);
    expect(again.port).toBe(relay.port);
    const [na, nb] = await Promise.all([next(ia!, 'new a conn'), next(ib!, 'new b conn')]);
    expect(na.peerId).toBe(b.peerId);
    expect(nb.peerId).toBe(a.peerId);
    await na.send(new Uint8Array([42]));
    expect(await within(WAIT, 'message after restart', nb.receive())).toEqual(new Uint8Array([42]));
    expect(a.state).toBe('connected');
  });

  it('a topic with more peers than its list holds (PEER_LIST_LIMIT): each frame reaches its own Connection, and leaving ones close', async () => {
    const relay = await relayOn();
    const hub = transport(relay.url);
    const topic = deriveTopic('many peers');
    const hubIt = (await hub.connect(topic))[Symbol.asyncIterator]();
    const n = PEER_LIST_LIMIT + 4;
    const peers = Array.from({ length: n }, () => transport(relay.url));
    const their = await Promise.all(peers.map(async (p, i) => next((await p.connect(topic))[Symbol.asyncIterator](), `peer ${i} conn`)));
    const ours = new Map<string, Connection>();
    while (ours.size < n) {
      const c = await next(hubIt, `hub conn ${ours.size}`);
      ours.set(c.peerId, c);
    }
    // Both ways, one distinct byte per peer, on the Connection of that peer.
    await Promise.all(their.map((c, i) => c.send(new Uint8Array([i]))));
    for (let i = 0; i < n; i++) {
      const c = ours.get(peers[i]!.peerId)!;
      expect(await within(WAIT, `from peer ${i}`, c.receive())).toEqual(new Uint8Array([i]));
      await c.send(new Uint8Array([100 + i]));
      expect(await within(WAIT, `to peer ${i}`, their[i]!.receive())).toEqual(new Uint8Array([100 + i]));
    }
    // Peers leave: exactly their Connections close; the others still carry frames.
    for (let i = 0; i < 6; i++) await peers[i]!.disconnect();
    for (let i = 0; i < 6; i++) expect(await within(WAIT, `peer ${i} leaving`, ours.get(peers[i]!.peerId)!.receive())).toBeNull();
    for (let i = 6; i < n; i++) {
      const c = ours.get(peers[i]!.peerId)!;
      expect(c.closed).toBe(false);
      await their[i]!.send(new Uint8Array([200 + i]));
      expect(await within(WAIT, `from peer ${i} after`, c.receive())).toEqual(new Uint8Array([200 + i]));
    }
  });

  it('several topics on one transport: the first left, another joined in its place, all rejoined after a relay restart', async () => {
    // The transport holds its first topic in a field and the others in maps (by key and by the
    // relay's id): every topic must stay reachable however they come and go.
    const relay = await relayOn();
    const a = transport(relay.url);
    const b = transport(relay.url);
    const names = ['topics 1', 'topics 2', 'topics 3'];
    const aborts = names.map(() => new AbortController());
    const streams = await Promise.all(
      names.map(async (n, i) => {
        const [sa, sb] = await Promise.all([a.connect(deriveTopic(n), { signal: aborts[i]!.signal }), b.connect(deriveTopic(n))]);
        return [sa[Symbol.asyncIterator](), sb[Symbol.asyncIterator]()] as const;
      }),
    );
    const pairs = await Promise.all(streams.map(([ia, ib], i) => Promise.all([next(ia, `a conn ${i}`), next(ib, `b conn ${i}`)])));
    aborts[0]!.abort();
    expect(await within(WAIT, 'the left topic to close remotely', pairs[0]![1].receive())).toBeNull();
    const [ia4, ib4] = (await Promise.all([a.connect(deriveTopic('topics 4')), b.connect(deriveTopic('topics 4'))])).map((x) => x[Symbol.asyncIterator]());
    const fourth = await Promise.all([next(ia4!, 'a conn 4'), next(ib4!, 'b conn 4')]);
    const live = [pairs[1]!, pairs[2]!, fourth];
    for (const [i, [ca, cb]] of live.entries()) {
      await ca.send(new Uint8Array([i]));
      expect(await within(WAIT, `a message on live topic ${i}`, cb.receive())).toEqual(new Uint8Array([i]));
    }
    await relay.close();
    const again = await relayOn(relay.port);
    expect(again.port).toBe(relay.port);
    const iterators = [streams[1]!, streams[2]!, [ia4!, ib4!] as const];
    for (const [i, [ia, ib]] of iterators.entries()) {
      const [na, nb] = await Promise.all([next(ia, `new a conn ${i}`), next(ib, `new b conn ${i}`)]);
      await nb.send(new Uint8Array([10 + i]));
      expect(await within(WAIT, `a message after the restart on topic ${i}`, na.receive())).toEqual(new Uint8Array([10 + i]));
    }
    // The left topic is not rejoined: b (whose lookup lists the others) finds nobody on it, while
    // it finds a on a live one.
    expect(await b.lookup(deriveTopic('topics 1'))).toEqual([]);
    expect((await b.lookup(deriveTopic('topics 4'))).map((p) => p.peerId)).toEqual([a.peerId]);
  });

  it('a relay killed with SIGKILL: clients notice, back off, and rejoin when it is back', async () => {
    let relay = await startRelayProcess(['--port', '0', '--host', '127.0.0.1']);
    cleanup.push(() => relay.stop());
    const port = relay.port;
    const errors: string[] = [];
    const a = transport(relay.url, { onError: (e) => errors.push(e.code) });
    const b = transport(relay.url);
    const topic = deriveTopic('sigkill');
    const [ia, ib] = (await Promise.all([a.connect(topic), b.connect(topic)])).map((x) => x[Symbol.asyncIterator]());
    const [ca] = await Promise.all([next(ia!, 'a conn'), next(ib!, 'b conn')]);
    relay.child.kill('SIGKILL');
    expect(await within(WAIT, 'the connection to close', ca.receive())).toBeNull();
    relay = await startRelayProcess(['--port', String(port), '--host', '127.0.0.1']);
    const [na, nb] = await Promise.all([next(ia!, 'new a conn'), next(ib!, 'new b conn')]);
    await nb.send(new Uint8Array([7]));
    expect(await within(WAIT, 'message after the crash', na.receive())).toEqual(new Uint8Array([7]));
    expect(errors).toContain('ERR_CONNECT_FAILED');
  });

  it('a relay that never answers HELLO: the client closes that socket, reports ERR_CONNECT_FAILED, tries again, and the next WELCOME starts a session', async () => {
    // A bare ws server speaking just enough of the protocol: the first socket is never answered,
    // later ones get WELCOME for their HELLO; LOOKUPs are recorded.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    cleanup.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    let sockets = 0;
    let firstClosed!: (how: { code: number; reason: string }) => void;
    const firstClose = new Promise<{ code: number; reason: string }>((resolve) => (firstClosed = resolve));
    let lookedUp!: (socket: number) => void;
    const lookup = new Promise<number>((resolve) => (lookedUp = resolve));
    wss.on('connection', (ws) => {
      const n = ++sockets;
      if (n === 1) ws.on('close', (code, reason) => firstClosed({ code, reason: reason.toString() }));
      ws.on('message', (data: Buffer) => {
        if (n === 1) return;
        if (data[0] === FrameType.HELLO) ws.send(encodeWelcome(7, 1 << 20));
        if (data[0] === FrameType.LOOKUP) lookedUp(n);
      });
    });
    const { port } = wss.address() as { port: number };
    const errors: Array<{ code: string; message: string }> = [];
    let reported!: () => void;
    const helloError = new Promise<void>((resolve) => (reported = resolve));
    const t = transport(`ws://127.0.0.1:${port}`, {
      timeoutMs: 1000,
      heartbeatIntervalMs: 0,
      onError: (e) => {
        errors.push({ code: e.code, message: e.message });
        if (e.message.includes('did not answer HELLO')) reported();
      },
    });
    await t.connect(deriveTopic('a mute relay'));
    await within(WAIT, 'the HELLO timeout to be reported', helloError);
    expect(errors[0]).toMatchObject({ code: 'ERR_CONNECT_FAILED' });
    expect(await within(WAIT, 'the client to close the unanswered socket', firstClose)).toEqual({ code: 1000, reason: 'no WELCOME' });
    // A call that needs the session goes out on the next socket once its WELCOME came.
    const pending = t.lookup(deriveTopic('a mute relay')).catch((e: unknown) => e);
    expect(await within(WAIT, 'a LOOKUP on the second socket', lookup)).toBe(2);
    expect(t.state).toBe('connected');
    await t.disconnect();
    expect(await pending).toMatchObject({ code: 'ERR_TRANSPORT_CLOSED' });
  });

  it('disconnect() while HELLO waits for WELCOME: that socket is closed, the topic iterable ends, no error is reported and no socket follows', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    cleanup.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    let sockets = 0;
    let helloed!: () => void;
    const hello = new Promise<void>((resolve) => (helloed = resolve));
    let closed!: (code: number) => void;
    const firstClose = new Promise<number>((resolve) => (closed = resolve));
    wss.on('connection', (ws) => {
      sockets++;
      ws.on('close', (code) => closed(code));
      ws.on('message', (data: Buffer) => {
        if (data[0] === FrameType.HELLO) helloed(); // never answered
      });
    });
    const { port } = wss.address() as { port: number };
    const errors: string[] = [];
    const t = transport(`ws://127.0.0.1:${port}`, { timeoutMs: 10_000, heartbeatIntervalMs: 0, onError: (e) => void errors.push(e.message) });
    const it = (await t.connect(deriveTopic('closed while connecting')))[Symbol.asyncIterator]();
    await within(WAIT, 'the HELLO', hello);
    await within(WAIT, 'disconnect()', t.disconnect());
    expect(t.state).toBe('closed');
    expect(await within(WAIT, 'the pending socket to close', firstClose)).toBe(1000);
    expect(await within(WAIT, 'the iterable to end', it.next())).toMatchObject({ done: true });
    // Longer than the longest reconnect backoff (500 ms): nothing tries again.
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(sockets).toBe(1);
    expect(errors).toEqual([]);
  });

  it('the liveness checks of all transports run on one shared timer of their period (none per transport), cleared with the last session', async () => {
    const relay = await relayOn();
    const period = 4_321; // a period no other transport of this process uses
    const made = vi.spyOn(globalThis, 'setInterval');
    const cleared = vi.spyOn(globalThis, 'clearInterval');
    try {
      const ts = [0, 1, 2].map(() => transport(relay.url, { heartbeatIntervalMs: period }));
      const topic = deriveTopic('shared liveness');
      await Promise.all(ts.map((t) => t.lookup(topic))); // each waits for its session (WELCOME)
      const timers = made.mock.calls.flatMap((call, i) => (call[1] === period ? [made.mock.results[i]!.value as unknown] : []));
      expect(timers).toHaveLength(1);
      await ts[0]!.disconnect();
      await ts[1]!.disconnect();
      expect(cleared.mock.calls.some((call) => call[0] === timers[0])).toBe(false);
      await ts[2]!.disconnect();
      expect(cleared.mock.calls.some((call) => call[0] === timers[0])).toBe(true);
      // A new session joins a new shared timer.
      const again = transport(relay.url, { heartbeatIntervalMs: period });
      await again.lookup(topic);
      expect(made.mock.calls.filter((call) => call[1] === period)).toHaveLength(2);
    } finally {
      made.mockRestore();
      cleared.mockRestore();
    }
  });

  it('a relay that goes silent (SIGSTOP) is detected by the client heartbeat; it reconnects after SIGCONT', async () => {
    const relay = await startRelayProcess(['--port', '0', '--host', '127.0.0.1']);
    cleanup.push(async () => {
      relay.child.kill('SIGCONT');
      return relay.stop();
    });
    const errors: string[] = [];
    const opts = { heartbeatIntervalMs: 200, timeoutMs: 1000 };
    const a = transport(relay.url, { ...opts, onError: (e) => errors.push(e.message) });
    const b = transport(relay.url, opts);
    const topic = deriveTopic('silent relay');
    const [ia, ib] = (await Promise.all([a.connect(topic), b.connect(topic)])).map((x) => x[Symbol.asyncIterator]());
    const [ca] = await Promise.all([next(ia!, 'a conn'), next(ib!, 'b conn')]);
    // A quiet but healthy link survives several heartbeat intervals (PING answered by PONG).
    const quiet = await within(WAIT, 'a quiet second', new Promise<string>((r) => setTimeout(() => r(a.state), 1000)));
    expect(quiet).toBe('connected');
    expect(ca.closed).toBe(false);
    relay.child.kill('SIGSTOP');
    expect(await within(WAIT, 'the silent link to be dropped', ca.receive())).toBeNull();
    expect(errors.some((m) => m.includes('went silent'))).toBe(true);
    relay.child.kill('SIGCONT');
    const [na, nb] = await Promise.all([next(ia!, 'new a conn'), next(ib!, 'new b conn')]);
    await na.send(new Uint8Array([3]));
    expect(await within(WAIT, 'message after SIGCONT', nb.receive())).toEqual(new Uint8Array([3]));
  });

  it('a second transport with a peer id in use is refused (PEER_ID_TAKEN) and cannot take it over; it gets in once the holder leaves', async () => {
    const relay = await relayOn();
    const first = transport(relay.url, { peerId: 'twin' });
    const topic = deriveTopic('twins');
    await first.lookup(topic);
    const refusals: string[] = [];
    let refused!: () => void;
    const firstRefusal = new Promise<void>((r) => (refused = r));
    const second = transport(relay.url, {
      peerId: 'twin',
      onError: (e) => {
        refusals.push((e as { closeName?: string }).closeName ?? e.code);
        if ((e as { closeName?: string }).closeName === 'PEER_ID_TAKEN') refused();
      },
    });
    const secondIn = second.lookup(topic);
    await within(WAIT, 'the impostor to be refused', firstRefusal);
    // The holder keeps its session and keeps working.
    expect(first.state).toBe('connected');
    const peer = transport(relay.url, { peerId: 'other' });
    await peer.announce(topic);
    expect((await first.lookup(topic)).map((p) => p.peerId)).toEqual(['other']);
    // Once the holder leaves, the retrying transport gets the id.
    await first.disconnect();
    await within(WAIT, 'the second transport to get in', secondIn);
    expect(second.state).toBe('connected');
    expect(refusals).toContain('PEER_ID_TAKEN');
  });

  it('connect() leaves no listener on its abort signal once the topic is left or the transport disconnected', async () => {
    const relay = await relayOn();
    const t = transport(relay.url);
    const shared = new AbortController();
    for (let i = 0; i < 5; i++) {
      const topic = deriveTopic(`signal-${i}`);
      await t.connect(topic, { signal: shared.signal });
    }
    expect(getEventListeners(shared.signal, 'abort').length).toBe(5);
    await t.disconnect();
    expect(getEventListeners(shared.signal, 'abort').length).toBe(0);
  });

  it('a reader that falls behind within its bound loses nothing, and the socket is never paused for it', async () => {
    const relay = await relayOn();
    const fast = transport(relay.url);
    const slow = transport(relay.url, { inboundHighWaterMark: 5000 });
    const topic = deriveTopic('slow reader');
    const [cf, cs] = await Promise.all([fast, slow].map(async (t) => next((await t.connect(topic))[Symbol.asyncIterator](), 'conn')));
    // Within the sender's window (4 MiB of credit, 1,536 per 1 KiB message): every send completes.
    const N = 2500;
    const msg = (i: number): Uint8Array => {
      const m = new Uint8Array(1024);
      new DataView(m.buffer).setUint32(0, i);
      return m;
    };
    for (let i = 0; i < N; i++) await cf!.send(msg(i));
    // Everything is sent; the reader has read nothing. The client keeps reading the socket, so all
    // of it waits in that Connection's own bounded inbox (test/relay-flow.test.ts: past the bound).
    for (let i = 0; i < 500 && (cs as unknown as { buffered: number }).buffered < N; i++) await new Promise((r) => setTimeout(r, 10));
    expect((cs as unknown as { buffered: number }).buffered).toBe(N);
    for (let i = 0; i < N; i++) {
      const m = await within(WAIT, `message ${i}`, cs!.receive());
      expect(new DataView(m!.buffer, m!.byteOffset).getUint32(0)).toBe(i);
    }
  });
});

describe('relay client loading', () => {
  it('importing the client loads no ws; using it (the net link, Node\'s default) loads neither ws nor libp2p', async () => {
    const relay = await relayOn();
    const probe = join(import.meta.dirname, `.relay-probe-${process.pid}.mjs`);
    writeFileSync(
      probe,
      `import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); loaded.push(r.url); return r; } });
const { RelayTransport } = await import('@rhizome/transport-relay');
const afterImport = loaded.filter((u) => /\\/ws\\//.test(u)).length;
const { deriveTopic } = await import('@rhizome/core');
const t = new RelayTransport({ url: process.argv[2], timeoutMs: 5000 });
await t.lookup(deriveTopic('probe'));
await t.disconnect();
process.stdout.write(JSON.stringify({ afterImport, loaded }));
`,
    );
    try {
      const child = spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', probe, relay.url], { cwd: join(import.meta.dirname, '..') });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await within(WAIT, 'the probe', new Promise<number | null>((r) => child.once('exit', r)));
      expect(code).toBe(0);
      const { afterImport, loaded } = JSON.parse(out) as { afterImport: number; loaded: string[] };
      expect(afterImport).toBe(0);
      expect(loaded.some((u) => /net-link/.test(u))).toBe(true);
      expect(loaded.some((u) => /\/ws\//.test(u))).toBe(false);
      expect(loaded.filter((u) => /libp2p|transport-dht|prom-client|\/relay\/src\//.test(u))).toEqual([]);
    } finally {
      rmSync(probe, { force: true });
    }
  });
});
