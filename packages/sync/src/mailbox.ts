import * as Y from 'yjs';
import {
  ConnectFailedError,
  MailboxFullError,
  MailboxInvalidError,
  MailboxOp,
  MailboxRefusedError,
  MailboxRollbackError,
  TimeoutError,
} from '@rhizome/core';
import type { DocStore, MailboxAccess, MailboxHeader, MailboxOffer, MailboxReadResult, MailboxWriteResult } from '@rhizome/core';
import { PERSISTENCE_ORIGIN } from './persistence.js';
import { applyQueuedWrites } from './put-batch.js';
import { onDocUpdate } from './doc-updates.js';
import { digestOf, type MailboxKeys } from './mailbox-keys.js';
import { MSG_UPDATES, decodeMessage, encodeUpdates } from './wire.js';

/** Transaction origin of updates applied from a mailbox (never deposited back). */
export const MAILBOX_ORIGIN = Symbol('rhizome-mailbox');

/** How long after a local write its deposit waits for more writes to batch with (ms). */
export const DEFAULT_DEPOSIT_DELAY_MS = 250;
/** How long `close()` waits for pending deposits to reach the mailbox. */
export const MAILBOX_CLOSE_MS = 10_000;
/** Attempts of one deposit when other writers keep moving the head. */
const MAX_STALE_RETRIES = 8;

/** Options of the mailbox binding. */
export interface MailboxSyncOptions {
  /** Delay that batches local writes into one deposit. Default 250 ms. */
  depositDelayMs?: number;
  /** Reports errors (become `error` events of the database). */
  onError: (error: Error) => void;
  /** Local writes happened before this binding was made (it then deposits at the first offer). */
  dirty?: boolean;
}

/** True for a doc update that is a local write the mailbox must receive (what marks a binding dirty). */
export function isMailboxWrite(origin: unknown, tr: Y.Transaction): boolean {
  return origin !== MAILBOX_ORIGIN && origin !== PERSISTENCE_ORIGIN && tr.local;
}

/** Where a replica stands with the mailbox of one server. */
export interface MailboxStatusInfo {
  /** The server (relay URL). */
  server: string;
  /** True while a session with a mailbox offer is up. */
  available: boolean;
  /** The counter of the newest record applied here (contiguous from the base). */
  cursor: number;
  /** The highest signed counter this replica has seen (rollback below it is reported). */
  remembered: number;
  /** Bytes and records in the mailbox, as last reported. */
  usedBytes: number;
  usedEntries: number;
  /** Local writes not yet deposited. */
  pending: boolean;
  /** Deposits and snapshots written by this replica since open. */
  deposits: number;
  snapshots: number;
}

interface PersistedState {
  remembered: number;
  cursor: number;
  /** The mailbox's state vector (client → clock) up to `cursor`. */
  sv: Array<[number, number]>;
  baseBytes: number;
}

type State = PersistedState;

function svAhead(doc: Map<number, number>, mailbox: Map<number, number>): boolean {
  for (const [client, clock] of doc) if (clock > (mailbox.get(client) ?? 0)) return true;
  return false;
}

function mergeSv(into: Map<number, number>, sv: Map<number, number>): void {
  for (const [client, clock] of sv) if (clock > (into.get(client) ?? 0)) into.set(client, clock);
}

function errorOf(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Binds a database's Y.Doc to the sealed mailbox of one relay (ARCHITECTURE.md § Mailbox):
 *
 * - **catch-up**: whenever a session with a mailbox offer comes up, reads the records above its
 *   cursor, verifies each signature, the digest and the counter chain, opens the payloads and
 *   applies them in one transaction (origin {@link MAILBOX_ORIGIN}); a signed head below the
 *   highest counter seen is a rollback (`ERR_MAILBOX_ROLLBACK`), answered by a new snapshot;
 * - **deposits**: local writes mark the binding dirty; after `depositDelayMs` it deposits what
 *   the mailbox lacks, `Y.encodeStateAsUpdate(doc, mailboxStateVector)`, sealed and signed with
 *   `counter = head + 1` (the relay refuses anything else, so two writers never both append on
 *   the same head: the loser reads the winner's record first, and then usually lacks nothing);
 * - **compaction**: when the mailbox holds more than twice its base (or half its quota), or the
 *   relay refuses a deposit as FULL (`ERR_MAILBOX_FULL`, reported), it writes a sealed snapshot
 *   that replaces every earlier record.
 *
 * The cursor, the highest counter seen and the mailbox's state vector are kept in the local
 * store (a small record beside the document), so a reopened replica fetches only what is new
 * and still notices a rollback.
 */
export class MailboxSync {
  readonly #doc: Y.Doc;
  readonly #access: MailboxAccess;
  readonly #keys: MailboxKeys;
  readonly #store: DocStore;
  readonly #docId: string;
  /** The server whose state is loaded (with a relay list, the relay of the current session). */
  #server: string;
  readonly #onError: (error: Error) => void;
  readonly #delayMs: number;
  #state: State;
  #sv: Map<number, number>;
  #usedBytes = 0;
  #usedEntries = 0;
  #offer: MailboxOffer | null = null;
  #dirty = false;
  /** Increments with every local write: a deposit covers the writes up to the epoch it read. */
  #epoch = 0;
  #rollback = false;
  #forceSnapshot = false;
  #lastError: Error | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #closed = false;
  #stopOffer: (() => void) | null = null;
  #stopUpdates: (() => void) | null = null;
  readonly #idleWaiters = new Set<() => void>();
  #deposits = 0;
  #snapshots = 0;
  /** False after a failure that needs a new session (lost link, invalid data): wait for the next offer. */
  #usable = false;

  constructor(doc: Y.Doc, access: MailboxAccess, keys: MailboxKeys, store: DocStore, docId: string, options: MailboxSyncOptions) {
    this.#doc = doc;
    this.#access = access;
    this.#keys = keys;
    this.#store = store;
    this.#onError = options.onError;
    this.#delayMs = options.depositDelayMs ?? DEFAULT_DEPOSIT_DELAY_MS;
    this.#docId = docId;
    this.#server = access.serverId;
    this.#state = this.#load();
    this.#sv = new Map(this.#state.sv);
    this.#dirty = options.dirty === true;
  }

  /** Starts following the server's offers. */
  start(): void {
    this.#stopUpdates = onDocUpdate(this.#doc, this.#onUpdate);
    this.#stopOffer = this.#access.onOffer((offer) => {
      this.#offer = offer;
      if (this.#access.serverId !== this.#server && this.#running === null) {
        // Another relay (a relay list failed over): its mailbox has its own counters.
        this.#server = this.#access.serverId;
        this.#state = this.#load();
        this.#sv = new Map(this.#state.sv);
        this.#rollback = false;
      }
      this.#usable = true;
      this.#kick();
    });
  }

  /** Where this replica stands with the mailbox. */
  status(): MailboxStatusInfo {
    return {
      server: this.#server,
      available: this.#access.offer !== null,
      cursor: this.#state.cursor,
      remembered: this.#state.remembered,
      usedBytes: this.#usedBytes,
      usedEntries: this.#usedEntries,
      pending: this.#dirty,
      deposits: this.#deposits,
      snapshots: this.#snapshots,
    };
  }

  /**
   * Resolves once a mailbox session is up, the replica has caught up, and every local write is
   * deposited. Rejects with `ERR_TIMEOUT` after `timeoutMs` (default 30 s).
   */
  whenIdle(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (this.#idle()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#idleWaiters.delete(done);
        reject(new TimeoutError(`mailbox of ${this.#access.serverId} not idle after ${timeoutMs} ms (${JSON.stringify(this.status())})`));
      }, timeoutMs);
      this.#idleWaiters.add(done);
    });
  }

  /**
   * Replaces the mailbox by one sealed snapshot of the whole document now (the binding also
   * does it by itself, § Mailbox compaction). Resolves once written; rejects with the refusal.
   */
  async compact(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#forceSnapshot = true;
    this.#kick();
    await this.whenIdle(options);
    if (this.#forceSnapshot) throw this.#lastError ?? new ConnectFailedError(`mailbox of ${this.#access.serverId} is not available`);
  }

  /** Deposits what is pending (bounded by {@link MAILBOX_CLOSE_MS}) and stops. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#usable && this.#access.offer !== null && (this.#dirty || this.#running)) {
      this.#kick();
      await this.whenIdle({ timeoutMs: MAILBOX_CLOSE_MS }).catch(() => undefined);
    }
    this.#closed = true;
    this.#stopUpdates?.();
    this.#stopUpdates = null;
    this.#stopOffer?.();
    await this.#running?.catch(() => undefined);
    for (const w of [...this.#idleWaiters]) w();
  }

  // ---- the loop -----------------------------------------------------------------------------

  readonly #onUpdate = (_update: Uint8Array, origin: unknown, _doc: Y.Doc, tr: Y.Transaction): void => {
    if (!isMailboxWrite(origin, tr)) return;
    this.#epoch++;
    this.#dirty = true;
    if (this.#timer === null && !this.#closed) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#kick();
      }, this.#delayMs);
    }
  };

  #idle(): boolean {
    return this.#usable && this.#access.offer !== null && this.#running === null && !this.#dirty && !this.#rollback && !this.#forceSnapshot;
  }

  #kick(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#cycle()
      .catch((error: unknown) => {
        this.#lastError = errorOf(error);
        this.#onError(this.#lastError);
      })
      .finally(() => {
        this.#running = null;
        if (this.#again && !this.#closed && this.#usable) {
          this.#again = false;
          this.#kick();
          return;
        }
        this.#again = false;
        if (this.#idle()) for (const w of [...this.#idleWaiters]) w();
      });
  }

  /** One pass: catch up, then deposit or compact as needed. */
  async #cycle(): Promise<void> {
    if (!this.#usable || this.#access.offer === null) return;
    try {
      await this.#catchUp();
      for (let attempt = 0; attempt < MAX_STALE_RETRIES && !this.#closed; attempt++) {
        try {
          await this.#writeWhatIsMissing();
          return;
        } catch (error) {
          if (error instanceof MailboxRefusedError && error.statusName === 'STALE') {
            // Another writer moved the head: read its records, then decide again.
            await this.#catchUp();
            continue;
          }
          throw error;
        }
      }
    } catch (error) {
      if (error instanceof ConnectFailedError || error instanceof MailboxInvalidError || (error instanceof MailboxRefusedError && error.statusName !== 'RATE')) {
        this.#usable = false;
      }
      throw error;
    }
  }

  async #writeWhatIsMissing(): Promise<void> {
    const head = this.#state.cursor;
    if (head === 0 || this.#rollback || this.#forceSnapshot) {
      // An empty mailbox (or one rolled back below what we saw): a base first.
      await this.#snapshot();
      return;
    }
    const docSv = Y.decodeStateVector(Y.encodeStateVector(this.#doc));
    const missing = svAhead(docSv, this.#sv);
    if (!missing && !this.#dirty) return;
    if (this.#needsCompaction()) {
      await this.#snapshot();
      return;
    }
    const epoch = this.#epoch;
    const update = Y.encodeStateAsUpdate(this.#doc, encodeSv(this.#sv));
    const payload = this.#keys.seal(encodeUpdates([update]));
    const counter = head + 1;
    let result: MailboxWriteResult;
    try {
      result = await this.#access.write(this.#keys.publicKey, this.#keys.header(MailboxOp.DEPOSIT, counter, head, payload), payload);
    } catch (error) {
      if (error instanceof MailboxFullError || (error instanceof MailboxRefusedError && error.statusName === 'TOO_LARGE')) {
        // Reported, then compacted so that it fits again.
        this.#onError(error);
        await this.#snapshot();
        return;
      }
      throw error;
    }
    this.#deposits++;
    mergeSv(this.#sv, docSv);
    this.#advance(result, counter, null);
    if (this.#epoch === epoch) this.#dirty = false;
    if (this.#needsCompaction()) await this.#snapshot();
  }

  /**
   * Compaction policy: once the deposits on top of the base outweigh the base (at least 64 KiB
   * of them), or the mailbox holds half its record quota, or it is three quarters full with a
   * sixteenth of its quota in deposits. So right after a compaction the mailbox holds one
   * snapshot (the encoded state, sealed), and at most about twice that in between.
   */
  #needsCompaction(): boolean {
    if (this.#usedEntries <= 1) return false;
    const deposits = this.#usedBytes - this.#state.baseBytes;
    if (deposits > Math.max(this.#state.baseBytes, 64 * 1024)) return true;
    const offer = this.#offer;
    if (offer === null) return false;
    return this.#usedEntries > offer.maxEntries / 2 || (this.#usedBytes > 0.75 * offer.maxMailboxBytes && deposits > offer.maxMailboxBytes / 16);
  }

  /** Writes a sealed snapshot of the whole doc that replaces every earlier record. */
  async #snapshot(): Promise<void> {
    const head = this.#state.cursor;
    const epoch = this.#epoch;
    const docSv = Y.decodeStateVector(Y.encodeStateVector(this.#doc));
    const payload = this.#keys.seal(encodeUpdates([Y.encodeStateAsUpdate(this.#doc)]));
    const counter = Math.max(head, this.#state.remembered) + 1;
    const result = await this.#access.write(this.#keys.publicKey, this.#keys.header(MailboxOp.SNAPSHOT, counter, head, payload), payload);
    this.#snapshots++;
    this.#rollback = false;
    this.#forceSnapshot = false;
    this.#sv = docSv;
    this.#advance(result, counter, payload.length + 117);
    if (this.#epoch === epoch) this.#dirty = false;
  }

  #advance(result: MailboxWriteResult, counter: number, baseBytes: number | null): void {
    this.#usedBytes = result.usedBytes;
    this.#usedEntries = result.usedEntries;
    this.#state = {
      remembered: Math.max(this.#state.remembered, counter),
      cursor: counter,
      sv: [...this.#sv],
      baseBytes: baseBytes ?? this.#state.baseBytes,
    };
    this.#save();
  }

  /** Reads and applies the records above the cursor; detects rollback. */
  async #catchUp(): Promise<void> {
    let result = await this.#access.read(this.#keys.publicKey, this.#state.cursor);
    let head = this.#verifyHead(result);
    const remembered = this.#state.remembered;
    if (head !== null && head.counter < this.#state.cursor) {
      // Rolled back below our cursor: read it all again from the start.
      this.#reset();
      result = await this.#access.read(this.#keys.publicKey, 0);
      head = this.#verifyHead(result);
    } else if (head === null && this.#state.cursor > 0) {
      this.#reset();
    }
    const served = head?.counter ?? 0;
    if (served < remembered) {
      this.#rollback = true;
      this.#onError(new MailboxRollbackError(this.#access.serverId, served, remembered));
    }
    this.#apply(result, head);
  }

  #reset(): void {
    this.#sv = new Map();
    this.#state = { ...this.#state, cursor: 0, sv: [], baseBytes: 0 };
  }

  #verifyHead(result: MailboxReadResult): MailboxHeader | null {
    if (result.head === null) {
      if (result.records.length > 0) throw new MailboxInvalidError(`${this.#access.serverId} served records without a head`);
      return null;
    }
    const head = this.#keys.verify(result.head);
    if (head === null) throw new MailboxInvalidError(`${this.#access.serverId} served a mailbox head whose signature does not verify`);
    return head;
  }

  /** Verifies the chain of records and applies them in one transaction. */
  #apply(result: MailboxReadResult, head: MailboxHeader | null): void {
    this.#usedBytes = result.usedBytes;
    this.#usedEntries = result.usedEntries;
    const server = this.#access.serverId;
    if (head === null) return;
    if (result.records.length === 0) {
      if (head.counter !== this.#state.cursor) throw new MailboxInvalidError(`${server} served head ${head.counter} but no records above ${this.#state.cursor}`);
      return;
    }
    let cursor = this.#state.cursor;
    let sv = this.#sv;
    let baseBytes = this.#state.baseBytes;
    const updates: Uint8Array[] = [];
    for (const record of result.records) {
      const h = this.#keys.verify(record.header);
      if (h === null) throw new MailboxInvalidError(`${server} served a record whose signature does not verify`);
      if (h.length !== record.payload.length || !sameBytes(digestOf(record.payload), h.digest)) {
        throw new MailboxInvalidError(`${server} served a record whose payload does not match its signed digest`);
      }
      if (h.op === MailboxOp.SNAPSHOT || h.op === MailboxOp.TRUNCATE) {
        if (record !== result.records[0] || h.counter <= cursor) throw new MailboxInvalidError(`${server} served a base record out of place`);
        sv = new Map();
        baseBytes = record.payload.length + 117;
      } else if (h.op !== MailboxOp.DEPOSIT || h.prev !== cursor || h.counter !== cursor + 1) {
        throw new MailboxInvalidError(`${server} served a record that does not continue the chain at ${cursor}`);
      }
      cursor = h.counter;
      if (h.op === MailboxOp.TRUNCATE) continue;
      let plain: Uint8Array;
      try {
        plain = this.#keys.open(record.payload);
      } catch {
        throw new MailboxInvalidError(`${server} served a record that does not open`);
      }
      const message = decodeMessage(plain);
      if (message.type !== MSG_UPDATES) throw new MailboxInvalidError(`${server} served a record that holds no updates`);
      for (const u of message.updates) {
        updates.push(u);
        mergeSv(sv, Y.decodeStateVector(Y.encodeStateVectorFromUpdate(u)));
      }
    }
    if (cursor !== head.counter) throw new MailboxInvalidError(`${server} served records up to ${cursor} under head ${head.counter}`);
    if (updates.length > 0) {
      applyQueuedWrites(this.#doc); // local writes queued in this task go first
      let applied = false;
      try {
        Y.transact(
          this.#doc,
          () => {
            for (const u of updates) Y.applyUpdate(this.#doc, u, MAILBOX_ORIGIN);
            applied = true;
          },
          MAILBOX_ORIGIN,
          false,
        );
      } catch (error) {
        // Thrown once the updates were in: an app's observer failed, not the server's records.
        if (applied) this.#onError(errorOf(error));
        else throw new MailboxInvalidError(`${server} served updates that do not apply: ${errorOf(error).message}`);
      }
    }
    this.#sv = sv;
    this.#state = { remembered: Math.max(this.#state.remembered, cursor), cursor, sv: [...sv], baseBytes };
    this.#save();
  }

  // ---- the record kept in the local store ---------------------------------------------------

  #stateId(): string {
    return `${this.#docId}\u0000mailbox\u0000${this.#server}`;
  }

  #load(): State {
    const empty: State = { remembered: 0, cursor: 0, sv: [], baseBytes: 0 };
    try {
      const stored = this.#store.load(this.#stateId()).snapshot;
      if (stored === null) return empty;
      const parsed = JSON.parse(new TextDecoder().decode(stored)) as Partial<PersistedState>;
      if (typeof parsed.remembered !== 'number' || typeof parsed.cursor !== 'number' || !Array.isArray(parsed.sv)) return empty;
      return { remembered: parsed.remembered, cursor: parsed.cursor, sv: parsed.sv, baseBytes: typeof parsed.baseBytes === 'number' ? parsed.baseBytes : 0 };
    } catch {
      return empty;
    }
  }

  #save(): void {
    try {
      const bytes = new TextEncoder().encode(JSON.stringify(this.#state));
      this.#store.compact(this.#stateId(), bytes, this.#store.stats(this.#stateId()).lastSeq);
    } catch (error) {
      if (!this.#closed) this.#onError(errorOf(error));
    }
  }
}

/** Encodes a state vector given as a map (yjs's `encodeStateVector` takes a Map as well as a doc; its types say Doc only). */
function encodeSv(sv: Map<number, number>): Uint8Array {
  return Y.encodeStateVector(sv as unknown as Y.Doc);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
