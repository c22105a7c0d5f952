// A pending whenSynced (Session 13, rssconn: one object with methods instead of five closures)
// settles once, by whichever comes first — synced, the timeout, the abort signal, close — and
// leaves no abort listener behind.
import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import { openDatabase, type Database } from '@rhizome/sync';
import { uniqueHub } from './sync-helpers.js';

const open: Database[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close().catch(() => undefined)));
});

async function replica(id: string, hub: string, peerId: string): Promise<Database> {
  const db = await openDatabase({ id, transport: new MemoryTransport({ hub, peerId }) });
  open.push(db);
  return db;
}

describe('a pending whenSynced', () => {
  it('rejects with the abort reason, and with ERR_TIMEOUT naming what it waited for', async () => {
    const db = await replica(generateDatabaseId(), uniqueHub('when-synced'), 'alone');
    const abort = new AbortController();
    const waiting = db.whenSynced({ minPeers: 1, signal: abort.signal, timeoutMs: 60_000 });
    expect(getEventListeners(abort.signal, 'abort').length).toBe(1);
    const reason = new Error('stop waiting');
    abort.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(getEventListeners(abort.signal, 'abort').length).toBe(0);
    const other = new AbortController();
    await expect(db.whenSynced({ minPeers: 2, timeoutMs: 50, signal: other.signal })).rejects.toMatchObject({ code: 'ERR_TIMEOUT', message: 'not synced after 50 ms (0 peers, waiting for 2 peers)' });
    expect(getEventListeners(other.signal, 'abort').length).toBe(0);
  });

  it('resolves when the peer syncs, removing its abort listener, and rejects ERR_CLOSED on close', async () => {
    const id = generateDatabaseId();
    const hub = uniqueHub('when-synced');
    const a = await replica(id, hub, 'a');
    const abort = new AbortController();
    const synced = a.whenSynced({ minPeers: 1, signal: abort.signal, timeoutMs: 60_000 });
    const alsoSynced = a.whenSynced({ minPeers: 1, timeoutMs: 60_000 });
    await replica(id, hub, 'b');
    await Promise.all([synced, alsoSynced]);
    expect(getEventListeners(abort.signal, 'abort').length).toBe(0);
    abort.abort(); // after it settled: nothing happens
    const lonely = await replica(generateDatabaseId(), hub, 'c');
    const pending = lonely.whenSynced({ minPeers: 1, timeoutMs: 60_000 });
    await lonely.close();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });
});
