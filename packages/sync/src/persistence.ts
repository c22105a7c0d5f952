import * as Y from 'yjs';
import * as codec from './codec.js';
import { integrateUpdate } from './integrate.js';
import { REENCODE_SKIP_BYTES } from './apply.js';
import { offDocUpdate, onDocUpdate } from './doc-updates.js';
import {
  ClosedError,
  InvalidArgumentError,
  StoreCorruptError,
  type DocStore,
  type StoredDoc,
  type StoreStats,
} from '@rhizome/core';

/**
 * Transaction origin of the updates {@link DocPersistence.load} applies from the store. Updates
 * with this origin are not written back; other layers may use it to tell "restored from disk"
 * apart from local and remote changes.
 */
export const PERSISTENCE_ORIGIN: unique symbol = Symbol('rhizome.persistence');

/**
 * Transaction origin of updates another handle of the store (another process sharing the file)
 * appended, which this binding read in after load (the store watch, or before a compaction).
 * They are not written back (they are stored already), but unlike {@link PERSISTENCE_ORIGIN}
 * they are news: the database sends them to its peers and publishes node events for them.
 */
export const EXTERNAL_ORIGIN: unique symbol = Symbol('rhizome.persistence.external');

/** Default of {@link PersistenceOptions.compactAfterUpdates}. */
export const DEFAULT_COMPACT_AFTER_UPDATES = 40_000;
/** Default of {@link PersistenceOptions.compactAfterBytes}: 8 MiB. */
export const DEFAULT_COMPACT_AFTER_BYTES = 8 * 1024 * 1024;
/** Default of {@link PersistenceOptions.compactIdleMs}. */
export const DEFAULT_COMPACT_IDLE_MS = 1000;
/**
 * The idle compaction's share of the thresholds: once the log holds a quarter of
 * `compactAfterUpdates` or `compactAfterBytes`, it is compacted when the doc next goes idle.
 */
const IDLE_SHARE = 4;
/**
 * Snapshots up to this size are compacted by the thresholds alone. A larger one also waits until
 * the log holds a quarter of its bytes (a sixteenth for the idle compaction): every compaction
 * encodes and writes the whole document, so a fixed count would cost more per update as the
 * document grows (O(document) per update); scaled with the snapshot it is O(1) bytes per byte
 * logged, and reopening reads at most a quarter more than the snapshot.
 */
const SCALE_ABOVE_BYTES = 4 * 1024 * 1024;
/** Hard trigger: the log must hold 1/HARD_RATIO of a snapshot above {@link SCALE_ABOVE_BYTES}. */
const HARD_RATIO = 4;
/** Idle trigger: the log must hold 1/IDLE_RATIO of a snapshot above {@link SCALE_ABOVE_BYTES}. */
const IDLE_RATIO = 16;
/** Default of {@link PersistenceOptions.watchIntervalMs}. */
export const DEFAULT_WATCH_INTERVAL_MS = 250;
/** First delay before a failed write is retried; it doubles up to {@link RETRY_MAX_MS}. */
export const RETRY_MIN_MS = 100;
/** Longest delay between two retries of a failed write. */
export const RETRY_MAX_MS = 5000;
/** How many times a compaction re-reads the store after losing a race with another handle. */
const COMPACT_ATTEMPTS = 3;

/** Options of {@link DocPersistence}. */
export interface PersistenceOptions {
  /**
   * Compact automatically, on the next macrotask, once the log after the snapshot holds this many
   * updates (default {@link DEFAULT_COMPACT_AFTER_UPDATES}; `Infinity` disables the count
   * trigger): the bound of the log under writes that never pause. Once it holds a quarter of
   * this, it is compacted as soon as no write came for `compactIdleMs`. Above a 4 MiB snapshot
   * both also wait for the log's bytes to reach a share of the snapshot's (a quarter; a
   * sixteenth when idle), so that compacting a large document costs O(1) per byte logged.
   */
  compactAfterUpdates?: number;
  /**
   * Compact automatically once the log after the snapshot holds this many bytes
   * (default {@link DEFAULT_COMPACT_AFTER_BYTES}; `Infinity` disables the byte trigger); a
   * quarter of it when idle, as for {@link compactAfterUpdates}.
   */
  compactAfterBytes?: number;
  /**
   * How long (ms) the doc must see no write before the idle compaction runs (once the log holds a
   * quarter of a threshold). Default {@link DEFAULT_COMPACT_IDLE_MS}; `Infinity` turns the idle
   * compaction off (only the thresholds compact). The check is one timer per period while a
   * compaction is due, never a timer per write.
   */
  compactIdleMs?: number;
  /**
   * How often to check whether another process appended to the store (stores with
   * `dataVersion`, i.e. files; one `PRAGMA data_version` per check), in ms. Foreign updates are
   * applied to the doc with {@link EXTERNAL_ORIGIN}. Default {@link DEFAULT_WATCH_INTERVAL_MS};
   * `0` turns the watch off (foreign updates are then read only before a compaction).
   */
  watchIntervalMs?: number;
  /**
   * Called when a write scheduled in the background (the end-of-tick flush, a retry, an automatic
   * compaction, the store watch) fails. Without it the error is kept and thrown by the next
   * `flush()`, `compact()` or `close()`. Either way {@link DocPersistence.status} shows it.
   * Updates whose write failed stay queued and are retried (backing off from
   * {@link RETRY_MIN_MS} to {@link RETRY_MAX_MS}) and by every flush. A function, or an object
   * whose `reportError` is called (a database passes its host: no closure per database).
   */
  onError?: ((error: unknown) => void) | { reportError(error: unknown): void };
  /**
   * Never write: the store was opened read-only. Updates of the doc (from peers) stay in memory.
   */
  readOnly?: boolean;
  /**
   * Schedules the automatic compaction on a later macrotask; returns a cancel function. Default:
   * `setImmediate` where the host has it, else `setTimeout(fn, 0)`; `openDatabase` passes its
   * platform's scheduler (`setImmediate` in Node, a `MessageChannel` in browsers).
   */
  macrotask?: (fn: () => void) => () => void;
  /**
   * @internal False: the owner already listens to the doc's updates and hands each to
   * {@link DocPersistence.noteUpdate} (one listener per database, not two) until it calls
   * {@link DocPersistence.listen}. Default true: the binding listens itself.
   */
  listen?: boolean;
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

/** `unref()` a timer where the host has it (Node): the watch and retries never keep a process alive. */
function unref(timer: unknown): void {
  (timer as { unref?: () => void } | null)?.unref?.();
}

/** Whether the binding's writes currently reach the store. */
export type StorageHealth = 'ok' | 'failing' | 'read-only' | 'closed';

/** What {@link DocPersistence.status} reports (also `db.stats().storage`). */
export interface StorageStatus {
  /**
   * `'ok'`: the last write succeeded; `'failing'`: the last write failed and updates are waiting
   * in memory (see `pendingUpdates`) for a retry; `'read-only'`; `'closed'`.
   */
  health: StorageHealth;
  /** The most recent failed write (or store watch), also after a later success; `undefined` if none. */
  lastError: Error | undefined;
  /** `Date.now()` of {@link lastError}. */
  lastErrorAt: number | undefined;
  /** Updates in memory not yet in the store. */
  pendingUpdates: number;
  /** Writes that failed since the binding was made. */
  failedWrites: number;
  /** Updates another handle of the store appended that this binding read in after load. */
  externalUpdates: number;
  /** Compactions that lost a race with another handle and re-read the store. */
  compactionConflicts: number;
}

function positiveLimit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new InvalidArgumentError(`${name} must be a positive number (or Infinity), got ${String(value)}`);
  }
  return value;
}

function isConflict(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ERR_STORE_CONFLICT';
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** What {@link DocPersistence.load} restored. */
export interface LoadResult {
  /** Updates applied from the log (not counting the snapshot). */
  updates: number;
  /** Bytes applied: snapshot plus log. */
  bytes: number;
}


/** Bits of {@link DocPersistence}'s yes/no states. */
const READ_ONLY = 1;
const FLUSH_SCHEDULED = 2;
const FOREIGN = 4;
const CLOSED = 8;
const FAILING = 16;
const HAS_PENDING_ERROR = 32;
const LISTENING = 64;

/** What a binding's options set (compaction thresholds, the macrotask runner). */
interface PersistenceSettings {
  readonly compactAfterUpdates: number;
  readonly compactAfterBytes: number;
  readonly compactIdleMs: number;
  readonly macrotask: (fn: () => void) => () => void;
}

/** The shared record of bindings with the default thresholds, by macrotask runner (weakly: a runner may be a closure). */
const defaultSettings = new WeakMap<(fn: () => void) => () => void, PersistenceSettings>();

function persistenceSettings(s: PersistenceSettings): PersistenceSettings {
  const defaults =
    s.compactAfterUpdates === DEFAULT_COMPACT_AFTER_UPDATES && s.compactAfterBytes === DEFAULT_COMPACT_AFTER_BYTES && s.compactIdleMs === DEFAULT_COMPACT_IDLE_MS;
  if (!defaults) return Object.freeze({ ...s });
  let shared = defaultSettings.get(s.macrotask);
  if (shared === undefined) {
    shared = Object.freeze({ ...s });
    defaultSettings.set(s.macrotask, shared);
  }
  return shared;
}

/** What a binding sets only after a failure, a compaction or another handle's writes. */
interface PersistenceRare {
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  retryDelay: number;
  pendingError: unknown;
  lastError: Error | undefined;
  lastErrorAt: number | undefined;
  failedWrites: number;
  externalUpdates: number;
  compactionConflicts: number;
  compactions: number;
}

const RARE_DEFAULTS: Readonly<PersistenceRare> = Object.freeze({
  retryTimer: undefined,
  retryDelay: RETRY_MIN_MS,
  pendingError: undefined,
  lastError: undefined,
  lastErrorAt: undefined,
  failedWrites: 0,
  externalUpdates: 0,
  compactionConflicts: 0,
  compactions: 0,
});

/** The queue of a binding with nothing to write: one shared empty list (frozen: pushing to it would throw). */
const NO_UPDATES: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];

/**
 * Binds a `Y.Doc` to one document of a {@link DocStore}.
 *
 * - {@link load} applies the stored snapshot and log to the doc.
 * - From construction on (including the state the doc already holds then), every update of the
 *   doc (any origin except {@link PERSISTENCE_ORIGIN} and {@link EXTERNAL_ORIGIN}) is queued and
 *   written with one `store.append` (one SQLite transaction) in a microtask at the end of the
 *   current tick: a change made in a synchronous call is in the store before the next macrotask
 *   runs. {@link flush} writes the queue at once. A failed write keeps its updates queued and is
 *   retried with backoff; {@link status} says so.
 * - Several handles (processes) may share one file. The binding knows up to which sequence
 *   number the doc holds every stored update; a store watch (`dataVersion`, every
 *   `watchIntervalMs`) reads what other handles appended and applies it with
 *   {@link EXTERNAL_ORIGIN}.
 * - When the log passes `compactAfterUpdates` or `compactAfterBytes`, a compaction is scheduled
 *   on the next macrotask (off the write path; at most one pending): the snapshot becomes
 *   `Y.encodeStateAsUpdate(doc)` and the log is cut in one transaction, which the store refuses
 *   (`ERR_STORE_CONFLICT`) if another handle compacted further meanwhile; the binding then reads
 *   the store again and retries. Once the log holds a quarter of a threshold, the compaction
 *   runs earlier, when no write came for `compactIdleMs` (a stream of writes is not interrupted
 *   by it; one that never pauses is compacted at the threshold). Above a 4 MiB snapshot both
 *   also wait for the log to hold a share of the snapshot's bytes (a quarter; a sixteenth idle).
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

  /** The compaction thresholds and the macrotask runner: one shared frozen record per set of them. */
  readonly #o: PersistenceSettings;
  get #compactAfterUpdates(): number {
    return this.#o.compactAfterUpdates;
  }
  get #compactAfterBytes(): number {
    return this.#o.compactAfterBytes;
  }
  get #compactIdleMs(): number {
    return this.#o.compactIdleMs;
  }
  get #macrotask(): (fn: () => void) => () => void {
    return this.#o.macrotask;
  }
  readonly #onError: ((error: unknown) => void) | { reportError(error: unknown): void } | undefined;
  /**
   * The yes/no states as bits of one small integer: {@link READ_ONLY}, {@link FLUSH_SCHEDULED},
   * {@link FOREIGN}, {@link CLOSED}, {@link FAILING}, {@link HAS_PENDING_ERROR}, {@link LISTENING}.
   */
  #bits = 0;
  #bit(bit: number, on: boolean): void {
    this.#bits = on ? this.#bits | bit : this.#bits & ~bit;
  }
  get #readOnly(): boolean {
    return (this.#bits & READ_ONLY) !== 0;
  }
  get #flushScheduled(): boolean {
    return (this.#bits & FLUSH_SCHEDULED) !== 0;
  }
  set #flushScheduled(on: boolean) {
    this.#bit(FLUSH_SCHEDULED, on);
  }
  /**
   * Set when the store holds updates this doc may lack: another handle of the file (another
   * process) appended between two of our appends. The watch (or the next compaction) reads them.
   */
  get #foreign(): boolean {
    return (this.#bits & FOREIGN) !== 0;
  }
  set #foreign(on: boolean) {
    this.#bit(FOREIGN, on);
  }
  get #closed(): boolean {
    return (this.#bits & CLOSED) !== 0;
  }
  set #closed(on: boolean) {
    this.#bit(CLOSED, on);
  }
  get #failing(): boolean {
    return (this.#bits & FAILING) !== 0;
  }
  set #failing(on: boolean) {
    this.#bit(FAILING, on);
  }
  get #hasPendingError(): boolean {
    return (this.#bits & HAS_PENDING_ERROR) !== 0;
  }
  set #hasPendingError(on: boolean) {
    this.#bit(HAS_PENDING_ERROR, on);
  }
  /** {@link #listener} listens (sync/src/doc-updates.ts: the doc's updates, encoded once); stopped with offDocUpdate, no stop closure kept. */
  get #listening(): boolean {
    return (this.#bits & LISTENING) !== 0;
  }
  set #listening(on: boolean) {
    this.#bit(LISTENING, on);
  }
  /** {@link NO_UPDATES} while nothing waits to be written (an idle database holds no list). */
  #queue: Uint8Array[] = NO_UPDATES;
  /** Cancels the scheduled compaction, when one is scheduled. */
  #compactTimer: (() => void) | undefined;
  /** The idle compaction's timer, while the log holds a quarter of a threshold. */
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Flushes so far; the idle timer compacts only if none came during its period. */
  #writes = 0;
  #writesAtIdleArm = 0;
  /** Bytes of the stored snapshot (as this binding knows it): the thresholds scale with it. */
  #snapshotBytes = 0;
  #watchTimer: ReturnType<typeof setInterval> | undefined;
  #dataVersion: number | undefined;
  /** Log size after the snapshot, tracked so that the thresholds need no query per flush. */
  #logUpdates = 0;
  #logBytes = 0;
  /**
   * Bytes of the first log row while the store holds no snapshot ('next': the log is empty, the
   * next row appended is it; null: there is a snapshot, or the first row is not known). That row
   * holds everything up to it in one update, as a snapshot would: compacting a log of that one
   * row rewrites the same state, so the thresholds count the log after it (a replica whose first
   * update is a cold sync's whole document does not encode and write it all again at once).
   */
  #base: number | 'next' | null = null;
  /** The doc holds every stored update with a sequence number up to this one. */
  #syncedSeq = 0;
  /**
   * What a binding sets only after a failure, a compaction or another handle's writes (the error
   * state, the retry timer, the counters): one record made at the first of them (an idle
   * database's binding holds none; ARCHITECTURE § Memory of an idle replica).
   */
  #rare: PersistenceRare | null = null;
  #setRare<K extends keyof PersistenceRare>(key: K, value: PersistenceRare[K]): void {
    let rare = this.#rare;
    if (rare === null) {
      if (value === RARE_DEFAULTS[key]) return;
      rare = this.#rare = { ...RARE_DEFAULTS };
    }
    rare[key] = value;
  }
  get #retryTimer(): ReturnType<typeof setTimeout> | undefined {
    return this.#rare?.retryTimer;
  }
  set #retryTimer(value: ReturnType<typeof setTimeout> | undefined) {
    this.#setRare('retryTimer', value);
  }
  get #retryDelay(): number {
    return this.#rare?.retryDelay ?? RETRY_MIN_MS;
  }
  set #retryDelay(value: number) {
    this.#setRare('retryDelay', value);
  }
  get #pendingError(): unknown {
    return this.#rare?.pendingError;
  }
  set #pendingError(value: unknown) {
    this.#setRare('pendingError', value);
  }
  get #lastError(): Error | undefined {
    return this.#rare?.lastError;
  }
  set #lastError(value: Error | undefined) {
    this.#setRare('lastError', value);
  }
  get #lastErrorAt(): number | undefined {
    return this.#rare?.lastErrorAt;
  }
  set #lastErrorAt(value: number | undefined) {
    this.#setRare('lastErrorAt', value);
  }
  get #failedWrites(): number {
    return this.#rare?.failedWrites ?? 0;
  }
  set #failedWrites(value: number) {
    this.#setRare('failedWrites', value);
  }
  get #externalUpdates(): number {
    return this.#rare?.externalUpdates ?? 0;
  }
  set #externalUpdates(value: number) {
    this.#setRare('externalUpdates', value);
  }
  get #compactionConflicts(): number {
    return this.#rare?.compactionConflicts ?? 0;
  }
  set #compactionConflicts(value: number) {
    this.#setRare('compactionConflicts', value);
  }
  get #compactions(): number {
    return this.#rare?.compactions ?? 0;
  }
  set #compactions(value: number) {
    this.#setRare('compactions', value);
  }

  /** The doc-update listener while the binding listens itself (see {@link PersistenceOptions.listen}). */
  #listener: ((update: Uint8Array, origin: unknown) => void) | null = null;

  /**
   * @internal Queues an update of the doc for the end-of-tick write (what the binding's own
   * listener does; an owner that listens for it calls this with every update of the doc).
   */
  noteUpdate(update: Uint8Array, origin: unknown): void {
    if (origin === PERSISTENCE_ORIGIN || origin === EXTERNAL_ORIGIN || (this.#bits & (CLOSED | READ_ONLY)) !== 0) return;
    if (this.#queue === NO_UPDATES) this.#queue = [update];
    else this.#queue.push(update);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#backgroundFlush());
    }
  }

  /** @internal Listens to the doc's updates itself from now on (idempotent; not for a read-only binding or once closed). */
  listen(): void {
    if (this.#listening || this.#readOnly || this.#closed) return;
    const listener = (update: Uint8Array, origin: unknown): void => this.noteUpdate(update, origin);
    this.#listener = listener;
    onDocUpdate(this.doc, listener);
    this.#listening = true;
  }

  // #backgroundFlush, #retry and #watch are methods, wrapped where they are scheduled: not three
  // bound closures per binding for the database's whole life (ARCHITECTURE § Memory of an idle replica).
  #backgroundFlush(): void {
    this.#flushScheduled = false;
    if (this.#closed) return;
    const wasFailing = this.#failing;
    try {
      this.#flush();
    } catch (error) {
      // Reported when the failure begins, not once per tick while the disk stays full.
      if (!wasFailing) this.#report(error);
    }
  }

  #retry(): void {
    this.#retryTimer = undefined;
    if (this.#closed || this.#queue.length === 0) return;
    try {
      this.#flush();
    } catch {
      // Reported once when the failure began; the next retry is scheduled by #flush.
    }
  }

  #watch(): void {
    if (this.#closed) return;
    try {
      this.refresh();
    } catch (error) {
      this.#noteError(error);
      this.#report(error);
    }
  }

  constructor(store: DocStore, docId: string, doc: Y.Doc, options: PersistenceOptions = {}) {
    if (typeof docId !== 'string') throw new InvalidArgumentError('docId must be a string');
    this.store = store;
    this.docId = docId;
    this.doc = doc;
    const compactAfterUpdates = positiveLimit('compactAfterUpdates', options.compactAfterUpdates, DEFAULT_COMPACT_AFTER_UPDATES);
    const compactAfterBytes = positiveLimit('compactAfterBytes', options.compactAfterBytes, DEFAULT_COMPACT_AFTER_BYTES);
    const idleMs = positiveLimit('compactIdleMs', options.compactIdleMs, DEFAULT_COMPACT_IDLE_MS);
    // Beyond what a timer can wait (~24.8 days) it is the same as never.
    const compactIdleMs = idleMs > 0x7fffffff ? Infinity : idleMs;
    const watchMs = options.watchIntervalMs ?? DEFAULT_WATCH_INTERVAL_MS;
    if (typeof watchMs !== 'number' || !Number.isFinite(watchMs) || watchMs < 0) {
      throw new InvalidArgumentError(`watchIntervalMs must be a non-negative number of ms, got ${String(watchMs)}`);
    }
    this.#onError = options.onError;
    this.#o = persistenceSettings({ compactAfterUpdates, compactAfterBytes, compactIdleMs, macrotask: options.macrotask ?? defaultMacrotask });
    if (options.readOnly === true) this.#bits = READ_ONLY;
    const stats = store.stats(docId);
    this.#logUpdates = stats.updates;
    this.#logBytes = stats.updateBytes;
    this.#syncedSeq = stats.lastSeq;
    this.#snapshotBytes = stats.snapshotBytes;
    if (stats.snapshotBytes === 0 && stats.updates === 0) this.#base = 'next';
    if (watchMs > 0 && typeof store.dataVersion === 'function') {
      this.#dataVersion = store.dataVersion();
      this.#watchTimer = setInterval(() => this.#watch(), watchMs);
      unref(this.#watchTimer);
    }
    if (this.#readOnly) return;
    if (options.listen !== false) this.listen();
    // State the doc had before it was bound would otherwise never reach the store.
    if (doc.store.clients.size > 0) this.noteUpdate(codec.encodeStateAsUpdate(doc), undefined);
  }

  /**
   * Applies the stored snapshot and log to the doc in ONE Yjs transaction with origin
   * {@link PERSISTENCE_ORIGIN} (so observers see one change, and nothing is written back).
   * Call it once, before the doc is shared. Stored bytes that are not a Yjs update throw
   * `StoreCorruptError` (`ERR_STORE_CORRUPT`).
   */
  load(): LoadResult {
    this.#assertOpen();
    const stored = this.store.load(this.docId);
    this.#apply(stored, PERSISTENCE_ORIGIN);
    const snapshotBytes = stored.snapshot?.length ?? 0;
    let bytes = snapshotBytes;
    for (const update of stored.updates) bytes += update.length;
    this.#logUpdates = stored.updates.length;
    this.#logBytes = bytes - snapshotBytes;
    this.#snapshotBytes = snapshotBytes;
    this.#base = stored.snapshot !== null ? null : stored.updates.length > 0 ? stored.updates[0]!.length : 'next';
    this.#maybeScheduleCompaction();
    return { updates: stored.updates.length, bytes };
  }

  /**
   * Reads what other handles of the store (other processes) appended or compacted since this
   * doc last saw the store, and applies it with {@link EXTERNAL_ORIGIN}. Cheap when nothing
   * changed (one `dataVersion` query); the store watch calls it every `watchIntervalMs`.
   * Returns how many stored updates were read.
   */
  refresh(): number {
    this.#assertOpen();
    const version = this.store.dataVersion?.();
    if (!this.#foreign && version !== undefined && version === this.#dataVersion) return 0;
    this.#dataVersion = version;
    return this.#catchUp();
  }

  /** Reads the store after `#syncedSeq` and applies it (EXTERNAL_ORIGIN). */
  #catchUp(): number {
    const since = this.#syncedSeq;
    const stored = this.store.loadSince ? this.store.loadSince(this.docId, since) : this.store.load(this.docId);
    if (stored.lastSeq === since && stored.snapshot === null) {
      this.#foreign = false;
      return 0;
    }
    this.#apply(stored, EXTERNAL_ORIGIN);
    this.#externalUpdates += Math.max(0, stored.lastSeq - since);
    // The log grew by what others appended (or shrank if they compacted): count it afresh.
    const stats = this.store.stats(this.docId);
    this.#logUpdates = stats.updates;
    this.#logBytes = stats.updateBytes;
    this.#snapshotBytes = stats.snapshotBytes;
    if (stats.snapshotBytes > 0 || this.#base === 'next') this.#base = null;
    this.#maybeScheduleCompaction();
    return stored.updates.length;
  }

  /**
   * Applies stored bytes to the doc in one Yjs transaction with `origin`; the doc then holds
   * every stored update through `stored.lastSeq`. Bytes that are not a Yjs update throw
   * `StoreCorruptError`.
   */
  #apply(stored: StoredDoc, origin: symbol): void {
    if (stored.snapshot === null && stored.updates.length === 0) {
      // Nothing stored (a new document): no transaction to open for nothing.
      this.#syncedSeq = Math.max(this.#syncedSeq, stored.lastSeq);
      this.#foreign = false;
      return;
    }
    let current = 'the snapshot';
    try {
      Y.transact(
        this.doc,
        (tr) => {
          // Large stored updates (a snapshot, a cold sync's step 2 in the log) through integrate.ts
          // when it can (the same document, ~28% less heap for a map-heavy one: BENCHMARKS.md §
          // Issue 12, Session 14 (cold)); the rest through Yjs.
          const load = (update: Uint8Array): void => {
            if (update.length < REENCODE_SKIP_BYTES || !integrateUpdate(tr, update, origin)) codec.applyUpdate(this.doc, update, origin);
          };
          if (stored.snapshot) load(stored.snapshot);
          stored.updates.forEach((update, i) => {
            current = `update ${i + 1} of ${stored.updates.length} in the log`;
            load(update);
          });
        },
        origin,
        // Read from the store, not made here: node events report them as 'remote'.
        origin === PERSISTENCE_ORIGIN,
      );
    } catch (error) {
      throw new StoreCorruptError(`document '${this.docId}'`, `${current} is not a valid Yjs update`, { cause: error });
    }
    this.#syncedSeq = Math.max(this.#syncedSeq, stored.lastSeq);
    this.#foreign = false;
  }

  /** Writes the queued updates now, in one store transaction. Throws if the write fails (the updates stay queued). */
  flush(): void {
    this.#throwPendingError();
    if (this.#closed) return;
    this.#flush();
  }

  #flush(): void {
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    let seq: number;
    try {
      seq = this.store.append(this.docId, batch);
    } catch (error) {
      // The updates stay queued (append is all or nothing) and a retry is scheduled.
      this.#noteError(error);
      this.#scheduleRetry();
      throw error;
    }
    if (seq === this.#syncedSeq + batch.length) this.#syncedSeq = seq;
    else this.#foreign = true;
    // Our first row is the store's first only if no other handle appended before it.
    if (this.#base === 'next') this.#base = this.#foreign ? null : batch[0]!.length;
    // Dequeued only once the append succeeded: a failed write is retried by the next flush.
    // (append is synchronous, so no update can have been queued meanwhile.)
    this.#queue = NO_UPDATES;
    this.#failing = false;
    this.#hasPendingError = false;
    this.#pendingError = undefined;
    this.#retryDelay = RETRY_MIN_MS;
    this.#logUpdates += batch.length;
    for (const update of batch) this.#logBytes += update.length;
    this.#writes++;
    this.#maybeScheduleCompaction();
  }

  #noteError(error: unknown): void {
    this.#failedWrites++;
    this.#failing = true;
    this.#lastError = asError(error);
    this.#lastErrorAt = Date.now();
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#closed) return;
    this.#retryTimer = setTimeout(() => this.#retry(), this.#retryDelay);
    unref(this.#retryTimer);
    this.#retryDelay = Math.min(RETRY_MAX_MS, this.#retryDelay * 2);
  }

  /**
   * After every flush (one comparison or two): compacts on the next macrotask once the log
   * reaches a threshold (scaled with a large snapshot), and arms the idle compaction once it holds
   * a quarter of one.
   */
  #maybeScheduleCompaction(): void {
    if (this.#compactTimer !== undefined || this.#closed || this.#readOnly) return;
    const base = typeof this.#base === 'number' ? 1 : 0;
    const updates = this.#logUpdates - base;
    const bytes = this.#logBytes - (typeof this.#base === 'number' ? this.#base : 0);
    const snapshot = this.#snapshotBytes > SCALE_ABOVE_BYTES ? this.#snapshotBytes : 0;
    if ((updates >= this.#compactAfterUpdates || bytes >= this.#compactAfterBytes) && bytes * HARD_RATIO >= snapshot) {
      this.#scheduleCompaction();
      return;
    }
    if (this.#idleTimer !== undefined || this.#compactIdleMs === Infinity) return;
    if ((updates * IDLE_SHARE >= this.#compactAfterUpdates || bytes * IDLE_SHARE >= this.#compactAfterBytes) && bytes * IDLE_RATIO >= snapshot) {
      this.#armIdle();
    }
  }

  #armIdle(): void {
    this.#writesAtIdleArm = this.#writes;
    this.#idleTimer = setTimeout(() => this.#idle(), this.#compactIdleMs);
    unref(this.#idleTimer);
  }

  /** The idle timer: compacts if no write came during its period, else waits one more period. */
  #idle(): void {
    this.#idleTimer = undefined;
    if (this.#closed || this.#compactTimer !== undefined) return;
    if (this.#writes !== this.#writesAtIdleArm) {
      this.#armIdle();
      return;
    }
    try {
      this.#compact();
    } catch (error) {
      this.#report(error);
    }
  }

  #scheduleCompaction(): void {
    this.#cancelIdle();
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

  #cancelIdle(): void {
    if (this.#idleTimer === undefined) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  /**
   * Replaces the log by a snapshot of the doc: flushes, reads in whatever other handles
   * appended, then `store.compact(docId, Y.encodeStateAsUpdate(doc), syncedSeq)` in one
   * transaction. When another handle compacted further meanwhile the store refuses
   * (`ERR_STORE_CONFLICT`); the binding reads the store again and retries. The live doc already
   * holds every stored update, so no log is merged (`Y.mergeUpdates` is quadratic).
   */
  compact(): void {
    this.#throwPendingError();
    this.#assertOpen();
    this.#compact();
  }

  #compact(): void {
    this.#flush();
    for (let attempt = 1; ; attempt++) {
      // Another process may have appended (or compacted) since this doc last read the store:
      // its updates would be deleted with the log below, yet be missing from the snapshot.
      if (this.#foreign || this.store.stats(this.docId).lastSeq !== this.#syncedSeq) this.#catchUp();
      const snapshot = codec.encodeStateAsUpdate(this.doc);
      try {
        this.store.compact(this.docId, snapshot, this.#syncedSeq);
        break;
      } catch (error) {
        // Lost the race: another handle stored a newer snapshot between our read and our write.
        if (!isConflict(error)) throw error;
        this.#compactionConflicts++;
        this.#foreign = true;
        if (attempt >= COMPACT_ATTEMPTS) {
          // The other handle keeps compacting; it holds the log short. Catch up and leave it.
          this.#catchUp();
          return;
        }
      }
    }
    const stats = this.store.stats(this.docId);
    this.#logUpdates = stats.updates;
    this.#logBytes = stats.updateBytes;
    this.#snapshotBytes = stats.snapshotBytes;
    this.#base = null;
    this.#compactions++;
    this.#cancelIdle();
    // Rows another handle appended after our snapshot may already be due.
    this.#maybeScheduleCompaction();
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

  /** Whether writes reach the store, the last failure, and what waits in memory. Never throws. */
  status(): StorageStatus {
    let health: StorageHealth = this.#failing ? 'failing' : 'ok';
    if (this.#readOnly) health = 'read-only';
    if (this.#closed) health = 'closed';
    return {
      health,
      lastError: this.#lastError,
      lastErrorAt: this.#lastErrorAt,
      pendingUpdates: this.#queue.length,
      failedWrites: this.#failedWrites,
      externalUpdates: this.#externalUpdates,
      compactionConflicts: this.#compactionConflicts,
    };
  }

  /** Updates waiting for the end-of-tick flush (or for a retry of a failed write). */
  get pendingUpdates(): number {
    return this.#queue.length;
  }

  /**
   * Flushes, cancels scheduled work and stops listening to the doc. Idempotent; the store stays
   * open. If the final flush fails, the binding stays open with its updates queued (a retry is
   * scheduled) and the error is thrown: call `close()` again once the cause is gone (space
   * freed) and nothing is lost.
   */
  close(): void {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    if (this.#listening && this.#listener !== null) offDocUpdate(this.doc, this.#listener);
    this.#listener = null;
    this.#listening = false;
    this.#compactTimer?.();
    this.#compactTimer = undefined;
    this.#cancelIdle();
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#watchTimer !== undefined) clearInterval(this.#watchTimer);
    this.#watchTimer = undefined;
    this.#throwPendingError();
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('persistence');
  }

  #report(error: unknown): void {
    const sink = this.#onError;
    if (sink) {
      if (typeof sink === 'function') sink(error);
      else sink.reportError(error);
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
 * the log; if another process compacted meanwhile the store refuses (`ERR_STORE_CONFLICT`) and
 * this reads again (up to 3 times). Never uses `Y.mergeUpdates`. A log that does not decode throws `ERR_STORE_CORRUPT` and
 * is left as it was.
 */
export function compactStoredDoc(store: DocStore, docId: string): CompactResult {
  const before = store.stats(docId);
  for (let attempt = 1; ; attempt++) {
    const stored = store.load(docId);
    if (stored.updates.length === 0) break;
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
      break;
    } catch (error) {
      // Another process compacted between our read and our write: read again (nothing was written).
      if (!isConflict(error) || attempt >= COMPACT_ATTEMPTS) throw error;
    } finally {
      doc.destroy();
    }
  }
  return { before, after: store.stats(docId) };
}
