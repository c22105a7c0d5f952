import { ClosedError, InvalidArgumentError, StoreConflictError } from './errors.js';

/** What a store holds for one document: the latest snapshot and the updates appended after it. */
export interface StoredDoc {
  /** A Yjs update encoding the whole state up to the compaction, or `null` if never compacted. */
  snapshot: Uint8Array | null;
  /** Yjs updates appended after the snapshot, oldest first. */
  updates: Uint8Array[];
  /** Sequence number of the newest update (0 when there is none). */
  lastSeq: number;
}

/** Sizes of one document's persisted state. */
export interface StoreStats {
  /** Updates in the log after the snapshot. */
  updates: number;
  /** Total bytes of those updates. */
  updateBytes: number;
  /** Bytes of the snapshot (0 when there is none). */
  snapshotBytes: number;
  /** Sequence number of the newest update. */
  lastSeq: number;
}

/**
 * Persistence of Yjs documents as an append-only update log plus a snapshot, keyed by document
 * (database) id; one store may hold many documents. Calls are synchronous: a write that
 * returned is durable (for a file-backed store, in the database file's WAL), except in stores
 * that write behind and say so with {@link DocStore.flush}.
 *
 * Implementations: `SqliteStore` (@rhizome/store-sqlite), `IndexedDbStore`
 * (@rhizome/store-browser) and {@link MemoryStore}; all pass
 * `runStoreContract` from `@rhizome/core/testing`.
 */
export interface DocStore {
  /** The snapshot and the log after it; an unknown id gives `{ snapshot: null, updates: [], lastSeq: 0 }`. */
  load(docId: string): StoredDoc;
  /** Appends updates in one transaction, in order; returns the sequence number of the last. */
  append(docId: string, updates: readonly Uint8Array[]): number;
  /**
   * Replaces every update with sequence number `<= throughSeq` by `snapshot` (which must
   * encode them all, and the previous snapshot), in one transaction. Updates appended after
   * `throughSeq` stay in the log. Throws `StoreConflictError` (`ERR_STORE_CONFLICT`) and writes
   * nothing when the stored snapshot already covers more than `throughSeq` (another handle of
   * the same file compacted meanwhile): re-read and compute the snapshot again.
   */
  compact(docId: string, snapshot: Uint8Array, throughSeq: number): void;
  /** Sizes of the persisted state of `docId`. */
  stats(docId: string): StoreStats;
  /**
   * Optional, for stores another process can write too (a file): what changed after `afterSeq`.
   * `updates` are the log entries with a sequence number above `afterSeq`; `snapshot` is the
   * stored snapshot when it covers more than `afterSeq` (another handle compacted past it), else
   * `null`; both are read in one transaction. Without it, readers fall back to `load`.
   */
  loadSince?(docId: string, afterSeq: number): StoredDoc;
  /**
   * Optional: a number that changes whenever another handle (another process, another
   * connection) commits to the store, and not for this handle's own writes (SQLite's
   * `PRAGMA data_version`). Cheap enough to poll a few times a second.
   */
  dataVersion?(): number;
  /** Ids of the documents this store holds. */
  docIds(): string[];
  /** Releases the store; later calls throw `ERR_CLOSED`. Idempotent. */
  close(): void;
  /**
   * For stores that write behind (a browser's IndexedDB cannot write synchronously): resolves
   * once every write that returned before the call is on disk. Stores whose writes are durable
   * when they return (SQLite, memory) leave it out. `Database.flush()` and `close()` await it.
   */
  flush?(): Promise<void>;
  /**
   * Optional, for stores with work of their own running in the background (a SQLite file's WAL
   * checkpoint on the checkpoint thread): resolves once none is running, so that `close()` right
   * after need not wait for it. `Database.close()` awaits it before closing a store it owns.
   */
  settle?(): Promise<void>;
}

interface MemoryDoc {
  snapshot: Uint8Array | null;
  log: Array<{ seq: number; update: Uint8Array }>;
  lastSeq: number;
  snapshotSeq: number;
}

/**
 * A {@link DocStore} in process memory: for `':memory:'` databases, tests and browsers
 * without a file system. Contents are lost when the process ends.
 */
export class MemoryStore implements DocStore {
  /**
   * The documents by id. A database's store usually holds one document: it is kept in
   * `#onlyId`/`#only` and the map is made for the second one (an empty `Map` is ~180 B of heap,
   * and an idle process may hold thousands of in-memory replicas).
   */
  #docs: Map<string, MemoryDoc> | null = null;
  #onlyId: string | null = null;
  #only: MemoryDoc | null = null;
  #closed = false;

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('store');
  }

  /** The entry of `docId`, created only when `create` (writes); reads of unknown ids leave no trace. */
  #doc(docId: string, create: boolean): MemoryDoc | undefined {
    this.#assertOpen();
    if (this.#onlyId === docId) return this.#only!;
    let doc = this.#docs?.get(docId);
    if (!doc && create) {
      doc = { snapshot: null, log: [], lastSeq: 0, snapshotSeq: 0 };
      if (this.#onlyId === null) {
        this.#onlyId = docId;
        this.#only = doc;
      } else (this.#docs ??= new Map()).set(docId, doc);
    }
    return doc;
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
    const doc = this.#doc(docId, true)!;
    for (const update of updates) doc.log.push({ seq: ++doc.lastSeq, update: update.slice() });
    return doc.lastSeq;
  }

  compact(docId: string, snapshot: Uint8Array, throughSeq: number): void {
    if (!(snapshot instanceof Uint8Array)) throw new InvalidArgumentError('compact: snapshot must be a Uint8Array');
    if (!Number.isInteger(throughSeq) || throughSeq < 0) {
      throw new InvalidArgumentError(`compact: throughSeq must be a non-negative integer, got ${String(throughSeq)}`);
    }
    const doc = this.#doc(docId, true)!;
    if (throughSeq > doc.lastSeq) {
      throw new InvalidArgumentError(`compact: throughSeq ${throughSeq} is past the last sequence number ${doc.lastSeq}`);
    }
    if (doc.snapshotSeq > throughSeq) {
      throw new StoreConflictError('memory', `compact of '${docId}' through ${throughSeq} refused: a snapshot through ${doc.snapshotSeq} is stored`);
    }
    doc.snapshot = snapshot.slice();
    doc.snapshotSeq = throughSeq;
    doc.log = doc.log.filter((e) => e.seq > throughSeq);
  }

  stats(docId: string): StoreStats {
    const doc = this.#doc(docId, false);
    return {
      updates: doc?.log.length ?? 0,
      updateBytes: doc?.log.reduce((n, e) => n + e.update.length, 0) ?? 0,
      snapshotBytes: doc?.snapshot?.length ?? 0,
      lastSeq: doc?.lastSeq ?? 0,
    };
  }

  docIds(): string[] {
    this.#assertOpen();
    return [...(this.#onlyId === null ? [] : [this.#onlyId]), ...(this.#docs?.keys() ?? [])];
  }

  close(): void {
    this.#closed = true;
  }
}
