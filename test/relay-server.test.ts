// The relay host and client against real sockets on 127.0.0.1: HTTP endpoints, listen errors,
// TLS with a self-signed certificate, the token, SIGTERM, heartbeats, option validation.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { connect as netConnect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { deriveTopic, type Connection, type Transport } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { firstConnection } from './sync-helpers.js';
import { CloseCode, createRelayServer, parseRelayArgs, type RelayServer } from '@rhizome/relay';
import { RawClient, startRelayProcess } from '@rhizome/relay/testing';
import { RelayTransport } from '@rhizome/transport-relay';
import { encodeHello, utf8 } from '@rhizome/transport-relay/protocol';

const WAIT = 10_000;


async function pairUp(a: Transport, b: Transport, name: string): Promise<[Connection, Connection]> {
  const topic = deriveTopic(name);
  return Promise.all([firstConnection(a, topic, WAIT), firstConnection(b, topic, WAIT)]);
}

describe('relay HTTP endpoints', () => {
  let relay: RelayServer;
  beforeAll(async () => {
    relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => relay.close());

  it('GET /healthz answers JSON with connections and topics', async () => {
    const res = await fetch(relay.url.replace('ws', 'http') + '/healthz');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'ok', connections: 0, topics: 0 });
  });

  it('GET /metrics reports traffic in Prometheus text, per server', async () => {
    const other = await createRelayServer({ port: 0, host: '127.0.0.1' });
    const a = new RelayTransport({ url: relay.url, timeoutMs: WAIT });
    const b = new RelayTransport({ url: relay.url, timeoutMs: WAIT });
    try {
      const [ca, cb] = await pairUp(a, b, 'metrics');
      await ca.send(new Uint8Array(100));
      expect((await within(WAIT, 'message', cb.receive()))!.length).toBe(100);
      const text = await (await fetch(relay.url.replace('ws', 'http') + '/metrics')).text();
      const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
      expect(value('rhizome_relay_connections')).toBe(2);
      expect(value('rhizome_relay_topics')).toBe(1);
      expect(value('rhizome_relay_frames_in_total')).toBeGreaterThanOrEqual(5);
      expect(value('rhizome_relay_bytes_out_total')).toBeGreaterThanOrEqual(109);
      expect(text).toMatch(/# TYPE rhizome_relay_drops_total counter/);
      expect(text).toMatch(/^rhizome_relay_process_resident_memory_bytes \d+/m);
      // A second relay in the same process has its own registry.
      const otherText = await (await fetch(other.url.replace('ws', 'http') + '/metrics')).text();
      expect(/^rhizome_relay_connections (\S+)$/m.exec(otherText)?.[1]).toBe('0');
      expect(relay.stats()).toMatchObject({ connections: 2, topics: 1 });
    } finally {
      await Promise.all([a.disconnect(), b.disconnect(), other.close()]);
    }
  });

  it('unknown paths get 404', async () => {
    expect((await fetch(relay.url.replace('ws', 'http') + '/nope')).status).toBe(404);
  });
});

describe('relay listen errors and options', () => {
  it('a port in use fails with ERR_LISTEN naming --port', async () => {
    const blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const error = await createRelayServer({ port, host: '127.0.0.1' }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_LISTEN', reason: 'EADDRINUSE', port });
      expect((error as Error).message).toContain('--port');
    } finally {
      blocker.close();
    }
  });

  it('binding 443 without permission exits 1 with a message naming --port', async () => {
    // Run the binary as an unprivileged user (the test may run as root, which may bind 443).
    const isRoot = process.getuid?.() === 0;
    const error = await startRelayProcess(['--port', '443', '--host', '127.0.0.1'], isRoot ? { uid: 65534, gid: 65534, timeoutMs: 20_000 } : { timeoutMs: 20_000 }).then(
      async (p) => {
        await p.stop();
        return null;
      },
      (e: Error) => e,
    );
    if (error === null && !isRoot) return; // an unprivileged user that may bind 443 (ip_unprivileged_port_start)
    expect(error).not.toBeNull();
    expect(error!.message).toMatch(/exited with 1 before listening/);
    expect(error!.message).toContain('--port');
    expect(error!.message).toContain('ERR_LISTEN');
  });

  it('bad options fail with ERR_INVALID_CONFIG naming the field', async () => {
    await expect(createRelayServer({ port: 0, maxFrameSize: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'maxFrameSize' });
    await expect(createRelayServer({ port: 70000 })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'port' });
    await expect(createRelayServer({ port: 0, tls: { cert: '/nonexistent.pem', key: '/nonexistent.key' } })).rejects.toMatchObject({
      code: 'ERR_INVALID_CONFIG',
      field: 'tls.cert',
    });
    await expect(
      createRelayServer({ port: 0, tls: { cert: '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n', key: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n' } }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'tls' });
    expect(() => parseRelayArgs(['--port', 'x'])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: '--port' }));
    expect(() => parseRelayArgs(['--tls-cert', 'a.pem'])).toThrow(expect.objectContaining({ field: '--tls-key' }));
    expect(parseRelayArgs(['--port', '8443', '--max-topics', '5', '--token', 't'])).toEqual({ port: 8443, maxTopicsPerConnection: 5, token: 't' });
    expect(() => new RelayTransport({ url: 'ftp://x' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'relayUrl' }));
  });
});

describe('relay behind a proxy', () => {
  it('with trustProxy the per-address limit counts X-Forwarded-For addresses, not the socket', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1', trustProxy: true, maxConnectionsPerIp: 1 });
    const open = (xff: string): Promise<number | 'open'> => {
      const ws = new WebSocket(relay.url, { headers: { 'x-forwarded-for': xff } });
      ws.on('error', () => {});
      return new Promise((resolve) => {
        ws.once('close', (code) => resolve(code));
        // Open and not closed on the spot: accepted (the relay closes refused ones at once).
        ws.once('open', () => {
          const quiet = setTimeout(() => resolve('open'), 300);
          ws.once('close', () => clearTimeout(quiet));
        });
      });
    };
    try {
      expect(await open('203.0.113.9, 198.51.100.1')).toBe('open');
      expect(await open('10.9.9.9, 198.51.100.1')).toBe(CloseCode.TOO_MANY_CONNECTIONS_PER_IP); // same last hop
      expect(await open('198.51.100.2')).toBe('open');
    } finally {
      await relay.close();
    }
    expect(parseRelayArgs(['--trust-proxy'])).toEqual({ trustProxy: true });
  });
});

describe('relay client errors', () => {
  it('an unreachable relay: lookup fails with ERR_CONNECT_FAILED naming the URL; connect keeps trying', async () => {
    const blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    await new Promise<void>((r) => blocker.close(() => r()));
    const url = `ws://127.0.0.1:${port}`;
    const errors: string[] = [];
    const t = new RelayTransport({ url, timeoutMs: 600, reconnect: { initialDelayMs: 50, maxDelayMs: 100 }, onError: (e) => errors.push(e.code) });
    try {
      const error = await t.lookup(deriveTopic('x')).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_CONNECT_FAILED' });
      expect((error as Error).message).toContain(`127.0.0.1:${port}`);
      // connect does not fail: it keeps trying, and yields once the relay is there.
      const topic = deriveTopic('late relay');
      const conns = await t.connect(topic);
      expect(errors).toContain('ERR_CONNECT_FAILED');
      const relay = await createRelayServer({ port, host: '127.0.0.1' });
      const other = new RelayTransport({ url: relay.url, timeoutMs: WAIT });
      try {
        const [, theirs] = await Promise.all([
          within(WAIT, 'the late connection', conns[Symbol.asyncIterator]().next()),
          firstConnection(other, topic, WAIT),
        ]);
        expect(theirs.peerId).toBe(t.peerId);
      } finally {
        await other.disconnect();
        await t.disconnect();
        await relay.close();
      }
    } finally {
      await t.disconnect();
    }
  });

  it('an onError handler that throws does not stop the client: it keeps retrying and joins once the relay is up', async () => {
    const blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    await new Promise<void>((r) => blocker.close(() => r()));
    let failures = 0;
    let twoFailures!: () => void;
    const failedTwice = new Promise<void>((r) => (twoFailures = r));
    const t = new RelayTransport({
      url: `ws://127.0.0.1:${port}`,
      timeoutMs: 600,
      reconnect: { initialDelayMs: 50, maxDelayMs: 100 },
      onError: () => {
        if (++failures === 2) twoFailures();
        throw new Error('a bug in the app handler');
      },
    });
    const topic = deriveTopic('throwing handler');
    try {
      const conns = await t.connect(topic);
      await within(WAIT, 'two failed attempts', failedTwice);
      const relay = await createRelayServer({ port, host: '127.0.0.1' });
      const other = new RelayTransport({ url: relay.url, timeoutMs: WAIT });
      try {
        const [mine] = await Promise.all([within(WAIT, 'the connection after the failures', conns[Symbol.asyncIterator]().next()), firstConnection(other, topic, WAIT)]);
        expect(mine.done).toBe(false);
      } finally {
        await other.disconnect();
        await t.disconnect();
        await relay.close();
      }
    } finally {
      await t.disconnect();
    }
  });

  it('a token-protected relay refuses a client without the token (ERR_RELAY_REJECTED, UNAUTHORIZED)', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1', token: 's3cret' });
    const bad = new RelayTransport({ url: relay.url, timeoutMs: WAIT });
    const good1 = new RelayTransport({ url: relay.url, timeoutMs: WAIT, token: 's3cret' });
    const good2 = new RelayTransport({ url: relay.url, timeoutMs: WAIT, token: 's3cret' });
    try {
      const error = await bad.lookup(deriveTopic('t')).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_RELAY_REJECTED', closeCode: CloseCode.UNAUTHORIZED, closeName: 'UNAUTHORIZED' });
      await expect(bad.connect(deriveTopic('t'))).rejects.toMatchObject({ code: 'ERR_RELAY_REJECTED' });
      const [c1, c2] = await pairUp(good1, good2, 'token');
      await c1.send(utf8('ok'));
      expect(await within(WAIT, 'message', c2.receive())).toEqual(utf8('ok'));
      expect(relay.stats().drops.unauthorized).toBe(1);
    } finally {
      await Promise.all([bad.disconnect(), good1.disconnect(), good2.disconnect()]);
      await relay.close();
    }
  });
});

describe('relay heartbeats', () => {
  it('a connection that stops answering pings is closed; live ones stay', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1', heartbeatIntervalMs: 200 });
    const live = new RelayTransport({ url: relay.url, timeoutMs: WAIT });
    try {
      await live.lookup(deriveTopic('hb'));
      // A raw TCP client: completes the upgrade and says HELLO, then never answers a ping.
      const url = new URL(relay.url);
      const sock = netConnect(Number(url.port), url.hostname);
      const closed = new Promise<void>((r) => sock.once('close', () => r()));
      sock.on('error', () => {});
      await new Promise<void>((r) => sock.once('connect', () => r()));
      sock.write(
        'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      await new Promise<void>((r) => sock.once('data', () => r()));
      const hello = encodeHello(utf8('dead-peer'), null);
      const mask = [1, 2, 3, 4];
      const header = Buffer.from([0x82, 0x80 | hello.length, ...mask]);
      sock.write(Buffer.concat([header, Buffer.from(hello.map((b, i) => b ^ mask[i % 4]!))]));
      await within(WAIT, 'the dead connection to be closed', closed);
      expect(relay.stats().drops.heartbeat_timeout).toBe(1);
      expect(live.state).toBe('connected');
      // The relay releases the slot when its side of the socket reports the close.
      for (let i = 0; i < 100 && relay.stats().connections !== 1; i++) await new Promise((r) => setTimeout(r, 20));
      expect(relay.stats().connections).toBe(1);
    } finally {
      await live.disconnect();
      await relay.close();
    }
  });
});

describe('relay TLS (self-signed certificate made in the test)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-relay-tls-'));
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  let haveOpenssl = true;
  beforeAll(() => {
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout', keyPath, '-out', certPath,
      ], { stdio: 'ignore' });
    } catch {
      haveOpenssl = false;
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('wss: peers that trust the certificate through tls.ca sync; one that does not is refused', async () => {
    expect(haveOpenssl && existsSync(certPath)).toBe(true);
    const ca = readFileSync(certPath, 'utf8');
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1', tls: { cert: certPath, key: readFileSync(keyPath, 'utf8') } });
    expect(relay.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    const a = new RelayTransport({ url: relay.url, timeoutMs: WAIT, tls: { ca } });
    const b = new RelayTransport({ url: relay.url, timeoutMs: WAIT, tls: { ca } });
    const untrusting = new RelayTransport({ url: relay.url, timeoutMs: 1500 });
    try {
      const [ca1, cb1] = await pairUp(a, b, 'tls');
      await ca1.send(utf8('over tls'));
      expect(await within(WAIT, 'message', cb1.receive())).toEqual(utf8('over tls'));
      const error = await untrusting.lookup(deriveTopic('tls')).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_CONNECT_FAILED' });
      expect((error as Error).message).toContain(relay.url.replace(/\/$/, ''));
      const health = await new Promise<number>((resolve, reject) => {
        // https GET /healthz with the same CA
        void import('node:https').then(({ get }) =>
          get(relay.url.replace('wss', 'https') + '/healthz', { ca }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).on('error', reject),
        );
      });
      expect(health).toBe(200);
    } finally {
      await Promise.all([a.disconnect(), b.disconnect(), untrusting.disconnect()]);
      await relay.close();
    }
  });
});

describe('relay binary', () => {
  it('SIGTERM closes clients with 1001 (going away) and exits 0', async () => {
    const relay = await startRelayProcess(['--port', '0', '--host', '127.0.0.1']);
    try {
      const client = await RawClient.open(relay.url);
      const code = await relay.stop();
      expect((await within(WAIT, 'the close', client.closed)).code).toBe(CloseCode.GOING_AWAY);
      expect(code).toBe(0);
    } finally {
      await relay.stop();
    }
  });
});
