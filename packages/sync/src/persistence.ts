import * as Y from 'yjs';
import { ClosedError, InvalidArgumentError, StoreCorruptError, type DocStore, type StoredDoc, type StoreStats } from '@rhizome/core';

/**
 * Transaction origin of the updates {@link DocPersistence.load} applies from the store. Updates
 * with this origin are not written back; other layers may use it to tell "restored from disk"
 * apart from local and remote changes.
 */
export const PERSISTENCE_ORIGIN: unique symbol = Symbol('rhizome.persistence');

/** Default of {@link PersistenceOptions.compactAfterUpdates}. */
export const DEFAULT_COMPACT_AFTER_UPDATES = 10_000;
/** Default of {@link PersistenceOptions.compactAfterBytes}: 8 MiB. */
export const DEFAULT_COMPACT_AFTER_BYTES = 8 * 1024 * 1024;

/** Options of {@link DocPersistence}. */
export interface PersistenceOptions {
  /**
   * Compact automatically once the log after the snapshot holds this many updates
   * (default {@link DEFAULT_COMPACT_AFTER_UPDATES}; `Infinity` disables the count trigger).
   */
  compactAfterUpdates?: number;
  /**
   * Compact automatically once the log after the snapshot holds this many bytes
   * (default {@link DEFAULT_COMPACT_AFTER_BYTES}; `Infinity` disables the byte trigger).
   */
  compactAfterBytes?: number;
  /**
   * Called when a write scheduled in the background (the end-of-tick flush, an automatic
   * compaction) fails. Without it the error is kept and thrown by the next `flush()`,
   * `compact()` or `close()`. Updates whose write failed stay queued and are retried by the
   * next flush.
   */
  onError?: (error: unknown) => void;
  /**
   * Schedules the automatic compaction on a later macrotask; returns a cancel function. Default:
   * `setImmediate` where the host has it, else `setTimeout(fn, 0)`; `openDatabase` passes its
   * platform's scheduler (`setImmediate` in Node, a `MessageChannel` in browsers).
   */
  macrotask?: (fn: () => void) => () => void;
}

/** The default scheduler: `setImmediate` where the host has one (Node), else `setTimeout(fn, 0)`. */
function defaultMacrotask(fn: () => void): () => void {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown; clearImmediate?: (handle: unknown) => void };
  if (typeof g.setImmediate === 'function' && typeof g.clearImmediate === 'function') {
    const handle = g.setImmediate(fn);
    return () => g.clearImmediate!(handle);
  }
  const timer = setTimeout(fn, 0);
  return () => clearTimeout(timer);
}

/** What {@link DocPersistence.load} restored. */
export interface LoadResult {
  /** Updates applied from the log (not counting the snapshot). */
  updates: number;
  /** Bytes applied: snapshot plus log. */
  bytes: number;
}

function positiveLimit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new InvalidArgumentError(`${name} must be a positive number (or Infinity), got ${String(value)}`);
  }
  return value;
}

/**
 * Binds a `Y.Doc` to one document of a {@link DocStore}.
 *
 * - {@link load} applies the stored snapshot and log to the doc.
 * - From construction on (including the state the doc already holds then), every update of the doc (local or remote, any origin except
 *   {@link PERSISTENCE_ORIGIN}) is queued and written with one `store.append` (one SQLite
 *   transaction) in a microtask at the end of the current tick: a change made in a
 *   synchronous call is in the store before the next macrotask runs. {@link flush} writes the
 *   queue at once.
 * - When the log passes `compactAfterUpdates` or `compactAfterBytes`, a compaction is scheduled
 *   on the next macrotask (off the write path; at most one pending): the snapshot becomes
 *   `Y.encodeStateAsUpdate(doc)` (the live doc holds every stored update) and the log is cut
 *   in one transaction.
 *
 * `close()` flushes and stops listening; it does not close the store (several documents may
 * share one store).
 *
 * @example
 * ```ts
 * const doc = new Y.Doc();
 * const persistence = new DocPersistence(store, 'my-db', doc);
 * persistence.load();
 * doc.getMap('nodes').set('a', 1); // in SQLite before the next macrotask
 * persistence.close();
 * ```
 */
export class DocPersistence {
  readonly store: DocStore;
  readonly docId: string;
  readonly doc: Y.Doc;

  readonly #compactAfterUpdates: number;
  readonly #compactAfterBytes: number;
  readonly #onError: ((error: unknown) => void) | undefined;
  #queue: Uint8Array[] = [];
  #flushScheduled = false;
  readonly #macrotask: (fn: () => void) => () => void;
  /** Cancels the scheduled compaction, when one is scheduled. */
  #compactTimer: (() => void) | undefined;
  /** Log size after the snapshot, tracked so that the thresholds need no query per flush. */
  #logUpdates = 0;
  #logBytes = 0;
  #lastSeq = 0;
  /**
   * Set when the store holds updates this doc may lack: another handle of the file (another
   * process) appended between two of our appends. The next compaction reads them in first.
   */
  #foreign = false;
  #pendingError: unknown = undefined;
  #hasPendingError = false;
  #closed = false;
  #compactions = 0;

  readonly #onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === PERSISTENCE_ORIGIN || this.#closed) return;
    this.#queue.push(update);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#backgroundFlush);
    }
  };

  readonly #backgroundFlush = (): void => {
    this.#flushScheduled = false;
    if (this.#closed) return;
    try {
      this.#flush();
    } catch (error) {
      this.#report(error);
    }
  };

  constructor(store: DocStore, docId: string, doc: Y.Doc, options: PersistenceOptions = {}) {
    if (typeof docId !== 'string') throw new InvalidArgumentError('docId must be a string');
    this.store = store;
    this.docId = docId;
    this.doc = doc;
    this.#compactAfterUpdates = positiveLimit('compactAfterUpdates', options.compactAfterUpdates, DEFAULT_COMPACT_AFTER_UPDATES);
    this.#compactAfterBytes = positiveLimit('compactAfterBytes', options.compactAfterBytes, DEFAULT_COMPACT_AFTER_BYTES);
    this.#onError = options.onError;
    this.#macrotask = options.macrotask ?? defaultMacrotask;
    const stats = store.stats(docId);
    this.#logUpdates = stats.updates;
    this.#logBytes = stats.updateBytes;
    this.#lastSeq = stats.lastSeq;
    doc.on('update', this.#onUpdate);
    // State the doc had before it was bound would otherwise never reach the store.
    if (doc.store.clients.size > 0) this.#onUpdate(Y.encodeStateAsUpdate(doc), undefined);
  }

  /**
   * Applies the stored snapshot and log to the doc in ONE Yjs transaction with origin
   * {@link PERSISTENCE_ORIGIN} (so observers see one change, and nothing is written back).
   * Call it once, before the doc is shared. Stored bytes that are not a Yjs update throw
   * `StoreCorruptError` (`ERR_STORE_CORRUPT`).
   */
  load(): LoadResult {
    this.#assertOpen();
    const stored = this.#applyStored();
    const snapshotBytes = stored.snapshot?.length ?? 0;
    let bytes = snapshotBytes;
    for (const update of stored.updates) bytes += update.length;
    this.#logUpdates = stored.updates.length;
    this.#logBytes = bytes - snapshotBytes;
    this.#maybeScheduleCompaction();
    return { updates: stored.updates.length, bytes };
  }

  /**
   * Reads the stored snapshot and log and applies them to the doc in one Yjs transaction with
   * origin {@link PERSISTENCE_ORIGIN}; the binding then knows the store through its last
   * sequence number. Bytes that are not a Yjs update throw `StoreCorruptError`.
   */
  #applyStored(): StoredDoc {
    const stored = this.store.load(this.docId);
    let current = 'the snapshot';
    try {
      Y.transact(
        this.doc,
        () => {
          if (stored.snapshot) Y.applyUpdate(this.doc, stored.snapshot, PERSISTENCE_ORIGIN);
          stored.updates.forEach((update, i) => {
            current = `update ${i + 1} of ${stored.updates.length} in the log`;
            Y.applyUpdate(this.doc, update, PERSISTENCE_ORIGIN);
          });
        },
        PERSISTENCE_ORIGIN,
      );
    } catch (error) {
      throw new StoreCorruptError(`document '${this.docId}'`, `${current} is not a valid Yjs update`, { cause: error });
    }
    this.#lastSeq = stored.lastSeq;
    this.#foreign = false;
    return stored;
  }

  /** Writes the queued updates now, in one store transaction. */
  flush(): void {
    this.#throwPendingError();
    if (this.#closed) return;
    this.#flush();
  }

  #flush(): void {
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    const seq = this.store.append(this.docId, batch);
    if (seq !== this.#lastSeq + batch.length) this.#foreign = true;
    this.#lastSeq = seq;
    // Dequeued only once the append succeeded: a failed write is retried by the next flush.
    // (append is synchronous, so no update can have been queued meanwhile.)
    this.#queue = [];
    this.#logUpdates += batch.length;
    for (const update of batch) this.#logBytes += update.length;
    this.#maybeScheduleCompaction();
  }

  #maybeScheduleCompaction(): void {
    if (this.#compactTimer !== undefined || this.#closed) return;
    if (this.#logUpdates < this.#compactAfterUpdates && this.#logBytes < this.#compactAfterBytes) return;
    this.#compactTimer = this.#macrotask(() => {
      this.#compactTimer = undefined;
      if (this.#closed) return;
      try {
        this.#compact();
      } catch (error) {
        this.#report(error);
      }
    });
  }

  /**
   * Replaces the log by a snapshot of the doc: flushes, then
   * `store.compact(docId, Y.encodeStateAsUpdate(doc), lastSeq)` in one transaction. The live
   * doc already holds every stored update, so no log is merged (`Y.mergeUpdates` is quadratic).
   */
  compact(): void {
    this.#throwPendingError();
    this.#assertOpen();
    this.#compact();
  }

  #compact(): void {
    this.#flush();
    // Another process may have appended (or compacted) since this doc last read the store: its
    // updates would be deleted with the log below, yet be missing from the snapshot. Read them in.
    if (this.#foreign || this.store.stats(this.docId).lastSeq !== this.#lastSeq) this.#applyStored();
    const snapshot = Y.encodeStateAsUpdate(this.doc);
    this.store.compact(this.docId, snapshot, this.#lastSeq);
    this.#logUpdates = 0;
    this.#logBytes = 0;
    this.#compactions++;
  }

  /** Compactions this binding has done since it was created. */
  get compactions(): number {
    return this.#compactions;
  }

  /** Updates in the stored log since the last snapshot (as this binding knows it). */
  get logUpdates(): number {
    return this.#logUpdates;
  }

  /** Sizes of the stored state (after flushing the queue). */
  stats(): StoreStats {
    this.#throwPendingError();
    if (!this.#closed) this.#flush();
    return this.store.stats(this.docId);
  }

  /** Updates waiting for the end-of-tick flush. */
  get pendingUpdates(): number {
    return this.#queue.length;
  }

  /** Flushes, cancels a scheduled compaction and stops listening to the doc. Idempotent; the store stays open. */
  close(): void {
    if (this.#closed) return;
    try {
      this.#flush();
    } finally {
      this.#closed = true;
      this.doc.off('update', this.#onUpdate);
      this.#compactTimer?.();
      this.#compactTimer = undefined;
    }
    this.#throwPendingError();
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('persistence');
  }

  #report(error: unknown): void {
    if (this.#onError) {
      this.#onError(error);
      return;
    }
    if (!this.#hasPendingError) {
      this.#hasPendingError = true;
      this.#pendingError = error;
    }
  }

  #throwPendingError(): void {
    if (!this.#hasPendingError) return;
    const error = this.#pendingError;
    this.#hasPendingError = false;
    this.#pendingError = undefined;
    throw error;
  }
}

/** What {@link compactStoredDoc} did. */
export interface CompactResult {
  before: StoreStats;
  after: StoreStats;
}

/**
 * Compacts one stored document without a live doc (for the CLI and maintenance): applies the
 * snapshot and log to a fresh `Y.Doc` inside one transaction, encodes it, and replaces the log
 * through the last sequence number read. Updates appended meanwhile (by another process) stay in
 * the log. Never uses `Y.mergeUpdates`. A log that does not decode throws `ERR_STORE_CORRUPT` and
 * is left as it was.
 */
export function compactStoredDoc(store: DocStore, docId: string): CompactResult {
  const before = store.stats(docId);
  const stored = store.load(docId);
  if (stored.updates.length === 0) return { before, after: before };
  const doc = new Y.Doc();
  try {
    try {
      Y.transact(doc, () => {
        if (stored.snapshot) Y.applyUpdate(doc, stored.snapshot);
        for (const update of stored.updates) Y.applyUpdate(doc, update);
      });
    } catch (error) {
      throw new StoreCorruptError(`document '${docId}'`, 'the stored state is not a valid Yjs update log', { cause: error });
    }
    store.compact(docId, Y.encodeStateAsUpdate(doc), stored.lastSeq);
  } finally {
    doc.destroy();
  }
  return { before, after: store.stats(docId) };
}
