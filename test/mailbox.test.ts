// The sealed relay mailbox end to end: a real relay on 127.0.0.1 with its mailbox in a real SQLite
// file, real databases with their own SQLite files. Replicas that are never online together.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport, generateDatabaseId, type SyncEvent } from '@rhizome/core';
import { RelayTransport } from '@rhizome/transport-relay';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';
import { collectEvents } from './sync-helpers.js';

const WAIT = 20_000;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-mailbox-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function open(id: string, path: string, relayUrl: string): Promise<Database> {
  return openDatabase({ id, path, transport: createTransport({ mode: 'relay', relayUrl, timeoutMs: WAIT }) });
}

function errorsOf(events: SyncEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'error' ? [(e.error as Error & { code?: string }).code ?? e.error.message] : []));
}

describe('laptop and phone, never online together', () => {
  it('1,000 nodes cross through the mailbox, across a relay restart, both ways', async () => {
    const mailboxFile = join(dir, 'relay-mailbox.db');
    const id = generateDatabaseId();
    const laptopFile = join(dir, 'laptop.db');
    const phoneFile = join(dir, 'phone.db');
    let relay: RelayServer = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: mailboxFile });
    const port = relay.port;
    try {
      // The laptop writes 1,000 nodes and goes away.
      const laptop = await open(id, laptopFile, relay.url);
      for (let i = 0; i < 1000; i++) laptop.put(`n${i}`, { title: `note ${i}`, i });
      await waitMailbox(laptop);
      await laptop.mailbox!.whenIdle({ timeoutMs: WAIT });
      expect(laptop.mailbox!.status().cursor).toBeGreaterThan(0);
      await laptop.close();

      // The relay restarts on the same file.
      await relay.close();
      relay = await createRelayServer({ port, host: '127.0.0.1', mailbox: mailboxFile });

      // The phone, a fresh replica, opens with the laptop offline and gets every node.
      const phone = await open(id, phoneFile, relay.url);
      const phoneEvents = collectEvents(phone);
      await waitMailbox(phone);
      await phone.mailbox!.whenIdle({ timeoutMs: WAIT });
      expect(phone.size).toBe(1000);
      expect(phone.get('n999')).toEqual({ title: 'note 999', i: 999 });
      expect(phone.peers()).toEqual([]);
      phone.put('from-phone', { text: 'written on the phone' });
      phone.delete('n0');
      await phone.mailbox!.whenIdle({ timeoutMs: WAIT });
      phoneEvents.stop();
      expect(errorsOf(phoneEvents.events)).toEqual([]);
      await phone.close();

      // The laptop comes back and gets the phone's writes.
      const back = await open(id, laptopFile, relay.url);
      await waitMailbox(back);
      await back.mailbox!.whenIdle({ timeoutMs: WAIT });
      expect(back.get('from-phone')).toEqual({ text: 'written on the phone' });
      expect(back.get('n0')).toBeUndefined();
      expect(back.size).toBe(1000);
      await back.close();
    } finally {
      await relay.close();
    }
  }, 60_000);
});

describe('mailbox and live peers together', () => {
  let relay: RelayServer;
  beforeAll(async () => {
    relay = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: join(dir, 'live.db') });
  });
  afterAll(() => relay.close());

  it('two writers online at once race for the head without errors; a newcomer gets it all from the mailbox alone', async () => {
    const id = generateDatabaseId();
    const a = await open(id, join(dir, 'live-a.db'), relay.url);
    const b = await open(id, join(dir, 'live-b.db'), relay.url);
    const ea = collectEvents(a);
    const eb = collectEvents(b);
    await a.whenSynced({ minPeers: 1, timeoutMs: WAIT });
    for (let round = 0; round < 20; round++) {
      a.put(`a${round}`, { round });
      b.put(`b${round}`, { round });
      if (round % 5 === 4) await Promise.all([a.mailbox!.whenIdle({ timeoutMs: WAIT }), b.mailbox!.whenIdle({ timeoutMs: WAIT })]);
    }
    await Promise.all([a.mailbox!.whenIdle({ timeoutMs: WAIT }), b.mailbox!.whenIdle({ timeoutMs: WAIT })]);
    ea.stop();
    eb.stop();
    expect(codes([...ea.events, ...eb.events])).toEqual([]);
    await Promise.all([a.close(), b.close()]);
    const c = await open(id, join(dir, 'live-c.db'), relay.url);
    await c.mailbox!.whenIdle({ timeoutMs: WAIT });
    expect(c.peers()).toEqual([]);
    expect(c.size).toBe(40);
    await c.close();
  }, 60_000);

  it('mailbox: false in the transport config turns it off', async () => {
    const t = new RelayTransport({ url: relay.url, mailbox: false });
    expect(t.mailbox).toBeNull();
    const db = await openDatabase({ id: generateDatabaseId(), transport: { mode: 'relay', relayUrl: relay.url, mailbox: false } });
    expect(db.mailbox).toBeNull();
    await db.close();
  });
});

describe('a relay that rolls its mailbox back', () => {
  it('is noticed by the signed counter (ERR_MAILBOX_ROLLBACK); the replica re-deposits above it', async () => {
    const mailboxFile = join(dir, 'rollback.db');
    const old = join(dir, 'rollback-old.db');
    const id = generateDatabaseId();
    const laptopFile = join(dir, 'rollback-laptop.db');
    let relay = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: mailboxFile });
    const port = relay.port;
    try {
      const a = await open(id, laptopFile, relay.url);
      a.put('first', { v: 1 });
      await a.mailbox!.whenIdle({ timeoutMs: WAIT });
      await a.close();
      await relay.close(); // the file is checkpointed and whole now: keep a copy of this state
      copyFileSync(mailboxFile, old);
      relay = await createRelayServer({ port, host: '127.0.0.1', mailbox: mailboxFile });
      const a2 = await open(id, laptopFile, relay.url);
      a2.put('second', { v: 2 });
      await a2.mailbox!.whenIdle({ timeoutMs: WAIT });
      const remembered = a2.mailbox!.status().remembered;
      await a2.close();
      await relay.close();
      // The operator (or an attacker with the disk) puts the old file back.
      copyFileSync(old, mailboxFile);
      rmSync(`${mailboxFile}-wal`, { force: true });
      rmSync(`${mailboxFile}-shm`, { force: true });
      relay = await createRelayServer({ port, host: '127.0.0.1', mailbox: mailboxFile });

      const a3 = await open(id, laptopFile, relay.url);
      const events = collectEvents(a3);
      await a3.mailbox!.whenIdle({ timeoutMs: WAIT });
      events.stop();
      expect(codes(events.events)).toEqual(['ERR_MAILBOX_ROLLBACK']);
      expect(a3.mailbox!.status().remembered).toBeGreaterThan(remembered);
      await a3.close();
      // A fresh replica gets both writes from the mailbox again.
      const b = await open(id, join(dir, 'rollback-phone.db'), relay.url);
      await b.mailbox!.whenIdle({ timeoutMs: WAIT });
      expect(b.get('first')).toEqual({ v: 1 });
      expect(b.get('second')).toEqual({ v: 2 });
      await b.close();
    } finally {
      await relay.close();
    }
  }, 60_000);
});

function codes(events: SyncEvent[]): string[] {
  return errorsOf(events);
}

/** The mailbox binding appears once the database joined its topic (the macrotask after open). */
async function waitMailbox(db: Database): Promise<void> {
  for (let i = 0; i < 200 && db.mailbox === null; i++) await new Promise((r) => setImmediate(r));
  if (db.mailbox === null) throw new Error('database has no mailbox binding');
}
