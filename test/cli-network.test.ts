// The `rhizome` command over a real relay on 127.0.0.1: an always-on `sync` replica receives
// a write made by `put` in another process; `status` lists the peer; an unreachable relay is
// named; `rhizome relay` serves, answers /healthz, and stops cleanly on SIGTERM.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveTopic, generateDatabaseId } from '@rhizome/core';
import { RawClient } from '@rhizome/relay/testing';
import { FrameType, encodeTopicFrame } from '@rhizome/transport-relay/protocol';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { Running, closedPort, rhizome, tempDir } from './cli-helpers.js';
import { TEST_CERT, TEST_KEY } from './fixtures/tls.js';


let relay: RelayServer;
let dir: string;
let cleanup: () => void;
const running: Running[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('rhizome-cli-net-'));
  relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await Promise.all(running.map((r) => r.stop('SIGKILL')));
  await relay.close();
  cleanup();
});

describe('rhizome sync and one-shot commands through a relay', () => {
  it('a stranger on the topic whose peer id holds terminal escapes is printed with them escaped, not obeyed', async () => {
    // Anyone who knows the topic can join it on a relay with any peer id (1-64 bytes of UTF-8);
    // `rhizome sync` prints peer ids. ESC ] 0 ; … BEL retitles a terminal, ESC [ 2 J clears it.
    const id = generateDatabaseId();
    const sync = new Running(['sync', id, '--db', join(dir, 'escapes.db'), '--relay', relay.url]);
    running.push(sync);
    await sync.waitForLine((l) => l.includes('ready'), 'the ready line');
    const stranger = await RawClient.open(relay.url, { peerId: 'x\x1b]0;pwned\x07\x1b[2J\u202e' });
    try {
      stranger.send(encodeTopicFrame(FrameType.JOIN, deriveTopic(id)));
      const line = await sync.waitForLine((l) => l.includes('connected'), 'the stranger connecting');
      expect(line).toContain('x\\x1b]0;pwned\\x07\\x1b[2J\\u202e connected');
      expect(sync.stdout).not.toMatch(/[\x07\x1b\u202e]/);
    } finally {
      stranger.close();
    }
  });

  it('a sync replica prints the write a put made in another process, and keeps it after stopping', async () => {
    const id = generateDatabaseId();
    const replicaDb = join(dir, 'replica.db');
    const sync = new Running(['sync', id, '--db', replicaDb, '--relay', relay.url, '--json']);
    running.push(sync);
    const ready = await sync.waitForJson((e) => e['type'] === 'ready', 'the ready event');
    expect(ready).toMatchObject({ id, db: replicaDb, network: `relay ${relay.url}`, nodes: 0 });
    expect(ready['topic']).toMatch(/^[0-9a-f]{64}$/);

    // --min-peers 1: "ready" is printed when the file is open; the replica may still be joining.
    const put = await rhizome(['put', id, 'note-1', '{"title":"from the laptop","done":false}', '--db', join(dir, 'laptop.db'), '--relay', relay.url, '--min-peers', '1', '--json']);
    expect(put.code, put.stderr).toBe(0);
    expect(JSON.parse(put.stdout)).toEqual({ id: 'note-1', data: { title: 'from the laptop', done: false }, peers: 1, delivered: true });

    const upsert = await sync.waitForJson((e) => e['type'] === 'node-upsert' && e['id'] === 'note-1', 'note-1 at the replica');
    expect(upsert).toMatchObject({ type: 'node-upsert', id: 'note-1', data: { title: 'from the laptop', done: false }, origin: 'remote' });
    expect(sync.json.some((e) => e['type'] === 'peer-connected')).toBe(true);

    // A second device, offline from the laptop, reads the data through the always-on replica.
    const phone = await rhizome(['get', id, 'note-1', '--db', join(dir, 'phone.db'), '--relay', relay.url, '--min-peers', '1', '--json']);
    expect(phone.code, phone.stderr).toBe(0);
    expect(JSON.parse(phone.stdout)).toEqual({ id: 'note-1', data: { title: 'from the laptop', done: false } });

    const status = await rhizome(['status', id, '--db', join(dir, 'phone.db'), '--relay', relay.url, '--json']);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as { peers: Array<{ peerId: string; transport: string; synced: boolean }>; nodes: number; transport: string; network: string };
    expect(s.transport).toBe('relay');
    expect(s.network).toBe(`relay ${relay.url}`);
    expect(s.nodes).toBe(1);
    expect(s.peers).toHaveLength(1);
    expect(s.peers[0]).toMatchObject({ transport: 'relay', synced: true });

    const stopped = await sync.stop('SIGTERM');
    expect(stopped.code, sync.stderr).toBe(0);
    expect(sync.json.at(-1)).toMatchObject({ type: 'closed', db: replicaDb });

    // Offline, the replica's file has it.
    const offline = await rhizome(['get', id, 'note-1', '--db', replicaDb]);
    expect(offline.code, offline.stderr).toBe(0);
    expect(JSON.parse(offline.stdout)).toEqual({ title: 'from the laptop', done: false });
  });

  it('the sync replica outlives a relay restart: it rejoins and receives later writes', async () => {
    const own = await createRelayServer({ port: 0, host: '127.0.0.1' });
    const port = own.port;
    const url = own.url;
    const id = generateDatabaseId();
    const sync = new Running(['sync', id, '--db', join(dir, 'restart-replica.db'), '--relay', url, '--json']);
    running.push(sync);
    await sync.waitForJson((e) => e['type'] === 'ready', 'ready');
    // Settle point: a reader that insists on a peer proves the replica joined the topic.
    const probe = await rhizome(['list', id, '--db', join(dir, 'restart-probe.db'), '--relay', url, '--min-peers', '1']);
    expect(probe.code, probe.stderr).toBe(0);
    expect(own.stats().topics).toBe(1);
    await own.close();
    const again = await createRelayServer({ port, host: '127.0.0.1' });
    try {
      const put = await rhizome(['put', id, 'n', '{"after":"restart"}', '--db', join(dir, 'restart-writer.db'), '--relay', url, '--min-peers', '1', '--timeout', '20000']);
      expect(put.code, put.stderr).toBe(0);
      await sync.waitForJson((e) => e['type'] === 'node-upsert' && e['id'] === 'n', 'the write after the restart');
      expect((await sync.stop('SIGTERM')).code).toBe(0);
    } finally {
      await again.close();
    }
  }, 60_000);

  it('a sync replica started before its relay says it cannot reach it, then connects when it comes up', async () => {
    const port = await closedPort();
    const url = `ws://127.0.0.1:${port}`;
    const id = generateDatabaseId();
    const sync = new Running(['sync', id, '--db', join(dir, 'early-replica.db'), '--relay', url, '--timeout', '1000', '--json']);
    running.push(sync);
    const error = await sync.waitForJson((e) => e['type'] === 'error', 'the unreachable-relay error');
    expect(error['error']).toMatchObject({ code: 'ERR_CONNECT_FAILED', message: expect.stringContaining(`127.0.0.1:${port}`) });
    const late = await createRelayServer({ port, host: '127.0.0.1' });
    try {
      const put = await rhizome(['put', id, 'n', '{"late":true}', '--db', join(dir, 'early-writer.db'), '--relay', url, '--min-peers', '1', '--timeout', '20000']);
      expect(put.code, put.stderr).toBe(0);
      await sync.waitForJson((e) => e['type'] === 'node-upsert' && e['id'] === 'n', 'the write once the relay is up');
      expect((await sync.stop('SIGTERM')).code).toBe(0);
    } finally {
      await late.close();
    }
  }, 60_000);

  it('a sync replica refused by the relay (no token) exits 1 and says to pass --token', async () => {
    const guarded = await createRelayServer({ port: 0, host: '127.0.0.1', token: 'sesame' });
    try {
      const sync = new Running(['sync', generateDatabaseId(), '--db', join(dir, 'refused.db'), '--relay', guarded.url]);
      running.push(sync);
      const { code } = await sync.exited;
      expect(code, sync.stderr).toBe(1);
      expect(sync.stdout).toContain('ERR_RELAY_REJECTED');
      expect(sync.stderr).toContain('--token');
    } finally {
      await guarded.close();
    }
  });

  it('prints events as text lines without --json', async () => {
    const id = generateDatabaseId();
    const sync = new Running(['sync', id, '--db', join(dir, 'text-replica.db'), '--relay', relay.url]);
    running.push(sync);
    await sync.waitForLine((l) => l.includes(' ready ') && l.includes(id), 'the ready line');
    const del = await rhizome(['put', id, 'n', '{"x":1}', '--db', join(dir, 'text-writer.db'), '--relay', relay.url, '--min-peers', '1']);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toContain('(delivered to 1 peer)');
    const line = await sync.waitForLine((l) => l.includes('upsert') && l.includes(' n '), 'the upsert line');
    expect(line).toMatch(/upsert\s+n \{"x":1\} \(remote\)/);
    expect((await sync.stop('SIGINT')).code).toBe(0);
  });

  it('works alone when nobody else is online, and says so; --min-peers makes that a failure', async () => {
    const [r, strict] = await Promise.all([
      rhizome(['put', generateDatabaseId(), 'n', '{"a":1}', '--db', join(dir, 'alone.db'), '--relay', relay.url]),
      rhizome(['put', generateDatabaseId(), 'n', '{"a":1}', '--db', join(dir, 'alone-strict.db'), '--relay', relay.url, '--min-peers', '1', '--timeout', '1500', '--json']),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('no other replica is online');
    expect(strict.code, strict.stderr).toBe(1);
    const err = (JSON.parse(strict.stderr) as { error: { code: string; message: string } }).error;
    expect(err.code).toBe('ERR_TIMEOUT');
    expect(err.message).toContain('--min-peers 1');
  });

  it('an unreachable relay: a put is saved locally and says so (exit 0), a read fails with exit 1; both name the URL', async () => {
    const port = await closedPort();
    const url = `ws://127.0.0.1:${port}`;
    const id = generateDatabaseId();
    const [text, json] = await Promise.all([
      rhizome(['put', id, 'n', '{"a":1}', '--db', join(dir, 'unreachable.db'), '--relay', url, '--timeout', '1500']),
      rhizome(['list', id, '--db', join(dir, 'unreachable2.db'), '--relay', url, '--timeout', '1500', '--json']),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toContain('saved locally, not delivered:');
    expect(text.stderr).toContain(`127.0.0.1:${port}`);
    expect(text.stderr).toMatch(/relay/);
    expect(json.code).toBe(1);
    const err = (JSON.parse(json.stderr) as { error: { code: string; message: string } }).error;
    expect(err.code).toBe('ERR_CONNECT_FAILED');
    expect(err.message).toContain(`127.0.0.1:${port}`);
  });
});

describe('rhizome relay', () => {
  it('listens, answers /healthz, relays, and exits 0 on SIGTERM', async () => {
    const server = new Running(['relay', '--port', '0', '--host', '127.0.0.1', '--json']);
    running.push(server);
    const listening = await server.waitForJson((e) => e['type'] === 'listening', 'the listening line');
    const url = listening['url'] as string;
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(listening['healthz'] as string);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });

    const r = await rhizome(['put', generateDatabaseId(), 'n', '{"a":1}', '--db', join(dir, 'via-cli-relay.db'), '--relay', url]);
    expect(r.code, r.stderr).toBe(0);

    const stopped = await server.stop('SIGTERM');
    expect(stopped.code, server.stderr).toBe(0);
    expect(server.json.at(-1)).toMatchObject({ type: 'stopped' });
  });

  it('bad flags exit 2; a port in use exits 1 naming --port', async () => {
    const [badPort, badFlag, inUse] = await Promise.all([
      rhizome(['relay', '--port', '70000']),
      rhizome(['relay', '--no-such-flag']),
      rhizome(['relay', '--port', String(relay.port), '--host', '127.0.0.1']),
    ]);
    expect(badPort.code, badPort.stderr).toBe(2);
    expect(badPort.stderr).toContain('--port');
    expect(badFlag.code, badFlag.stderr).toBe(2);
    expect(inUse.code, inUse.stderr).toBe(1);
    expect(inUse.stderr).toContain('--port');
  });

  it('serves wss:// with --tls-cert/--tls-key and a token; clients need --tls-ca and --token', async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    writeFileSync(cert, TEST_CERT);
    writeFileSync(key, TEST_KEY);
    const server = new Running(['relay', '--port', '0', '--host', '127.0.0.1', '--tls-cert', cert, '--tls-key', key, '--json'], { RHIZOME_RELAY_TOKEN: 'sesame' });
    running.push(server);
    const listening = await server.waitForJson((e) => e['type'] === 'listening', 'the listening line');
    expect(listening).toMatchObject({ token: true });
    const port = listening['port'] as number;
    const url = `wss://localhost:${port}`;
    const id = generateDatabaseId();
    const [ok, untrusted, noToken] = await Promise.all([
      rhizome(['put', id, 'n', '{"tls":true}', '--db', join(dir, 'tls-ok.db'), '--relay', url, '--tls-ca', cert, '--token', 'sesame', '--json']),
      rhizome(['put', id, 'n', '{"tls":true}', '--db', join(dir, 'tls-untrusted.db'), '--relay', url, '--token', 'sesame', '--timeout', '3000', '--min-peers', '1']),
      rhizome(['put', id, 'n', '{"tls":true}', '--db', join(dir, 'tls-no-token.db'), '--relay', url, '--tls-ca', cert, '--timeout', '3000', '--min-peers', '1', '--json']),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ id: 'n', data: { tls: true } });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toContain(url);
    expect(untrusted.stderr).toContain('--tls-ca');
    expect(noToken.code).toBe(1);
    const err = (JSON.parse(noToken.stderr) as { error: { code: string; message: string; hint: string } }).error;
    expect(err.code).toBe('ERR_RELAY_REJECTED');
    expect(err.message).toContain('UNAUTHORIZED');
    expect(err.hint).toContain('--token');
    expect((await server.stop('SIGTERM')).code).toBe(0);
  });
});
