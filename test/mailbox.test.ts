// The sealed relay mailbox end to end: a real relay on 127.0.0.1 with its mailbox in a real SQLite
// file, real databases with their own SQLite files. Replicas that are never online together.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransport, generateDatabaseId, type SyncEvent } from '@rhizome/core';
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

/** The mailbox binding appears once the database joined its topic (the macrotask after open). */
async function waitMailbox(db: Database): Promise<void> {
  for (let i = 0; i < 200 && db.mailbox === null; i++) await new Promise((r) => setImmediate(r));
  if (db.mailbox === null) throw new Error('database has no mailbox binding');
}
