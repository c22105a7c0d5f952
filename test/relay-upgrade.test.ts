// Sockets that never upgrade (issue 10): the relay bounds the time a TCP socket may sit before its
// WebSocket upgrade (or an HTTP request) and counts such sockets against the per-address limit,
// so a few hundred idle sockets can no longer hold descriptors for ~87 s and lock clients out.
import { createHook } from 'node:async_hooks';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, createServer as createHttpServer, get, type Server as HttpServer } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { within } from '@rhizome/core/testing';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { RawClient, startRelayProcess } from '@rhizome/relay/testing';

const WAIT = 10_000;
const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function relayWith(options: Parameters<typeof createRelayServer>[0]): Promise<RelayServer> {
  const r = await createRelayServer({ port: 0, host: '127.0.0.1', ...options });
  cleanup.push(() => r.close());
  return r;
}

/** A raw TCP socket to the relay; `closed` resolves when the relay drops it. */
async function rawSocket(relay: RelayServer): Promise<{ socket: Socket; closed: Promise<void>; received: () => string }> {
  const socket = netConnect(relay.port, '127.0.0.1');
  socket.on('error', () => {});
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  cleanup.push(() => void socket.destroy());
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => reject(new Error('closed before connecting')));
  });
  return { socket, closed, received: () => text };
}

describe('sockets that never upgrade', () => {
  it('count against the per-address limit, are refused above it, and are dropped after upgradeTimeoutMs', async () => {
    const relay = await relayWith({ maxConnectionsPerIp: 4, upgradeTimeoutMs: 400, heartbeatIntervalMs: 0 });
    const idle = await Promise.all([0, 1, 2, 3].map(() => rawSocket(relay)));
    // A fifth socket from the same address is over the limit: dropped at once, before any byte.
    const fifth = await rawSocket(relay);
    await within(WAIT, 'the fifth socket to be dropped', fifth.closed);
    expect(fifth.received()).toMatch(/^HTTP\/1\.1 429 /);
    // A real client from that address is over it too while the idle ones are held.
    await expect(RawClient.open(relay.url)).rejects.toThrow();
    // The idle sockets are dropped once their time is up...
    await within(WAIT, 'the idle sockets to be dropped', Promise.all(idle.map((s) => s.closed)));
    const drops = relay.stats().drops;
    expect(drops.upgrade_timeout).toBe(4);
    expect(drops.too_many_connections_per_ip).toBeGreaterThanOrEqual(2);
    // ...and the address can connect again.
    const client = await RawClient.open(relay.url);
    cleanup.push(() => client.close());
    expect(relay.stats().connections).toBe(1);
  });

  it('a request whose headers never complete is dropped after upgradeTimeoutMs too', async () => {
    const relay = await relayWith({ upgradeTimeoutMs: 300, heartbeatIntervalMs: 0 });
    const { socket, closed } = await rawSocket(relay);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'); // and never the rest
    await within(WAIT, 'the half-sent request to be dropped', closed);
    expect(relay.stats().drops.upgrade_timeout).toBe(1);
  });

  it('plain HTTP requests and upgraded clients are not cut by the bound', async () => {
    const relay = await relayWith({ upgradeTimeoutMs: 300, heartbeatIntervalMs: 0 });
    const client = await RawClient.open(relay.url);
    cleanup.push(() => client.close());
    // A /healthz request that takes its time between requests on one keep-alive socket.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(() => agent.destroy());
    for (let i = 0; i < 2; i++) {
      const res = await fetchVia(agent, relay.port);
      expect(res).toBe(200);
    }
    // The WebSocket client is still there after several times the bound.
    await within(WAIT, 'a lookup answer', (async () => {
      for (let i = 0; i < 3; i++) {
        const pong = client.next(0x87);
        client.send(new Uint8Array([0x09, 0, 0, 0, i]));
        await pong;
        await new Promise((r) => setTimeout(r, 200));
      }
    })());
    expect(relay.stats().drops.upgrade_timeout ?? 0).toBe(0);
    expect(relay.stats().connections).toBe(1);
  });
});

describe('upgrade requests read by the relay itself, and the rest by Node', () => {
  const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
  const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  const request = (extra: string[] = [], key = KEY): string =>
    ['GET / HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13', ...extra, '', ''].join('\r\n');

  async function answer(relay: RelayServer, pieces: string[]): Promise<string> {
    const raw = await rawSocket(relay);
    for (const piece of pieces) {
      raw.socket.write(piece);
      await new Promise((r) => setTimeout(r, 20));
    }
    await within(WAIT, 'an HTTP answer head', (async () => {
      while (!raw.received().includes('\r\n\r\n')) await new Promise((r) => setTimeout(r, 10));
    })());
    return raw.received();
  }

  it('WebSocket upgrades skip Node\'s HTTP connection setup; /healthz does not (also behind trustProxy)', async () => {
    // Node's HTTP server makes one HTTPINCOMINGMESSAGE async resource per connection it sets up.
    let httpConnections = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === 'HTTPINCOMINGMESSAGE') httpConnections++;
      },
    }).enable();
    cleanup.push(() => void hook.disable());
    for (const trustProxy of [false, true]) {
      httpConnections = 0;
      const relay = await relayWith({ heartbeatIntervalMs: 0, trustProxy });
      for (let i = 0; i < 3; i++) {
        const client = await RawClient.open(relay.url);
        cleanup.push(() => client.close());
      }
      expect(await fetchVia(new Agent(), relay.port)).toBe(200);
      expect(httpConnections, `trustProxy ${trustProxy}`).toBe(1);
    }
  });

  it('a canonical upgrade in pieces, one with a subprotocol (Node\'s path), a bad key: answered as ws answers', async () => {
    const relay = await relayWith({ heartbeatIntervalMs: 0 });
    const whole = request();
    const pieced = await answer(relay, [whole.slice(0, 5), whole.slice(5, 40), whole.slice(40)]);
    expect(pieced).toMatch(/^HTTP\/1\.1 101 /);
    expect(pieced).toContain(`Sec-WebSocket-Accept: ${ACCEPT}`);
    const withProtocol = await answer(relay, [request(['Sec-WebSocket-Protocol: a, b'])]);
    expect(withProtocol).toMatch(/^HTTP\/1\.1 101 /);
    expect(withProtocol).toContain('Sec-WebSocket-Protocol: a');
    expect(await answer(relay, [request([], 'short')])).toMatch(/^HTTP\/1\.1 400 /);
    await within(WAIT, 'two connections', (async () => {
      while (relay.stats().connections !== 2) await new Promise((r) => setTimeout(r, 10));
    })());
  });

  it('bytes that cannot begin a canonical upgrade are Node\'s at once: refused now, not held until upgradeTimeoutMs', async () => {
    // The sniffer keeps an incomplete head only while it can still become a canonical upgrade; a
    // port scanner's probe, a TLS ClientHello on the plain port or a bare-LF head go to Node's
    // parser, which refuses them at once (counted as errors), as before the sniffer.
    const relay = await relayWith({ heartbeatIntervalMs: 0, upgradeTimeoutMs: 60_000 });
    const probes = ['HELLO\r\n', '\x16\x03\x01\x00\x05hello', 'GET /healthz HTTP/1.1\nHost: x\n', 'GET / HTTP/1.1\r\nHost: \x00\r\n', 'GET / HTTP/1.1\rX'];
    for (const probe of probes) {
      const raw = await rawSocket(relay);
      raw.socket.write(Buffer.from(probe, 'latin1'));
      await within(WAIT, `the socket that sent ${JSON.stringify(probe)} to be closed`, raw.closed);
    }
    expect(relay.stats().drops.upgrade_timeout ?? 0).toBe(0);
    // A head still on its way (every byte of it possible in a canonical upgrade) is waited for.
    const slow = await rawSocket(relay);
    const whole = request();
    slow.socket.write(whole.slice(0, 30));
    await new Promise((r) => setTimeout(r, 200));
    slow.socket.write(whole.slice(30));
    await within(WAIT, 'the 101', (async () => {
      while (!slow.received().includes('\r\n\r\n')) await new Promise((r) => setTimeout(r, 10));
    })());
    expect(slow.received()).toMatch(/^HTTP\/1\.1 101 /);
  });
});

describe("the short upgrade path agrees with Node's own HTTP server", () => {
  // Differential: the same bytes sent to the relay (canonical upgrades on its short path, the rest
  // on Node's) and to a plain Node HTTP server set up the way the relay sets up its own
  // (`clientError` counted, socket destroyed; an upgrade answered).
  const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
  const upgradeHead = (padding: number): string =>
    ['GET / HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13', `X-Pad: ${'a'.repeat(padding)}`, '', ''].join('\r\n');

  /** A Node HTTP server handling errors and upgrades as the relay does; counts its client errors. */
  async function nodeServer(options: { maxHeaderSize?: number } = {}): Promise<{ port: number; errors: () => number }> {
    let errors = 0;
    const server: HttpServer = createHttpServer(options, (_req, res) => res.end('ok'));
    server.on('clientError', (_error, socket) => {
      errors++;
      socket.destroy();
    });
    server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 101 Switching Protocols\r\n\r\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => server.close(resolve)));
    cleanup.push(() => void server.closeAllConnections());
    return { port: (server.address() as { port: number }).port, errors: () => errors };
  }

  /**
   * Sends `bytes` on a fresh socket, then ends it (FIN), resets it (RST) or waits; resolves with
   * what came back once the server closed the socket (or, waiting, answered with a whole head).
   */
  async function exchange(port: number, bytes: string, then: 'end' | 'reset' | 'wait'): Promise<string> {
    const socket = netConnect(port, '127.0.0.1');
    socket.on('error', () => {});
    cleanup.push(() => void socket.destroy());
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    if (bytes !== '') socket.write(Buffer.from(bytes, 'latin1'));
    if (then === 'end') socket.end();
    else if (then === 'reset') socket.resetAndDestroy();
    const answered = new Promise<void>((resolve) => socket.on('data', () => text.includes('\r\n\r\n') && resolve()));
    if (then !== 'reset') await within(WAIT, `the server to close the socket that sent ${JSON.stringify(bytes.slice(0, 30))}`, then === 'wait' ? Promise.race([closed, answered]) : closed);
    socket.destroy();
    return text;
  }

  it('counts the same client errors for half-sent requests, resets and empty connections', async () => {
    const relay = await relayWith({ heartbeatIntervalMs: 0, upgradeTimeoutMs: 60_000 });
    const node = await nodeServer();
    const cases: Array<[string, string, 'end' | 'reset']> = [
      ['nothing, then FIN', '', 'end'],
      ['one byte of a GET, then FIN (short path)', 'G', 'end'],
      ['part of a canonical upgrade, then FIN (short path)', upgradeHead(0).slice(0, 60), 'end'],
      ['part of a POST, then FIN (Node\'s path)', 'POST / HTTP/1.1\r\nHost: x\r\n', 'end'],
      ['part of a canonical upgrade, then RST (short path)', upgradeHead(0).slice(0, 60), 'reset'],
      ['a whole /healthz request, then FIN', 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 'end'],
    ];
    for (const [what, bytes, then] of cases) {
      const relayBefore = relay.stats().errors;
      const nodeBefore = node.errors();
      await exchange(relay.port, bytes, then);
      await exchange(node.port, bytes, then);
      if (then === 'reset') {
        // No close to wait for on our side: wait until both servers have seen the reset.
        await within(WAIT, `both servers to count the reset (${what})`, (async () => {
          while (relay.stats().errors === relayBefore || node.errors() === nodeBefore) await new Promise((r) => setTimeout(r, 10));
        })());
      }
      expect(relay.stats().errors - relayBefore, what).toBe(node.errors() - nodeBefore);
    }
    // The cases do make Node count: FIN after part of a head (three), the reset.
    expect(node.errors()).toBe(4);
    expect(relay.stats().drops.upgrade_timeout ?? 0).toBe(0);
  });

  it("takes no head on the short path that Node's --max-http-header-size refuses", async () => {
    // The relay in a process with a smaller Node header limit; Node's reference with the same limit.
    const relay = await startRelayProcess(['--port', '0', '--host', '127.0.0.1'], { env: { NODE_OPTIONS: '--max-http-header-size=1024' } });
    cleanup.push(() => relay.stop());
    const node = await nodeServer({ maxHeaderSize: 1024 });
    const outcomes: string[] = [];
    // Heads from ~950 to ~1,250 bytes: Node's limit falls between (it counts the target, names and
    // values, not the whole head), and all are under the short path's own 4 KiB.
    for (let padding = 700; padding <= 1000; padding += 25) {
      const head = upgradeHead(padding);
      const byRelay = (await exchange(relay.port, head, 'wait')).startsWith('HTTP/1.1 101') ? 'upgraded' : 'refused';
      const byNode = (await exchange(node.port, head, 'wait')).startsWith('HTTP/1.1 101') ? 'upgraded' : 'refused';
      expect(byRelay, `a head of ${head.length} bytes`).toBe(byNode);
      outcomes.push(byNode);
    }
    // Both answers occur: the limit was crossed.
    expect(outcomes).toContain('upgraded');
    expect(outcomes).toContain('refused');
  });
});

describe('sockets that never upgrade, under TLS', () => {
  // The guard tracks the TCP socket the server accepted; a wss request arrives on the TLSSocket
  // wrapped around it, which the guard must map back: otherwise an upgraded wss connection stays
  // "pending", is destroyed when its upgrade time is up and still counts against its address.
  it('an upgraded wss client is released by the guard: not cut by the bound, not counted twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rhizome-upgrade-tls-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const certPath = join(dir, 'cert.pem');
    const keyPath = join(dir, 'key.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', keyPath, '-out', certPath,
    ], { stdio: 'ignore' });
    const ca = readFileSync(certPath, 'utf8');
    const relay = await relayWith({ tls: { cert: certPath, key: keyPath }, maxConnectionsPerIp: 2, upgradeTimeoutMs: 300, heartbeatIntervalMs: 0 });
    const first = await RawClient.open(relay.url, { ca });
    cleanup.push(() => first.close());
    // With the limit at 2, a second client fits only if the first one no longer counts as pending.
    const second = await RawClient.open(relay.url, { ca });
    cleanup.push(() => second.close());
    // Both still answer after several times the bound.
    await within(WAIT, 'pongs', (async () => {
      for (let i = 0; i < 3; i++) {
        for (const client of [first, second]) {
          const pong = client.next(0x87);
          client.send(new Uint8Array([0x09, 0, 0, 0, i]));
          await pong;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })());
    expect(relay.stats().drops.upgrade_timeout ?? 0).toBe(0);
    expect(relay.stats().drops.too_many_connections_per_ip ?? 0).toBe(0);
    expect(relay.stats().connections).toBe(2);
  });
});

function fetchVia(agent: Agent, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/healthz', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}
