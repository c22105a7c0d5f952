import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction } from 'idb';
import * as Y from 'yjs';
import {
  ClosedError,
  InvalidArgumentError,
  StoreCorruptError,
  StoreUnavailableError,
  StoreVersionError,
  type DocStore,
  type StoredDoc,
  type StoreStats,
} from '@rhizome/core';

/** Prefix of the IndexedDB database that holds the store named `name`: `rhizome:<name>`. */
export const IDB_NAME_PREFIX = 'rhizome:';
/** The `app` field of the format record: tells a Rhizome store from someone else's database. */
export const IDB_FORMAT_APP = 'rhizome-store';
/** Layout version of the object stores below; a store written with a higher one is refused. */
export const IDB_FORMAT_VERSION = 1;

/** How hard a write transaction asks the browser to reach the disk (IndexedDB `durability`). */
export type IdbDurability = 'relaxed' | 'strict' | 'default';

/** Options of {@link openIndexedDbStore}. */
export interface IndexedDbStoreOptions {
  /**
   * Durability of the write-behind transactions that carry `append` and `compact`. `'relaxed'`
   * (default) commits to the operating system without waiting for the disk, like SQLite's
   * `synchronous=NORMAL`: a crashed tab or browser loses nothing that committed, a power loss may
   * lose the last commits. `flush()` always ends with a `'strict'` transaction, so what it
   * resolved for is on disk either way. `'strict'` on every write costs an fsync per commit.
   */
  durability?: IdbDurability;
  /** The IndexedDB factory (default `globalThis.indexedDB`). */
  indexedDB?: IDBFactory;
}

/** On-disk layout (format version 1). */
interface StoreSchema extends DBSchema {
  /** `'format'` → which program wrote this database, in which layout. */
  meta: { key: string; value: { app: string; version: number; flushedAt?: number } };
  /** Document id → its newest sequence number on disk (assigned inside the append transaction). */
  docs: { key: string; value: { lastSeq: number } };
  /** Document id → its snapshot; `gen` counts the compactions that wrote it. */
  snapshots: { key: string; value: { gen: number; bytes: Uint8Array } };
  /**
   * `[docId, key]` → the updates of one append (or of several appends batched into one
   * transaction): disk sequence numbers `first`, `first + 1`, ...; `packed` is each update as a
   * u32 little-endian length and its bytes. One row per batch, not per update: IndexedDB costs
   * per request, and a tick of 10,000 puts is one row.
   */
  updates: { key: [string, number]; value: { first: number; packed: Uint8Array } };
}

const STORES = ['meta', 'docs', 'snapshots', 'updates'] as const;
/** `MirrorDoc.gen` once the snapshot on disk may hold more than this handle's document: merge from then on. */
const MERGE_ALWAYS = -1;
type Db = IDBPDatabase<StoreSchema>;
type WriteTx = IDBPTransaction<StoreSchema, ['docs', 'snapshots', 'updates'], 'readwrite'>;

/** One update as this handle knows it: its sequence number here, and where it is on disk once written. */
interface Entry {
  seq: number;
  update: Uint8Array;
  diskSeq: number | undefined;
  row: Row | undefined;
}

/** One row of `updates`: its key and the entries it holds now, in order. */
interface Row {
  key: number;
  entries: Entry[];
}

/** Packs updates as (u32 LE length, bytes)*. */
function pack(updates: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const u of updates) total += 4 + u.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const u of updates) {
    view.setUint32(at, u.length, true);
    out.set(u, at + 4);
    at += 4 + u.length;
  }
  return out;
}

/** The inverse of {@link pack}; `null` when the bytes are not a whole number of records. */
function unpack(packed: Uint8Array): Uint8Array[] | null {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < packed.length) {
    if (at + 4 > packed.length) return null;
    const length = view.getUint32(at, true);
    if (at + 4 + length > packed.length) return null;
    out.push(packed.slice(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

interface MirrorDoc {
  snapshot: Uint8Array | null;
  /** Generation of the snapshot this handle last read or wrote (0: none). */
  gen: number;
  log: Entry[];
  lastSeq: number;
}

type Op =
  | { kind: 'append'; docId: string; entries: Entry[] }
  | { kind: 'compact'; docId: string; snapshot: Uint8Array; drop: Entry[] };

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/**
 * A {@link DocStore} kept in IndexedDB, for pages (and workers, and any host with IndexedDB).
 *
 * The `DocStore` interface is synchronous and IndexedDB is not, so the store works as a
 * write-behind mirror: {@link openIndexedDbStore} reads everything into memory once, reads are
 * served from memory, and `append`/`compact` change memory at once and queue the same change
 * for IndexedDB. Queued changes go out in order, as many as are waiting in one readwrite
 * transaction, while the next batch collects. {@link flush} resolves once every change queued
 * before the call has committed, followed by a `strict` transaction: then it is on disk.
 *
 * Several handles (tabs) may hold one store at once: sequence numbers on disk are assigned
 * inside the append transaction, so concurrent appends never overwrite each other; a compaction
 * deletes only the updates this handle had (read at open or appended itself), and when another
 * handle replaced the snapshot meanwhile, the two snapshots are merged rather than one lost.
 *
 * @example
 * ```ts
 * const store = await openIndexedDbStore('notes');
 * store.append('doc', [update]);
 * await store.flush(); // on disk
 * store.close();
 * await store.closed;  // every queued write done; safe to reopen in this page
 * ```
 */
export class IndexedDbStore implements DocStore {
  /** The store name (`path` of the database); the IndexedDB database is `rhizome:<name>`. */
  readonly name: string;
  /** Resolves once `close()` was called and every write queued before it has finished (or failed). */
  readonly closed: Promise<void>;

  readonly #db: Db;
  readonly #durability: IdbDurability;
  readonly #docs: Map<string, MirrorDoc>;
  #queue: Op[] = [];
  #writing: Promise<void> | null = null;
  #failure: Error | null = null;
  #closedFlag = false;
  #resolveClosed!: () => void;

  /** @internal Use {@link openIndexedDbStore}. */
  constructor(name: string, db: Db, docs: Map<string, MirrorDoc>, durability: IdbDurability) {
    this.name = name;
    this.#db = db;
    this.#docs = docs;
    this.#durability = durability;
    this.closed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));
    // Another page deletes or upgrades the database: let it, and fail our next write clearly.
    db.addEventListener('versionchange', () => {
      this.#fail(new StoreUnavailableError(name, 'another page deleted or upgraded the IndexedDB database'));
      db.close();
    });
  }

  load(docId: string): StoredDoc {
    const doc = this.#doc(docId, false);
    return {
      snapshot: doc?.snapshot?.slice() ?? null,
      updates: doc?.log.map((e) => e.update.slice()) ?? [],
      lastSeq: doc?.lastSeq ?? 0,
    };
  }

  append(docId: string, updates: readonly Uint8Array[]): number {
    this.#assertWritable();
    for (const update of updates) if (!isBytes(update)) throw new InvalidArgumentError('append: every update must be a Uint8Array');
    if (updates.length === 0) return this.#doc(docId, false)?.lastSeq ?? 0;
    const doc = this.#doc(docId, true)!;
    const entries: Entry[] = updates.map((update) => ({ seq: ++doc.lastSeq, update: update.slice(), diskSeq: undefined, row: undefined }));
    doc.log.push(...entries);
    this.#enqueue({ kind: 'append', docId, entries });
    return doc.lastSeq;
  }

  compact(docId: string, snapshot: Uint8Array, throughSeq: number): void {
    this.#assertWritable();
    if (!isBytes(snapshot)) throw new InvalidArgumentError('compact: snapshot must be a Uint8Array');
    if (!Number.isInteger(throughSeq) || throughSeq < 0) {
      throw new InvalidArgumentError(`compact: throughSeq must be a non-negative integer, got ${String(throughSeq)}`);
    }
    const known = this.#doc(docId, false);
    if (throughSeq > (known?.lastSeq ?? 0)) {
      throw new InvalidArgumentError(`compact: throughSeq ${throughSeq} is past the last sequence number ${known?.lastSeq ?? 0}`);
    }
    const doc = this.#doc(docId, true)!;
    const copy = snapshot.slice();
    const drop = doc.log.filter((e) => e.seq <= throughSeq);
    doc.log = doc.log.filter((e) => e.seq > throughSeq);
    doc.snapshot = copy;
    this.#enqueue({ kind: 'compact', docId, snapshot: copy, drop });
  }

  stats(docId: string): StoreStats {
    const doc = this.#doc(docId, false);
    let updateBytes = 0;
    for (const e of doc?.log ?? []) updateBytes += e.update.length;
    return {
      updates: doc?.log.length ?? 0,
      updateBytes,
      snapshotBytes: doc?.snapshot?.length ?? 0,
      lastSeq: doc?.lastSeq ?? 0,
    };
  }

  docIds(): string[] {
    this.#assertOpen();
    return [...this.#docs.keys()];
  }

  /**
   * Resolves once every change made before the call is on disk: the queued transactions have
   * committed, and a `strict` transaction after them has too. Rejects with the error of a write
   * that failed (`ERR_STORE_UNAVAILABLE`: quota, the database deleted by another page, ...), and
   * with `ERR_CLOSED` after `close()`.
   */
  async flush(): Promise<void> {
    this.#assertOpen();
    await this.#drain();
    if (this.#failure) throw this.#failure;
    try {
      const tx = this.#db.transaction('meta', 'readwrite', { durability: 'strict' });
      const format = await tx.store.get('format');
      await tx.store.put({ app: IDB_FORMAT_APP, version: format?.version ?? IDB_FORMAT_VERSION, flushedAt: Date.now() }, 'format');
      await tx.done;
    } catch (error) {
      throw this.#fail(new StoreUnavailableError(this.name, `flush failed: ${describe(error)}`, { cause: error }));
    }
  }

  /**
   * Stops taking calls (later ones throw `ERR_CLOSED`); writes already queued still go out, and
   * {@link closed} resolves when they are done, after which the IndexedDB connection is closed.
   * Idempotent.
   */
  close(): void {
    if (this.#closedFlag) return;
    this.#closedFlag = true;
    void this.#drain().then(() => {
      this.#db.close();
      this.#resolveClosed();
    });
  }

  // ---- write-behind -------------------------------------------------------------------------

  #enqueue(op: Op): void {
    this.#queue.push(op);
    this.#writing ??= this.#writeLoop();
  }

  /** Resolves when the queue is empty and no transaction is in flight. */
  async #drain(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#failure) {
        const batch = this.#queue;
        this.#queue = [];
        try {
          await this.#write(batch);
        } catch (error) {
          this.#fail(new StoreUnavailableError(this.name, `write failed: ${describe(error)}`, { cause: error }));
        }
      }
    } finally {
      this.#queue = [];
      this.#writing = null;
    }
  }

  /** Writes one batch of operations in one readwrite transaction, in order. */
  async #write(batch: Op[]): Promise<void> {
    const tx: WriteTx = this.#db.transaction(['docs', 'snapshots', 'updates'], 'readwrite', { durability: this.#durability });
    const records = new Map<string, { lastSeq: number }>();
    const record = async (docId: string): Promise<{ lastSeq: number }> => {
      let rec = records.get(docId);
      if (!rec) {
        rec = (await tx.objectStore('docs').get(docId)) ?? { lastSeq: 0 };
        records.set(docId, rec);
      }
      return rec;
    };
    for (const op of coalesce(batch)) {
      const rec = await record(op.docId);
      if (op.kind === 'append') {
        // Numbered here, inside the transaction: another tab's appends can never share a key.
        const row: Row = { key: rec.lastSeq + 1, entries: op.entries };
        for (const entry of op.entries) {
          entry.diskSeq = ++rec.lastSeq;
          entry.row = row;
        }
        void tx.objectStore('updates').put({ first: row.key, packed: pack(op.entries.map((e) => e.update)) }, [op.docId, row.key]);
      } else {
        await this.#writeCompaction(tx, op);
      }
    }
    for (const [docId, rec] of records) void tx.objectStore('docs').put(rec, docId);
    await tx.done;
  }

  async #writeCompaction(tx: WriteTx, op: Extract<Op, { kind: 'compact' }>): Promise<void> {
    const doc = this.#docs.get(op.docId)!;
    const snapshots = tx.objectStore('snapshots');
    const current = await snapshots.get(op.docId);
    let bytes = op.snapshot;
    // Another handle compacted since we last read the snapshot: its snapshot may hold updates we
    // never saw (their log rows are gone). Keep both; two snapshots merge in linear time.
    const merge = current !== undefined && current.gen !== doc.gen;
    if (merge) bytes = Y.mergeUpdates([current.bytes, op.snapshot]);
    const gen = (current?.gen ?? 0) + 1;
    void snapshots.put({ gen, bytes }, op.docId);
    // A merged snapshot holds what the caller's document may lack, so it is never "ours" again:
    // every later compaction of this handle merges with what is on disk (MERGE_ALWAYS).
    doc.gen = merge || doc.gen === MERGE_ALWAYS ? MERGE_ALWAYS : gen;
    // Rows this handle knows: drop them, or (a row only partly compacted) rewrite what is left.
    const updates = tx.objectStore('updates');
    const dropped = new Set(op.drop);
    const rows = new Set<Row>();
    for (const entry of op.drop) if (entry.row) rows.add(entry.row);
    for (const row of rows) {
      row.entries = row.entries.filter((e) => !dropped.has(e));
      if (row.entries.length === 0) void updates.delete([op.docId, row.key]);
      else void updates.put({ first: row.entries[0]!.diskSeq!, packed: pack(row.entries.map((e) => e.update)) }, [op.docId, row.key]);
    }
  }

  // ---- helpers ------------------------------------------------------------------------------

  #fail(error: Error): Error {
    this.#failure ??= error;
    return this.#failure;
  }

  #doc(docId: string, create: boolean): MirrorDoc | undefined {
    this.#assertOpen();
    let doc = this.#docs.get(docId);
    if (!doc && create) this.#docs.set(docId, (doc = { snapshot: null, gen: 0, log: [], lastSeq: 0 }));
    return doc;
  }

  #assertOpen(): void {
    if (this.#closedFlag) throw new ClosedError('store');
  }

  #assertWritable(): void {
    this.#assertOpen();
    if (this.#failure) throw this.#failure;
  }
}

/** Adjacent appends to one document become one (one row on disk). */
function coalesce(batch: Op[]): Op[] {
  const out: Op[] = [];
  for (const op of batch) {
    const last = out[out.length - 1];
    if (op.kind === 'append' && last?.kind === 'append' && last.docId === op.docId) out[out.length - 1] = { ...last, entries: [...last.entries, ...op.entries] };
    else out.push(op);
  }
  return out;
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * Opens (or creates) the store `name` in IndexedDB, database `rhizome:<name>`, and reads it
 * into memory. An existing database that is not a Rhizome store, or is damaged, is refused
 * with `ERR_STORE_CORRUPT` (`ERR_STORE_VERSION` when a newer Rhizome wrote it) and left exactly
 * as it was: it is opened without a version change and only read. No IndexedDB at all, or a
 * database another page holds in an upgrade, gives `ERR_STORE_UNAVAILABLE`.
 *
 * @example
 * ```ts
 * import { openIndexedDbStore } from '@rhizome/store-browser';
 * const store = await openIndexedDbStore('notes');
 * ```
 */
export async function openIndexedDbStore(name: string, options: IndexedDbStoreOptions = {}): Promise<IndexedDbStore> {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('store name must be a non-empty string');
  const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!factory) throw new StoreUnavailableError(name, 'this host has no IndexedDB');
  const durability = options.durability ?? 'relaxed';
  const dbName = IDB_NAME_PREFIX + name;
  let db: Db;
  try {
    // No version: an existing database opens as it is (no upgrade, nothing written); only a
    // missing one is created, in the upgrade below.
    db = await openDB<StoreSchema>(dbName, undefined, {
      upgrade(database, oldVersion, _newVersion, tx) {
        if (oldVersion !== 0) return;
        for (const store of STORES) database.createObjectStore(store);
        void tx.objectStore('meta').put({ app: IDB_FORMAT_APP, version: IDB_FORMAT_VERSION }, 'format');
      },
      blocked() {
        /* an open of ours never changes the version, so it is never blocked */
      },
    });
  } catch (error) {
    throw new StoreUnavailableError(name, `IndexedDB open failed: ${describe(error)}`, { cause: error });
  }
  try {
    const docs = await readAll(db, name);
    return new IndexedDbStore(name, db, docs, durability);
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Reads and checks the whole store; throws without writing anything. */
async function readAll(db: Db, name: string): Promise<Map<string, MirrorDoc>> {
  const where = `IndexedDB '${IDB_NAME_PREFIX}${name}'`;
  for (const store of STORES) {
    if (!db.objectStoreNames.contains(store)) throw new StoreCorruptError(where, 'an IndexedDB database that is not a Rhizome store');
  }
  let format: StoreSchema['meta']['value'] | undefined;
  let docKeys: string[];
  let docRecs: Array<StoreSchema['docs']['value']>;
  let snapKeys: string[];
  let snapRecs: Array<StoreSchema['snapshots']['value']>;
  let updateKeys: Array<[string, number]>;
  let updateRecs: Array<StoreSchema['updates']['value']>;
  try {
    const tx = db.transaction(STORES, 'readonly');
    [format, docKeys, docRecs, snapKeys, snapRecs, updateKeys, updateRecs] = await Promise.all([
      tx.objectStore('meta').get('format'),
      tx.objectStore('docs').getAllKeys(),
      tx.objectStore('docs').getAll(),
      tx.objectStore('snapshots').getAllKeys(),
      tx.objectStore('snapshots').getAll(),
      tx.objectStore('updates').getAllKeys(),
      tx.objectStore('updates').getAll(),
    ]);
    await tx.done;
  } catch (error) {
    throw new StoreCorruptError(where, `unreadable (${describe(error)})`, { cause: error });
  }
  if (!format || format.app !== IDB_FORMAT_APP || !Number.isInteger(format.version)) {
    throw new StoreCorruptError(where, 'an IndexedDB database that is not a Rhizome store (no Rhizome format record)');
  }
  if (format.version > IDB_FORMAT_VERSION) throw new StoreVersionError(where, format.version, IDB_FORMAT_VERSION);
  const docs = new Map<string, MirrorDoc>();
  docKeys.forEach((docId, i) => {
    const rec = docRecs[i];
    if (typeof docId !== 'string' || !rec || !Number.isInteger(rec.lastSeq) || rec.lastSeq < 0) {
      throw new StoreCorruptError(where, `bad document record ${JSON.stringify(docId)}`);
    }
    docs.set(docId, { snapshot: null, gen: 0, log: [], lastSeq: rec.lastSeq });
  });
  snapKeys.forEach((docId, i) => {
    const rec = snapRecs[i];
    const doc = docs.get(docId);
    if (!doc || !rec || !isBytes(rec.bytes) || !Number.isInteger(rec.gen)) {
      throw new StoreCorruptError(where, `bad snapshot record ${JSON.stringify(docId)}`);
    }
    doc.snapshot = rec.bytes;
    doc.gen = rec.gen;
  });
  // Keys come sorted by [docId, key]: each document's rows, and so its log, are in order.
  updateKeys.forEach((key, i) => {
    const rec = updateRecs[i];
    const doc = Array.isArray(key) ? docs.get(key[0]) : undefined;
    const list = rec && typeof rec === 'object' && isBytes(rec.packed) ? unpack(rec.packed) : null;
    if (!doc || !rec || !list || list.length === 0 || !Number.isInteger(rec.first) || !Number.isInteger(key[1]) || rec.first + list.length - 1 > doc.lastSeq) {
      throw new StoreCorruptError(where, `bad update record ${JSON.stringify(key)}`);
    }
    const row: Row = { key: key[1], entries: [] };
    list.forEach((update, j) => {
      const entry: Entry = { seq: rec.first + j, update, diskSeq: rec.first + j, row };
      row.entries.push(entry);
      doc.log.push(entry);
    });
  });
  return docs;
}
