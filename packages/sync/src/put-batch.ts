import type * as Y from 'yjs';
import type { JsonValue } from '@rhizome/core';

/**
 * Most writes one batch holds: the write that fills it applies the batch at once, from inside the
 * call. A Yjs transaction of 100,000 puts costs more per put than 100 of 1,000 (its changed-key
 * sets and its update grow large, and what it allocates lives until it ends): BENCHMARKS.md
 * § Issue 12, Session 5.
 */
export const MAX_BATCH_WRITES = 1000;

/** The write batch of each document that has one (see {@link applyQueuedWrites}). */
const batches = new WeakMap<Y.Doc, WriteBatch>();

/**
 * The `'beforeTransaction'` listener of every document with queued writes (one function for all:
 * Yjs passes the document): a LOCAL transaction applies the queue first (see {@link WriteBatch}).
 */
function beforeTransaction(tr: Y.Transaction, doc: Y.Doc): void {
  if (tr.local) batches.get(doc)?.flush();
}

/**
 * Applies the writes queued for `doc` now, unless a transaction is open on it. Code that is about
 * to apply a REMOTE update (a peer session, the mailbox) calls this first: a put queued earlier in
 * the task then stays ahead of the update, as if it had been applied in the call, so it is
 * concurrent with the peer's write rather than made on top of it (and it becomes its own local
 * update, sent to every peer; inside the remote transaction it would carry the peer as origin and
 * never go back to it).
 */
export function applyQueuedWrites(doc: Y.Doc): void {
  if (doc._transaction === null) batches.get(doc)?.flush();
}

/**
 * One write waiting in a {@link WriteBatch}: a put of validated, copied fields, or a delete
 * (`data === null`).
 */
export interface PendingWrite {
  readonly id: string;
  readonly data: Record<string, JsonValue> | null;
}

/** Where a {@link WriteBatch} hands its writes. */
export interface WriteBatchSink {
  /** Applies the queued writes, in order, as one transaction. */
  applyBatch(writes: PendingWrite[]): void;
  /** A batch failed to apply (reported, not thrown at the writer). */
  reportError(error: unknown): void;
}

/** The queue of a batch with nothing queued: one shared empty list (frozen: pushing to it would throw). */
const NO_WRITES: PendingWrite[] = Object.freeze([]) as unknown as PendingWrite[];

/**
 * Automatic batching of the node API's writes (ARCHITECTURE § Write batching).
 *
 * A `put` or `delete` made while no Yjs transaction is open on the document is validated at once
 * (errors are thrown by the call) and queued here; the queue is applied to the document as ONE
 * Yjs transaction in a microtask at the end of the current task (or at once when it holds
 * {@link MAX_BATCH_WRITES}), so a loop of puts costs one transaction, one update, one SQLite row
 * and one message per peer per task (per 1,000 writes) instead of one each. Anything
 * that reads the database (`get`, `list`, `size`, `db.doc`, `transact`, `flush`, ...) applies the
 * queue first, so reads see the caller's own writes, and writes keep their order with every other
 * change. The durability contract holds: the batch's update is written to SQLite by the
 * persistence flush queued from that same microtask, before the next macrotask.
 *
 * Writes made inside a Yjs transaction (`db.transact`, `db.doc.transact`, an observer running in
 * one) bypass the queue and join that transaction, as before.
 */
export class WriteBatch {
  readonly #doc: Y.Doc;
  /** Applies a batch and reports its failure (the database's host: methods, not closures per database). */
  readonly #sink: WriteBatchSink;
  /** {@link NO_WRITES} while none is queued (an idle database holds no list). */
  #writes: PendingWrite[] = NO_WRITES;
  #scheduled = false;

  /**
   * @param doc The document (used to tell whether a transaction is open).
   * @param sink `applyBatch` applies the writes, in order, as one Yjs transaction; `reportError`
   *   receives an error thrown while applying (an observer of the app that throws): the writes
   *   are in the document by then; nobody is left to throw to.
   */
  constructor(doc: Y.Doc, sink: WriteBatchSink) {
    this.#doc = doc;
    this.#sink = sink;
    batches.set(doc, this);
  }


  /** True when a write now should be queued: no Yjs transaction is open on the document. */
  get accepting(): boolean {
    return this.#doc._transaction === null;
  }

  /** Writes queued and not applied yet. */
  get pending(): number {
    return this.#writes.length;
  }

  /** Queues a write (already validated); the first one of a task schedules the microtask. */
  add(write: PendingWrite): void {
    // A local transaction opened on the document directly (a Yjs type held by the app, an editor
    // binding) takes the queued writes first, so they stay ahead of its own writes (a remote one
    // must not carry them: see applyQueuedWrites). Listened to only while writes are queued, from
    // the first write of a batch to its flush: an idle document holds no 'beforeTransaction'
    // listener, so lib0 holds no Set for the event (ARCHITECTURE § Memory of an idle replica).
    if (this.#writes === NO_WRITES) {
      this.#doc.on('beforeTransaction', beforeTransaction);
      this.#writes = [];
    }
    if (this.#writes.push(write) >= MAX_BATCH_WRITES) {
      this.flush();
      return;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#onMicrotask());
    }
  }

  /**
   * Applies the queued writes now: one Yjs transaction, or inside the one that is open. A no-op
   * when none is queued.
   */
  flush(): void {
    // With a transaction open (the app's: db.transact, doc.transact, an editor binding; Rhizome's
    // own transactions never run app code) the writes join it, so they stay ahead of its writes.
    if (this.#writes.length === 0) return;
    const writes = this.#writes;
    // A write made by an observer while these are applied starts the next batch.
    this.#writes = NO_WRITES;
    this.#doc.off('beforeTransaction', beforeTransaction);
    try {
      this.#sink.applyBatch(writes);
    } catch (error) {
      this.#sink.reportError(error);
    }
  }

  #onMicrotask(): void {
    this.#scheduled = false;
    this.flush();
  }
}
