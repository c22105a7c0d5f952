// Runs inside real Chromium (vitest browser mode, /usr/bin/chromium): the DocStore contract
// for the IndexedDB store, plus refusal of damaged and foreign databases and two handles at once.
import { afterAll, describe, expect, it } from 'vitest';
import { runStoreContract } from '@rhizome/core/testing';
import { IDB_NAME_PREFIX, openIndexedDbStore, type IndexedDbStore } from './index.js';

let counter = 0;
const created = new Set<string>();
function freshName(): string {
  const name = `contract-${Date.now().toString(36)}-${counter++}`;
  created.add(name);
  return name;
}

function deleteDb(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(name);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error ?? new Error('deleteDatabase failed'));
  });
}

afterAll(async () => {
  for (const name of created) await deleteDb(IDB_NAME_PREFIX + name);
});

runStoreContract(
  'IndexedDbStore (Chromium)',
  async () => {
    const name = freshName();
    let latest: IndexedDbStore = await openIndexedDbStore(name);
    return {
      store: latest,
      reopen: async () => {
        // close() lets queued writes finish; `closed` says when (Database.close() awaits flush()).
        await latest.closed;
        latest = await openIndexedDbStore(name);
        return latest;
      },
      dispose: async () => {
        await latest.closed;
        await deleteDb(IDB_NAME_PREFIX + name);
        created.delete(name);
      },
    };
  },
  { persistent: true },
);

/** Raw IndexedDB: opens `name` at `version`, running `upgrade` if it is created or upgraded. */
function rawOpen(name: string, version: number, upgrade: (db: IDBDatabase, tx: IDBTransaction) => void): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, version);
    req.onupgradeneeded = () => upgrade(req.result, req.transaction!);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('open failed'));
  });
}

async function rawDump(name: string): Promise<{ version: number; stores: string[]; rows: Record<string, unknown[]> }> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open(name);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('open failed'));
  });
  const stores = Array.from({ length: db.objectStoreNames.length }, (_, i) => db.objectStoreNames.item(i)!).sort();
  const rows: Record<string, unknown[]> = {};
  for (const s of stores) {
    rows[s] = await new Promise<unknown[]>((resolve, reject) => {
      const req = db.transaction(s).objectStore(s).getAll();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error('getAll failed'));
    });
  }
  const version = db.version;
  db.close();
  return { version, stores, rows };
}

async function expectRefused(name: string, code: string): Promise<void> {
  const before = await rawDump(IDB_NAME_PREFIX + name);
  let thrown: unknown;
  try {
    (await openIndexedDbStore(name)).close();
  } catch (error) {
    thrown = error;
  }
  expect((thrown as { code?: string } | undefined)?.code).toBe(code);
  // Untouched: same version, same object stores, same rows.
  expect(await rawDump(IDB_NAME_PREFIX + name)).toEqual(before);
}

describe('IndexedDbStore refuses what it did not write, untouched', () => {
  it('a foreign IndexedDB database of the same name: ERR_STORE_CORRUPT', async () => {
    const name = freshName();
    const db = await rawOpen(IDB_NAME_PREFIX + name, 3, (raw) => {
      raw.createObjectStore('todos').put({ title: 'not ours' }, 'k1');
    });
    db.close();
    await expectRefused(name, 'ERR_STORE_CORRUPT');
  });

  it('our object stores without the format record: ERR_STORE_CORRUPT', async () => {
    const name = freshName();
    const db = await rawOpen(IDB_NAME_PREFIX + name, 1, (raw) => {
      for (const s of ['meta', 'docs', 'snapshots', 'updates']) raw.createObjectStore(s);
    });
    db.close();
    await expectRefused(name, 'ERR_STORE_CORRUPT');
  });

  it('a damaged update row (not bytes): ERR_STORE_CORRUPT', async () => {
    const name = freshName();
    const store = await openIndexedDbStore(name);
    store.append('d', [Uint8Array.of(1, 2, 3)]);
    store.close();
    await store.closed;
    const db = await rawOpen(IDB_NAME_PREFIX + name, 2, (_raw, tx) => {
      tx.objectStore('updates').put('garbage', ['d', 1]);
    });
    db.close();
    await expectRefused(name, 'ERR_STORE_CORRUPT');
  });

  it('a store written by a newer format: ERR_STORE_VERSION', async () => {
    const name = freshName();
    const store = await openIndexedDbStore(name);
    store.close();
    await store.closed;
    const db = await rawOpen(IDB_NAME_PREFIX + name, 2, (_raw, tx) => {
      tx.objectStore('meta').put({ app: 'rhizome-store', version: 99 }, 'format');
    });
    db.close();
    await expectRefused(name, 'ERR_STORE_VERSION');
  });
});

describe('IndexedDbStore with two handles on one database (two tabs)', () => {
  it('concurrent appends never overwrite each other; a compaction keeps the other handle\'s updates', async () => {
    const name = freshName();
    const a = await openIndexedDbStore(name);
    const b = await openIndexedDbStore(name);
    for (let i = 0; i < 20; i++) {
      a.append('d', [Uint8Array.of(1, i)]);
      b.append('d', [Uint8Array.of(2, i)]);
    }
    await Promise.all([a.flush(), b.flush()]);
    // A compacts what it knows (its own 20 updates) into a snapshot; B's 20 stay in the log.
    a.compact('d', Uint8Array.of(9, 9, 9), a.stats('d').lastSeq);
    b.append('d', [Uint8Array.of(2, 99)]);
    await Promise.all([a.flush(), b.flush()]);
    a.close();
    b.close();
    await Promise.all([a.closed, b.closed]);
    const c = await openIndexedDbStore(name);
    const loaded = c.load('d');
    const rows = loaded.updates.map((u) => `${u[0]}:${u[1]}`);
    expect(rows).toHaveLength(21);
    expect(rows.filter((r) => r.startsWith('2:'))).toHaveLength(21);
    expect([...loaded.snapshot!]).toEqual([9, 9, 9]);
    expect(c.stats('d').lastSeq).toBe(41);
    c.close();
    await c.closed;
  });
});
