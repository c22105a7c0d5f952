// Waiting for delivery: db.whenDelivered() and close({ flushTimeoutMs }), through a real relay on
// 127.0.0.1 with a SQLite file per replica. When either resolves, the peer has applied the write
// already, so the peer is read at once, with no waiting.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';
import { tempDir } from './sync-helpers.js';

const WAIT = 20_000;
let relay: RelayServer;
let dir: { dir: string; cleanup: () => void };
let files = 0;
const open: Database[] = [];

beforeAll(async () => {
  dir = tempDir('rhizome-delivery-');
  relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await Promise.all(open.map((db) => db.close({ flushTimeoutMs: 0 }).catch(() => undefined)));
  await relay.close();
  dir.cleanup();
});

async function replica(id: string): Promise<Database> {
  const db = await openDatabase({ id, path: `${dir.dir}/r${files++}.db`, transport: { mode: 'relay', relayUrl: relay.url, timeoutMs: WAIT } });
  open.push(db);
  return db;
}

describe('whenDelivered', () => {
  it('resolves once a peer has applied every local write, counting a peer that connects while it waits', async () => {
    const id = generateDatabaseId();
    const laptop = await replica(id);
    laptop.put('note-1', { title: 'Hello' });
    laptop.put('note-1', { done: true });
    const delivered = laptop.whenDelivered({ minPeers: 1, timeoutMs: WAIT });
    const phone = await replica(id);
    await expect(delivered).resolves.toBe(1);
    expect(phone.get('note-1')).toEqual({ title: 'Hello', done: true });

    // A write after the first exchange: acknowledged as a live update.
    laptop.put('note-2', { title: 'Later' });
    await expect(laptop.whenDelivered({ timeoutMs: WAIT })).resolves.toBe(1);
    expect(phone.get('note-2')).toEqual({ title: 'Later' });
  });

  it('times out naming how many peers acknowledged, and rejects on close and on bad options', async () => {
    const alone = await replica(generateDatabaseId());
    alone.put('n', { v: 1 });
    await expect(alone.whenDelivered({ minPeers: 1, timeoutMs: 300 })).rejects.toMatchObject({
      code: 'ERR_TIMEOUT',
      message: expect.stringContaining('only 0 of 1 peer(s) acknowledged') as unknown,
    });
    await expect(alone.whenDelivered({ minPeers: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(alone.whenDelivered({ minPeers: 0 })).resolves.toBe(0);
    const pending = alone.whenDelivered({ minPeers: 1, timeoutMs: WAIT });
    await alone.close();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(alone.whenDelivered()).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });
});

describe('close({ flushTimeoutMs })', () => {
  it('waits until the connected peers have applied the writes made just before it', async () => {
    const id = generateDatabaseId();
    const a = await replica(id);
    const b = await replica(id);
    await a.whenSynced({ minPeers: 1, timeoutMs: WAIT });
    for (let i = 0; i < 200; i++) a.put(`n${i}`, { i });
    await a.close({ flushTimeoutMs: WAIT });
    expect(b.size).toBe(200);
    expect(b.get('n199')).toEqual({ i: 199 });
  });

  it('rejects a negative or non-numeric flushTimeoutMs, and a repeated close returns the first one', async () => {
    const db = await replica(generateDatabaseId());
    await expect(db.close({ flushTimeoutMs: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(db.closed).toBe(false);
    const first = db.close({ flushTimeoutMs: 0 });
    expect(db.close()).toBe(first);
    await first;
    expect(db.closed).toBe(true);
  });
});
