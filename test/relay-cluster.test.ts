// Relay scale-out on a real Redis (its own redis-server on a free port, no persistence) with
// three real relay processes: replicas spread over them converge, LOOKUP lists everyone from
// any instance, bad input closes with the same codes everywhere, a peer id cannot be taken over
// from another instance, a SIGKILLed instance is forgotten within its expiry (PEER_LEFT) while
// its clients fail over, and a Redis restart under writes ends converged with nothing crashed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport, deriveTopic, generateDatabaseId } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { RawClient, startRedis, type RedisProcess, type RelayProcess } from '@rhizome/relay/testing';
import { openDatabase, type Database } from '@rhizome/sync';
import {
  CloseCode,
  FrameType,
  decodePeers,
  encodeHello,
  encodeLookup,
  encodeTopicFrame,
  readU32,
  utf8,
} from '@rhizome/transport-relay/protocol';
import { rhizome } from './cli-helpers.js';
import { metric, startCluster, stopAll, untilHealth } from './cluster-helpers.js';
import { until } from './sync-helpers.js';

const WAIT = 30_000;
/** Instance expiry of the test relays (the default is 5 s); heartbeats every 300 ms. */
const TTL_MS = 1200;

let dir: string;
let redis: RedisProcess;
let relays: RelayProcess[] = [];
const dbs: Database[] = [];
const raws: RawClient[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-cluster-'));
  redis = await startRedis();
  relays = await startCluster(3, redis.url, ['--redis-ttl-ms', String(TTL_MS)]);
}, 60_000);

afterAll(async () => {
  for (const r of raws) r.close();
  await Promise.all(dbs.map((db) => db.close().catch(() => undefined)));
  await stopAll(relays);
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

function urlsFrom(first: number): string[] {
  return [0, 1, 2].map((k) => relays[(first + k) % 3]!.url);
}

async function openReplica(id: string, i: number): Promise<Database> {
  const transport = createTransport({ mode: 'relay', relayUrl: urlsFrom(i % 3), peerId: `replica-${i}`, timeoutMs: WAIT });
  const db = await openDatabase({ id, path: join(dir, `replica-${id.slice(0, 6)}-${i}.db`), transport });
  dbs.push(db);
  return db;
}

async function raw(url: string, peerId: string, sessionKey?: Uint8Array): Promise<RawClient> {
  const client = await RawClient.open(url, { peerId, ...(sessionKey ? { sessionKey } : {}) });
  raws.push(client);
  return client;
}

async function lookup(url: string, topic: Uint8Array): Promise<string[]> {
  const client = await raw(url, `looker-${Math.random().toString(36).slice(2)}`);
  const reply = client.next(FrameType.PEERS);
  client.send(encodeLookup(7, topic));
  const { peers } = decodePeers(await within(WAIT, 'a PEERS reply', reply));
  client.close();
  return peers.map((p) => Buffer.from(p.peerId).toString()).sort();
}

function snapshot(db: Database): string {
  return JSON.stringify(db.list().sort((x, y) => x.id.localeCompare(y.id)));
}

describe('three relay instances on one Redis', () => {
  it('six replicas spread over three instances converge, and LOOKUP on any instance lists all six', async () => {
    const id = generateDatabaseId();
    const six = await Promise.all(Array.from({ length: 6 }, (_, i) => openReplica(id, i)));
    six.forEach((db, i) => db.put(`node-${i}`, { owner: i }));
    await Promise.all(six.map((db, i) => until(db, () => db.list().length === 6, `replica ${i} to hold all six nodes`, WAIT)));
    const first = snapshot(six[0]!);
    for (const db of six) expect(snapshot(db)).toBe(first);
    const everyone = Array.from({ length: 6 }, (_, i) => `replica-${i}`).sort();
    for (const relay of relays) expect(await lookup(relay.url, deriveTopic(id))).toEqual(everyone);
    // Cross-instance traffic went through Redis: each instance published records.
    for (const relay of relays) expect(await metric(relay, 'rhizome_relay_cluster_records_out_total')).toBeGreaterThan(0);
  });

  it('bad input closes with the same codes on every instance', async () => {
    const cases: Array<{ what: string; frames: Array<Uint8Array | string>; hello: boolean; code: number }> = [
      { what: 'unknown frame type', frames: [new Uint8Array([0x7e, 1, 2])], hello: true, code: CloseCode.UNKNOWN_FRAME_TYPE },
      { what: 'truncated JOIN', frames: [new Uint8Array([FrameType.JOIN, 1, 2, 3])], hello: true, code: CloseCode.MALFORMED_FRAME },
      { what: 'JOIN before HELLO', frames: [encodeTopicFrame(FrameType.JOIN, new Uint8Array(32))], hello: false, code: CloseCode.HELLO_REQUIRED },
      { what: 'a second HELLO', frames: [encodeHello(utf8('again'), null)], hello: true, code: CloseCode.HELLO_REQUIRED },
      { what: 'another protocol version', frames: [Uint8Array.from([FrameType.HELLO, 9, 1, 0x61, 0, 0])], hello: false, code: CloseCode.VERSION_MISMATCH },
      { what: 'a text message', frames: ['hello'], hello: true, code: CloseCode.UNSUPPORTED_DATA },
    ];
    for (const relay of relays) {
      for (const c of cases) {
        const client = await RawClient.open(relay.url, { hello: c.hello });
        raws.push(client);
        for (const f of c.frames) client.ws.send(f);
        const { code } = await within(WAIT, `${c.what} to close the socket`, client.closed);
        expect({ relay: relay.port, what: c.what, code }).toEqual({ relay: relay.port, what: c.what, code: c.code });
      }
    }
  });

  it('a peer id held on one instance cannot be taken from another; its own client (same session key) replaces it', async () => {
    const key = new Uint8Array(16).fill(42);
    const holder = await raw(relays[0]!.url, 'held-id', key);
    const thief = await RawClient.open(relays[1]!.url, { peerId: 'held-id', hello: false });
    raws.push(thief);
    thief.send(encodeHello(utf8('held-id'), null, new Uint8Array(16).fill(7)));
    expect((await within(WAIT, 'the thief to be refused', thief.closed)).code).toBe(CloseCode.PEER_ID_TAKEN);
    const owner = await raw(relays[2]!.url, 'held-id', key);
    expect((await within(WAIT, 'the old session to be replaced', holder.closed)).code).toBe(CloseCode.REPLACED);
    expect(owner.ws.readyState).toBe(owner.ws.OPEN);
  });

  it('SIGKILL of one instance while replicas write: its clients fail over, all converge, and the others see PEER_LEFT within the expiry', async () => {
    const id = generateDatabaseId();
    const topic = deriveTopic(id);
    const six = await Promise.all(Array.from({ length: 6 }, (_, i) => openReplica(id, 10 + i)));
    // Observers: a member on the instance that dies, and one on each survivor.
    const doomed = await raw(relays[0]!.url, 'doomed-observer');
    await doomed.join(topic);
    const watchers = [await raw(relays[1]!.url, 'watcher-1'), await raw(relays[2]!.url, 'watcher-2')];
    const doomedSessions: number[] = [];
    for (const w of watchers) {
      await w.join(topic);
      // Find the PEER_JOINED that introduces the doomed observer (the replicas' come too).
      for (;;) {
        const f = await within(WAIT, 'PEER_JOINED of the doomed observer', w.next(FrameType.PEER_JOINED));
        if (Buffer.from(f.subarray(10)).toString() === 'doomed-observer') {
          doomedSessions.push(readU32(f, 5));
          break;
        }
      }
    }
    let writing = true;
    const writers = six.map(async (db, i) => {
      for (let k = 0; writing && k < 400; k++) {
        db.put(`w-${i}-${k}`, { k });
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const killedAt = Date.now();
    relays[0]!.child.kill('SIGKILL');
    const leftAfter = await Promise.all(
      watchers.map(async (w, i) => {
        for (;;) {
          const f = await within(TTL_MS * 8, `PEER_LEFT of the doomed observer at watcher ${i + 1}`, w.next(FrameType.PEER_LEFT));
          if (readU32(f, 5) === doomedSessions[i]) return Date.now() - killedAt;
        }
      }),
    );
    // The bound: instanceTtlMs plus one heartbeat interval, with slack for a busy CI machine.
    for (const ms of leftAfter) expect(ms).toBeLessThan(TTL_MS * 8);
    writing = false;
    await Promise.all(writers);
    const total = six.reduce((n, db) => n + db.list().filter((x) => x.id.startsWith('w-')).length, 0);
    expect(total).toBeGreaterThan(0);
    const expected = new Set<string>();
    for (const db of six) for (const n of db.list()) expected.add(n.id);
    await Promise.all(six.map((db, i) => until(db, () => db.list().length === expected.size, `replica ${i} to converge after the kill`, WAIT)));
    const first = snapshot(six[0]!);
    for (const db of six) expect(snapshot(db)).toBe(first);
    // The survivors counted the expiry and see two instances.
    for (const r of relays.slice(1)) await untilHealth(r, (h) => h.cluster?.instances === 2, 'survivors to see two instances');
    expect(await metric(relays[1]!, 'rhizome_relay_cluster_instances_expired_total')).toBeGreaterThanOrEqual(1);
  });

  it('the CLI with repeated --relay skips the dead instance and reaches a replica on another one', async () => {
    const id = generateDatabaseId();
    const replica = await openReplica(id, 30 + 1); // prefers relay 1
    const put = await rhizome(
      ['put', id, 'from-cli', '{"via":"cluster"}', '--db', join(dir, 'cli.db'), '--relay', relays[0]!.url, '--relay', relays[2]!.url, '--min-peers', '1', '--json'],
      { timeoutMs: WAIT },
    );
    expect(put.code, put.stderr).toBe(0);
    await until(replica, () => replica.get('from-cli')?.via === 'cluster', 'the replica on another instance to see the CLI write', WAIT);
  });

  it('a client flooding through one instance cannot exhaust another instance\'s memory', async () => {
    const [near, far] = [relays[1]!, relays[2]!];
    const topic = deriveTopic(generateDatabaseId());
    const reader = await raw(far.url, 'slow-reader');
    await reader.join(topic);
    const flooder = await raw(near.url, 'flooder');
    const topicId = await flooder.join(topic);
    await within(WAIT, 'the flooder to be paired with the reader on the other instance', flooder.next(FrameType.PEER_JOINED));
    reader.ws.pause(); // stops reading: everything for it piles up at the far instance
    const before = far.memory();
    const bytesInBefore = await metric(far, 'rhizome_relay_redis_bytes_in_total');
    const big = new Uint8Array(9 + 1024 * 1024);
    big[0] = FrameType.BROADCAST;
    big.set([topicId >>> 24, (topicId >>> 16) & 0xff, (topicId >>> 8) & 0xff, topicId & 0xff], 1);
    let sent = 0;
    for (let i = 0; i < 400 && flooder.ws.readyState === flooder.ws.OPEN; i++) {
      await new Promise<void>((resolve) => flooder.ws.send(big, () => resolve()));
      sent += big.length;
    }
    // The near instance cut the flooder (its close frame may not get through before the socket is
    // destroyed while the flooder's own megabytes are still in flight: 1006 then).
    const { code } = await within(WAIT, 'the near instance to cut the flooder', flooder.closed);
    expect([CloseCode.BYTE_RATE_EXCEEDED, CloseCode.FRAME_RATE_EXCEEDED, 1006]).toContain(code);
    const rateCuts =
      ((await metric(near, 'rhizome_relay_drops_total{reason="byte_rate_exceeded"}')) || 0) + ((await metric(near, 'rhizome_relay_drops_total{reason="frame_rate_exceeded"}')) || 0);
    expect(rateCuts).toBeGreaterThanOrEqual(1);
    // The far instance cut its reader once 16 MiB were queued for it, and stayed small.
    await untilHealth(far, (h) => h.status === 'ok', 'the far instance to answer');
    expect(await metric(far, 'rhizome_relay_drops_total{reason="slow_consumer"}')).toBeGreaterThanOrEqual(1);
    const received = (await metric(far, 'rhizome_relay_redis_bytes_in_total')) - bytesInBefore;
    const grown = far.memory().peak - before.peak;
    // It received the flood until it cut its reader (16 MiB queued); then its reader left the
    // topic, the near instance heard LEAVE, and nothing more crossed.
    expect(sent).toBeGreaterThan(64 * 1024 * 1024);
    expect(received).toBeGreaterThan(16 * 1024 * 1024);
    expect(received).toBeLessThan(sent);
    expect(grown).toBeLessThan(64 * 1024 * 1024);
    expect(far.child.exitCode).toBeNull();
  });

  it('a Redis restart while replicas write: nothing crashes, /healthz reports degraded, and all converge afterwards', async () => {
    const live = relays.filter((r) => r.child.exitCode === null && r.child.signalCode === null);
    expect(live.length).toBe(2);
    const id = generateDatabaseId();
    // Two replicas per live instance, each preferring its own.
    const four = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        const transport = createTransport({ mode: 'relay', relayUrl: [live[i % 2]!.url, live[(i + 1) % 2]!.url], peerId: `restart-${i}`, timeoutMs: WAIT });
        const db = await openDatabase({ id, path: join(dir, `restart-${i}.db`), transport });
        dbs.push(db);
        return db;
      }),
    );
    four.forEach((db, i) => db.put(`start-${i}`, { i }));
    await Promise.all(four.map((db, i) => until(db, () => db.list().length === 4, `replica ${i} to sync before the restart`, WAIT)));
    let writing = true;
    const writers = four.map(async (db, i) => {
      for (let k = 0; writing && k < 400; k++) {
        db.put(`r-${i}-${k}`, { k });
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
    });
    await redis.kill();
    for (const r of live) await untilHealth(r, (h) => h.status === 'degraded' && h.cluster?.redis === 'down', 'a relay to report degraded');
    await redis.restart();
    for (const r of live) await untilHealth(r, (h) => h.status === 'ok' && h.cluster?.instances === 2, 'a relay to be back in the cluster');
    writing = false;
    await Promise.all(writers);
    const expected = new Set<string>();
    for (const db of four) for (const n of db.list()) expected.add(n.id);
    await Promise.all(four.map((db, i) => until(db, () => db.list().length === expected.size, `replica ${i} to converge after the restart`, WAIT)));
    const first = snapshot(four[0]!);
    for (const db of four) expect(snapshot(db)).toBe(first);
    for (const r of live) {
      expect(r.child.exitCode).toBeNull();
      expect(await metric(r, 'rhizome_relay_redis_outages_total')).toBeGreaterThanOrEqual(1);
    }
  });
});
