// The CLI keeps every local write, and says what it could not do: `rhizome put` with a relay that
// is unreachable, a proxy answering 502, or fewer peers than --min-peers leaves the node in the
// file and prints "saved locally, not delivered: ..."; the exit code is 1 only when --min-peers
// asked for delivery. Warnings: weak ids, a scheme-less relay URL, --dht without --bootstrap. TLS
// mistakes are named: wss:// to a plain relay, ws:// to a TLS relay, a --tls-ca that is not a
// certificate, certificate and key swapped. Real relays, a real HTTP server, real files.
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { closedPort, rhizome, tempDir, type RunResult } from './cli-helpers.js';
import { FOREIGN_CERT, TEST_CERT, TEST_KEY } from './fixtures/tls.js';

let dir: string;
let cleanup: () => void;
let plain: RelayServer;
let tls: RelayServer;
let proxy: Server;
let proxyUrl: string;
let cert: string;
let key: string;

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('rhizome-cli-local-first-'));
  cert = join(dir, 'cert.pem');
  key = join(dir, 'key.pem');
  writeFileSync(cert, TEST_CERT);
  writeFileSync(key, TEST_KEY);
  plain = await createRelayServer({ port: 0, host: '127.0.0.1' });
  tls = await createRelayServer({ port: 0, host: '127.0.0.1', tls: { cert, key } });
  // A reverse proxy whose upstream is down: every request, WebSocket upgrades included, gets 502.
  proxy = createServer((_req, res) => {
    res.writeHead(502, { 'content-type': 'text/plain' }).end('Bad Gateway\n');
  });
  proxy.on('upgrade', (_req, socket) => {
    socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nBad Gateway\n');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `ws://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await Promise.all([plain.close(), tls.close(), new Promise<void>((resolve) => proxy.close(() => resolve()))]);
  cleanup();
});

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Reads node `n` back from the file alone (no network flag). */
async function readBack(id: string, db: string): Promise<RunResult> {
  return rhizome(['get', id, 'n', '--db', db, '--json']);
}

describe('a put keeps its write when the network fails', () => {
  it('unreachable relay: saved locally, exit 0; with --min-peers exit 1; the node is in the file either way', async () => {
    const url = `ws://127.0.0.1:${await closedPort()}`;
    const id = generateDatabaseId();
    const [soft, strict] = await Promise.all([
      rhizome(['put', id, 'n', '{"a":1}', '--db', join(dir, 'unreachable.db'), '--relay', url, '--timeout', '1500']),
      rhizome(['put', id, 'n', '{"a":2}', '--db', join(dir, 'unreachable-strict.db'), '--relay', url, '--timeout', '1500', '--min-peers', '1', '--json']),
    ]);
    expect(soft.code, soft.stderr).toBe(0);
    expect(soft.stdout).toContain('put n in unreachable.db');
    expect(soft.stderr).toMatch(/rhizome: warning: saved locally, not delivered: .*127\.0\.0\.1/);
    expect(soft.stderr).toContain('unreachable.db');

    expect(strict.code, strict.stderr).toBe(1);
    expect(jsonLines(strict.stdout)[0]).toMatchObject({ id: 'n', data: { a: 2 }, delivered: false, peers: 0 });
    const error = jsonLines(strict.stderr).find((l) => 'error' in l)?.['error'] as { code: string; message: string };
    expect(error.code).toBe('ERR_CONNECT_FAILED');
    expect(error.message).toMatch(/^saved locally, not delivered: .*127\.0\.0\.1/);

    const [a, b] = await Promise.all([readBack(id, join(dir, 'unreachable.db')), readBack(id, join(dir, 'unreachable-strict.db'))]);
    expect(JSON.parse(a.stdout)).toEqual({ id: 'n', data: { a: 1 } });
    expect(JSON.parse(b.stdout)).toEqual({ id: 'n', data: { a: 2 } });
  });

  it('a proxy answering 502: saved locally, the message names the 502', async () => {
    const id = generateDatabaseId();
    const db = join(dir, 'proxy.db');
    const r = await rhizome(['put', id, 'n', '{"via":"proxy"}', '--db', db, '--relay', proxyUrl, '--timeout', '1500', '--min-peers', '1']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/rhizome: error: saved locally, not delivered: .*502/);
    expect(JSON.parse((await readBack(id, db)).stdout)).toEqual({ id: 'n', data: { via: 'proxy' } });
  });

  it('a live relay but fewer peers than --min-peers: saved locally, exit 1 naming --min-peers', async () => {
    const id = generateDatabaseId();
    const db = join(dir, 'min-peers.db');
    const r = await rhizome(['put', id, 'n', '{"b":1}', '--db', db, '--relay', plain.url, '--timeout', '1500', '--min-peers', '1', '--json']);
    expect(r.code, r.stderr).toBe(1);
    const error = jsonLines(r.stderr).find((l) => 'error' in l)?.['error'] as { code: string; message: string };
    expect(error).toMatchObject({ code: 'ERR_TIMEOUT' });
    expect(error.message).toMatch(/^saved locally, not delivered: --min-peers 1: only 0 peer\(s\)/);
    expect(JSON.parse((await readBack(id, db)).stdout)).toEqual({ id: 'n', data: { b: 1 } });
  });

  it('delete of a node this replica has: done locally first, kept when the relay is unreachable', async () => {
    const id = generateDatabaseId();
    const db = join(dir, 'delete.db');
    expect((await rhizome(['put', id, 'n', '{"c":1}', '--db', db])).code).toBe(0);
    const url = `ws://127.0.0.1:${await closedPort()}`;
    const r = await rhizome(['delete', id, 'n', '--db', db, '--relay', url, '--timeout', '1500']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('deleted n from delete.db');
    expect(r.stderr).toContain('saved locally, not delivered:');
    expect((await readBack(id, db)).code).toBe(1);
  });
});

describe('warnings', () => {
  it('a short id and an id made of words are weak; a generated id is not', async () => {
    const [short, words, generated] = await Promise.all([
      rhizome(['put', 'x', 'n', '{}', '--db', join(dir, 'weak1.db')]),
      rhizome(['put', 'team-notes-for-2026', 'n', '{}', '--db', join(dir, 'weak2.db'), '--json']),
      rhizome(['put', generateDatabaseId(), 'n', '{}', '--db', join(dir, 'strong.db')]),
    ]);
    expect(short.code).toBe(0);
    expect(short.stderr).toContain("rhizome: warning: the database id 'x' is 1 character long (fewer than 16): the id is the secret");
    expect(short.stderr).toContain('rhizome new-id');
    expect(words.code).toBe(0);
    expect(jsonLines(words.stderr)).toContainEqual({
      warning: { code: 'WARN_WEAK_ID', message: expect.stringContaining("the database id 'team-notes-for-2026' looks like words") as unknown },
    });
    expect(generated.stderr).toBe('');
  });

  it('a relay URL without a scheme says it assumed wss://, and the TLS failure says the relay is plain', async () => {
    const hostPort = plain.url.replace('ws://', '');
    const r = await rhizome(['list', generateDatabaseId(), '--db', join(dir, 'scheme.db'), '--relay', hostPort, '--timeout', '3000']);
    expect(r.stderr).toContain(`rhizome: warning: --relay ${hostPort} has no scheme: assuming wss://${hostPort} (TLS)`);
    expect(r.stderr).toContain(`write ws://${hostPort}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the relay there likely serves plain WebSockets without TLS`);
    expect(r.stderr).toContain(`Use ws://${hostPort}`);
  });

  it('ws:// to a TLS relay says to use wss://; a --tls-ca that does not sign the relay is named', async () => {
    const hostPort = tls.url.replace('wss://', '');
    const otherCa = join(dir, 'other-ca.pem');
    writeFileSync(otherCa, FOREIGN_CERT);
    const [plainToTls, wrongCa] = await Promise.all([
      rhizome(['list', generateDatabaseId(), '--db', join(dir, 'ws-tls.db'), '--relay', `ws://${hostPort}`, '--timeout', '3000']),
      rhizome(['list', generateDatabaseId(), '--db', join(dir, 'wrong-ca.db'), '--relay', tls.url, '--tls-ca', otherCa, '--timeout', '3000']),
    ]);
    expect(plainToTls.code).toBe(1);
    expect(plainToTls.stderr).toContain('the relay there likely serves TLS');
    expect(plainToTls.stderr).toContain(`Use wss://${hostPort}`);
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toContain(`not accepted with --tls-ca ${otherCa}`);
  });

  it('--tls-ca naming a file that is not a certificate is a usage error; so is a key passed as --tls-ca', async () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    const [j, k] = await Promise.all([
      rhizome(['list', generateDatabaseId(), '--db', join(dir, 'ca1.db'), '--relay', tls.url, '--tls-ca', junk]),
      rhizome(['list', generateDatabaseId(), '--db', join(dir, 'ca2.db'), '--relay', tls.url, '--tls-ca', key]),
    ]);
    expect(j.code).toBe(2);
    expect(j.stderr).toContain(`--tls-ca ${junk}: is not a PEM certificate`);
    expect(k.code).toBe(2);
    expect(k.stderr).toContain(`--tls-ca ${key}: holds a private key, not a certificate`);
  });

  it('rhizome relay with certificate and key swapped says so', async () => {
    const r = await rhizome(['relay', '--port', '0', '--host', '127.0.0.1', '--tls-cert', key, '--tls-key', cert]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('the certificate and the key look swapped');
  });

  it('--dht without --bootstrap: with --no-mdns a warning that it finds no peers; with mDNS a note that it finds local peers only', async () => {
    const [none, local] = await Promise.all([
      rhizome(['put', generateDatabaseId(), 'n', '{}', '--db', join(dir, 'dht1.db'), '--dht', '--no-mdns', '--timeout', '1500', '--json'], { timeoutMs: 30_000 }),
      rhizome(['put', generateDatabaseId(), 'n', '{}', '--db', join(dir, 'dht2.db'), '--dht', '--timeout', '1500'], { timeoutMs: 30_000 }),
    ]);
    expect(jsonLines(none.stderr)).toContainEqual({
      warning: { code: 'WARN_DHT_NO_BOOTSTRAP', message: expect.stringContaining('--dht without --bootstrap, and --no-mdns') as unknown },
    });
    expect(local.stderr).toContain('--dht without --bootstrap finds peers on this local network only (mDNS)');
    expect(local.stderr).not.toContain('WARN_DHT_NO_BOOTSTRAP');
  });

  it('--bootstrap on 127.0.0.1 without --allow-private-addresses warns that lookups will find nobody', async () => {
    // What a newcomer copies from `rhizome dht-bootstrap --listen /ip4/127.0.0.1/tcp/...` on one
    // machine. (Which flags warn and which do not: packages/cli/src/warnings.test.ts.)
    const boot = '/ip4/127.0.0.1/tcp/9/p2p/12D3KooWNrNUFoptLVSzpmPTKokEkoWghb69XN3JA96auerGxB19';
    const r = await rhizome(['put', generateDatabaseId(), 'n', '{}', '--db', join(dir, 'dht3.db'), '--dht', '--bootstrap', boot, '--no-mdns', '--timeout', '500', '--json'], { timeoutMs: 55_000 });
    expect(jsonLines(r.stderr)).toContainEqual({
      warning: { code: 'WARN_DHT_PRIVATE_BOOTSTRAP', message: expect.stringContaining('add --allow-private-addresses here and on the other replicas') as unknown },
    });
  }, 60_000);
});
