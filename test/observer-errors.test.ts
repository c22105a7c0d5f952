// An app's Yjs observer that throws while a REMOTE update is applied is the app's bug, not the
// peer's: the update is in the document (Yjs calls every observer, then rethrows), so it must
// reach the database's 'update' listeners (SQLite, the other peers) and the session must carry
// on. The error goes to db.events as an `error` event, as for a local write batch
// (test/write-batch.test.ts). Both paths of sync/src/apply.ts: an ordinary update, and a single
// update of REENCODE_SKIP_BYTES or more (handed to the listeners as received).
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryTransport, createTransport, generateDatabaseId } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';
import { collectEvents, nextEvent, tempDir, uniqueHub, until } from './sync-helpers.js';

const { dir, cleanup } = tempDir('rhizome-observer-errors-');
afterAll(cleanup);

describe('an app observer that throws on a remote update', () => {
  it('neither ends the session nor keeps the update from SQLite and the events', async () => {
    const hub = uniqueHub('observer-errors');
    const id = 'observer-errors';
    const path = join(dir, 'b.db');
    const a = await openDatabase({ id, transport: new MemoryTransport({ hub }) });
    const b = await openDatabase({ id, path, transport: new MemoryTransport({ hub }) });
    const events = collectEvents(b);
    try {
      await b.whenSynced({ minPeers: 1 });
      b.doc.getMap('nodes').observe(() => {
        throw new Error('app observer failed');
      });
      const errors: string[] = [];
      /** A put at a, then its node at b and the error event of b's observer. */
      const deliver = async (nodeId: string, data: Record<string, string | number>): Promise<void> => {
        const error = nextEvent(b, (e) => e.type === 'error', `the error event of ${nodeId}`);
        a.put(nodeId, data);
        errors.push(((await error) as { error: Error }).error.message);
        await until(b, () => b.get(nodeId) !== undefined, `${nodeId} at b`);
      };
      await deliver('small', { v: 1 });
      // One large update (over 64 KiB): the path that hands the received bytes to the listeners.
      await deliver('large', { v: 'x'.repeat(100 * 1024) });
      await deliver('after', { v: 2 });
      expect(errors).toEqual(['app observer failed', 'app observer failed', 'app observer failed']);
      expect(events.events.some((e) => e.type === 'peer-disconnected')).toBe(false);
      expect(b.peers()).toHaveLength(1);
    } finally {
      events.stop();
      await b.close();
      await a.close();
    }
    const again = await openDatabase({ id, path });
    try {
      expect(again.get('small')).toEqual({ v: 1 });
      expect(again.get('large')?.['v']).toHaveLength(100 * 1024);
      expect(again.get('after')).toEqual({ v: 2 });
    } finally {
      await again.close();
    }
  });

  it('an awareness listener that throws neither ends the session nor loses the peer\'s presence', async () => {
    const hub = uniqueHub('observer-errors-awareness');
    const id = 'observer-errors-awareness';
    const a = await openDatabase({ id, transport: new MemoryTransport({ hub }) });
    const b = await openDatabase({ id, transport: new MemoryTransport({ hub }) });
    const events = collectEvents(b);
    try {
      await b.whenSynced({ minPeers: 1 });
      b.awareness.on('change', () => {
        throw new Error('app awareness listener failed');
      });
      const error = nextEvent(b, (e) => e.type === 'error', 'the error event of the awareness listener');
      a.awareness.setLocalStateField('user', 'alice');
      expect(((await error) as { error: Error }).error.message).toBe('app awareness listener failed');
      await until(b, () => b.awareness.getStates().get(a.doc.clientID) !== undefined, "a's presence at b");
      // The session still runs: a later update arrives.
      a.put('after', { v: 1 });
      await until(b, () => b.get('after') !== undefined, 'an update after the failure');
      expect(events.events.some((e) => e.type === 'peer-disconnected')).toBe(false);
    } finally {
      events.stop();
    }
    // a leaves: b drops its presence (b tracked a's awareness client for that peer).
    const gone = nextEvent(b, (e) => e.type === 'peer-disconnected', 'a leaving');
    await a.close();
    await gone;
    expect(b.awareness.getStates().get(a.doc.clientID)).toBeUndefined();
    await b.close();
  });

  it('while catching up from the relay mailbox: reported as the app\'s error, not as bad records', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: join(dir, 'relay-mailbox.db') });
    const id = generateDatabaseId();
    const open = (file: string): Promise<Database> =>
      openDatabase({ id, path: join(dir, file), transport: createTransport({ mode: 'relay', relayUrl: relay.url, timeoutMs: 20_000 }) });
    try {
      const writer = await open('mailbox-writer.db');
      writer.put('offline', { v: 1 });
      await bindMailbox(writer);
      await writer.mailbox!.whenIdle({ timeoutMs: 20_000 });
      await writer.close();

      const reader = await open('mailbox-reader.db');
      reader.doc.getMap('nodes').observe(() => {
        throw new Error('app observer failed');
      });
      const error = nextEvent(reader, (e) => e.type === 'error', 'the error event of the catch-up');
      await bindMailbox(reader);
      expect(((await error) as { error: Error & { code?: string } }).error).toMatchObject({ message: 'app observer failed' });
      await reader.mailbox!.whenIdle({ timeoutMs: 20_000 });
      expect(reader.get('offline')).toEqual({ v: 1 });
      expect(reader.mailbox!.status().cursor).toBeGreaterThan(0); // the catch-up counted as done
      await reader.close();
    } finally {
      await relay.close();
    }
  });
});

/** Waits (bounded) until the database has its relay mailbox binding. */
async function bindMailbox(db: Database): Promise<void> {
  for (let i = 0; i < 200 && db.mailbox === null; i++) await new Promise((r) => setImmediate(r));
  if (db.mailbox === null) throw new Error('database has no mailbox binding');
}
