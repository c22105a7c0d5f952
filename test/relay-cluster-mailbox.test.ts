// The sealed mailbox of a scaled-out relay lives in Redis (`redis` + `mailbox` together): a
// replica deposits through one instance and a fresh replica reads it all through another; the
// store's commit is atomic across instances (two writers at one head: one wins) and keeps the
// quotas and the expiry of the SQLite store. Real redis-server, real relays and databases.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailboxOp, MailboxStatus, createTransport, encodeMailboxUnsigned, generateDatabaseId } from '@rhizome/core';
import { createRelayServer, RedisMailboxStore, resolveClusterOptions, type RelayServer } from '@rhizome/relay';
import { startRedis, type RedisProcess } from '@rhizome/relay/testing';
import { openDatabase, type Database } from '@rhizome/sync';

const WAIT = 20_000;
let dir: string;
let redis: RedisProcess;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-cluster-mailbox-'));
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function waitMailbox(db: Database): Promise<void> {
  for (let i = 0; i < 200 && db.mailbox === null; i++) await new Promise((r) => setImmediate(r));
  if (db.mailbox === null) throw new Error('database has no mailbox binding');
}

function record(op: number, counter: number, prev: number, payload: Uint8Array): { header: Uint8Array; payload: Uint8Array } {
  const header = new Uint8Array(117);
  header.set(encodeMailboxUnsigned(op as 1, counter, prev, payload), 0);
  return { header, payload };
}

describe('mailbox in Redis', () => {
  it('a replica deposits through one instance; a fresh one reads everything through another', async () => {
    const relays: RelayServer[] = [];
    for (let i = 0; i < 2; i++) {
      relays.push(await createRelayServer({ port: 0, host: '127.0.0.1', redis: { url: redis.url, prefix: 'mbtest:' }, mailbox: join(dir, 'unused.db') }));
    }
    try {
      const id = generateDatabaseId();
      const laptop = await openDatabase({ id, path: join(dir, 'laptop.db'), transport: createTransport({ mode: 'relay', relayUrl: relays[0]!.url, timeoutMs: WAIT }) });
      for (let i = 0; i < 300; i++) laptop.put(`n${i}`, { i });
      await waitMailbox(laptop);
      await laptop.mailbox!.whenIdle({ timeoutMs: WAIT });
      expect(laptop.mailbox!.status().cursor).toBeGreaterThan(0);
      await laptop.close();
      const phone = await openDatabase({ id, path: join(dir, 'phone.db'), transport: createTransport({ mode: 'relay', relayUrl: relays[1]!.url, timeoutMs: WAIT }) });
      await waitMailbox(phone);
      await phone.mailbox!.whenIdle({ timeoutMs: WAIT });
      expect(phone.size).toBe(300);
      expect(phone.peers()).toEqual([]);
      await phone.close();
      expect(existsSync(join(dir, 'unused.db'))).toBe(false); // in Redis, not in the file
    } finally {
      for (const r of relays) await r.close();
    }
  }, 60_000);

  it('commit is atomic across instances, keeps the quotas, and expires idle mailboxes', async () => {
    const options = resolveClusterOptions({ url: redis.url, prefix: 'mbstore:' });
    const a = new RedisMailboxStore(options);
    const b = new RedisMailboxStore(options);
    try {
      const box = new Uint8Array(32).fill(3);
      const limits = { maxMailboxBytes: 117 * 3 + 30, maxEntries: 3, maxMailboxes: 1 };
      const base = record(MailboxOp.SNAPSHOT, 1, 0, new Uint8Array(10).fill(1));
      expect((await a.commit({ mailbox: box, op: MailboxOp.SNAPSHOT, counter: 1, prev: 0, now: 1000, limits, ...base })).status).toBe(MailboxStatus.OK);
      // A deposit without a base is refused on another mailbox; the relay-wide count is enforced.
      const other = new Uint8Array(32).fill(4);
      const orphan = record(MailboxOp.DEPOSIT, 1, 0, new Uint8Array(1));
      expect((await b.commit({ mailbox: other, op: MailboxOp.DEPOSIT, counter: 1, prev: 0, now: 1000, limits, ...orphan })).status).toBe(MailboxStatus.NO_BASE);
      const second = record(MailboxOp.SNAPSHOT, 1, 0, new Uint8Array(1));
      expect((await b.commit({ mailbox: other, op: MailboxOp.SNAPSHOT, counter: 1, prev: 0, now: 1000, limits, ...second })).status).toBe(MailboxStatus.RELAY_FULL);
      // Two instances race for the same head: exactly one wins, the other is STALE.
      const x = record(MailboxOp.DEPOSIT, 2, 1, new Uint8Array(10).fill(2));
      const y = record(MailboxOp.DEPOSIT, 2, 1, new Uint8Array(10).fill(3));
      const results = await Promise.all([
        a.commit({ mailbox: box, op: MailboxOp.DEPOSIT, counter: 2, prev: 1, now: 2000, limits, ...x }),
        b.commit({ mailbox: box, op: MailboxOp.DEPOSIT, counter: 2, prev: 1, now: 2000, limits, ...y }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual([MailboxStatus.OK, MailboxStatus.STALE]);
      const third = record(MailboxOp.DEPOSIT, 3, 2, new Uint8Array(10));
      expect((await a.commit({ mailbox: box, op: MailboxOp.DEPOSIT, counter: 3, prev: 2, now: 3000, limits, ...third })).status).toBe(MailboxStatus.OK);
      const fourth = record(MailboxOp.DEPOSIT, 4, 3, new Uint8Array(10));
      expect((await a.commit({ mailbox: box, op: MailboxOp.DEPOSIT, counter: 4, prev: 3, now: 3000, limits, ...fourth })).status).toBe(MailboxStatus.FULL);
      const read = await b.read(box, 1);
      expect(read.headCounter).toBe(3);
      expect(read.records.map((r) => r.counter)).toEqual([2, 3]);
      expect(read.entries).toBe(3);
      expect(await b.stats()).toEqual({ mailboxes: 1, entries: 3, bytes: read.bytes });
      // A snapshot replaces every record.
      const snap = record(MailboxOp.SNAPSHOT, 4, 3, new Uint8Array(5));
      expect((await b.commit({ mailbox: box, op: MailboxOp.SNAPSHOT, counter: 4, prev: 3, now: 4000, limits, ...snap })).status).toBe(MailboxStatus.OK);
      expect((await a.read(box, 0)).records.map((r) => r.counter)).toEqual([4]);
      expect(await a.expire(3999)).toBe(0);
      expect(await a.expire(4001)).toBe(1);
      expect(await b.read(box, 0)).toEqual({ head: null, headCounter: 0, records: [], bytes: 0, entries: 0 });
      expect(await b.stats()).toEqual({ mailboxes: 0, entries: 0, bytes: 0 });
    } finally {
      await a.close();
      await b.close();
    }
  });
});
