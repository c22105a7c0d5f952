import { closeSync, existsSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { MailboxOp, MailboxStatus, StoreCorruptError, StoreVersionError, checkMailboxSequence, decodeMailboxHeader } from '@rhizome/core';
import Database from 'better-sqlite3';
import type { Database as Sqlite, Statement, Transaction } from 'better-sqlite3';
import { recordBytes, type MailboxCommit, type MailboxCommitResult, type MailboxSnapshot, type MailboxStore, type MailboxStoreStats, type StoredMailboxRecord } from './store.js';

/** `PRAGMA application_id` of a relay mailbox file: ASCII `RhMb`. */
export const MAILBOX_APPLICATION_ID = 0x52684d62;
/** Schema version this relay writes (`PRAGMA user_version`). */
export const MAILBOX_SCHEMA_VERSION = 1;

const SQLITE_MAGIC = 'SQLite format 3\u0000';

const SCHEMA = `
CREATE TABLE mailboxes (
  id INTEGER PRIMARY KEY,
  key BLOB NOT NULL UNIQUE,
  head INTEGER NOT NULL,
  head_header BLOB NOT NULL,
  bytes INTEGER NOT NULL,
  entries INTEGER NOT NULL,
  written_at INTEGER NOT NULL
);
CREATE INDEX mailboxes_written_at ON mailboxes (written_at);
CREATE TABLE records (
  mailbox INTEGER NOT NULL,
  counter INTEGER NOT NULL,
  header BLOB NOT NULL,
  payload BLOB NOT NULL
);
CREATE UNIQUE INDEX records_key ON records (mailbox, counter);
`;

const HINT = 'refusing to start; move the file aside (the relay cannot read what it holds anyway: clients re-deposit) or restore it from a backup';

interface MailboxRow {
  id: number;
  head: number;
  head_header: Buffer;
  bytes: number;
  entries: number;
}

function isCorruption(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

function view(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Checks an existing non-empty file without writing to it: the SQLite header, then through a
 * read-only connection `quick_check`, the application id, version and tables. A damaged file or
 * one of another application is refused with `ERR_STORE_CORRUPT`, never emptied.
 */
function validateExisting(path: string): void {
  const header = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  let read: number;
  try {
    read = readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (read < header.length || header.toString('latin1', 0, 16) !== SQLITE_MAGIC) {
    throw new StoreCorruptError(path, `not a relay mailbox file (no SQLite header); ${HINT}`);
  }
  const created = [`${path}-wal`, `${path}-shm`].filter((f) => !existsSync(f));
  let db: Sqlite | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const problems = (db.pragma('quick_check') as Array<{ quick_check: string }>).map((r) => r.quick_check).filter((r) => r !== 'ok');
    if (problems.length > 0) throw new StoreCorruptError(path, `damaged mailbox file (integrity check: ${problems.slice(0, 3).join('; ')}); ${HINT}`);
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[];
    if (appId !== MAILBOX_APPLICATION_ID && (appId !== 0 || tables.length > 0)) {
      throw new StoreCorruptError(path, `an SQLite file that is not a relay mailbox; ${HINT}`);
    }
    if (version > MAILBOX_SCHEMA_VERSION) throw new StoreVersionError(path, version, MAILBOX_SCHEMA_VERSION);
    if (appId === MAILBOX_APPLICATION_ID && (!tables.includes('mailboxes') || !tables.includes('records'))) {
      throw new StoreCorruptError(path, `relay mailbox file without its tables; ${HINT}`);
    }
    // (quick_check walks every b-tree page; record payloads in overflow pages are read when served.)
    db.close();
  } catch (error) {
    db?.close();
    const wal = created.find((f) => f.endsWith('-wal'));
    if (wal !== undefined && statSync(wal, { throwIfNoEntry: false })?.size === 0) for (const f of created) rmSync(f, { force: true });
    if (error instanceof StoreCorruptError || error instanceof StoreVersionError) throw error;
    if (isCorruption(error)) throw new StoreCorruptError(path, `damaged mailbox file (${(error as Error).message}); ${HINT}`, { cause: error });
    throw error;
  }
}

/**
 * The relay's mailboxes in one SQLite file (better-sqlite3, WAL, `auto_vacuum = FULL` so the
 * file shrinks when snapshots replace records). A `mailboxes` row per mailbox (head, usage,
 * last write) and a `records` row per record. Loaded only when the relay runs with a mailbox.
 * ARCHITECTURE.md § Mailbox describes the file.
 */
export class SqliteMailboxStore implements MailboxStore {
  readonly path: string;
  readonly #db: Sqlite;
  #closed = false;
  readonly #selMailbox: Statement<[Uint8Array], MailboxRow>;
  readonly #selRecords: Statement<[number, number], { counter: number; header: Buffer; payload: Buffer }>;
  readonly #insMailbox: Statement<[Uint8Array, number, Uint8Array, number, number, number], unknown>;
  readonly #updMailbox: Statement<[number, Uint8Array, number, number, number, number], unknown>;
  readonly #insRecord: Statement<[number, number, Uint8Array, Uint8Array], unknown>;
  readonly #delRecords: Statement<[number], unknown>;
  readonly #countMailboxes: Statement<[], number>;
  readonly #readTx: Transaction<(mailbox: Uint8Array, after: number) => MailboxSnapshot>;
  readonly #commitTx: Transaction<(c: MailboxCommit) => MailboxCommitResult>;
  readonly #expireTx: Transaction<(before: number) => number>;

  /** @internal Use {@link openSqliteMailboxStore}. */
  constructor(db: Sqlite, path: string) {
    this.#db = db;
    this.path = path;
    this.#selMailbox = db.prepare('SELECT id, head, head_header, bytes, entries FROM mailboxes WHERE key = ?');
    this.#selRecords = db.prepare('SELECT counter, header, payload FROM records WHERE mailbox = ? AND counter > ? ORDER BY counter');
    this.#insMailbox = db.prepare('INSERT INTO mailboxes (key, head, head_header, bytes, entries, written_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.#updMailbox = db.prepare('UPDATE mailboxes SET head = ?, head_header = ?, bytes = ?, entries = ?, written_at = ? WHERE id = ?');
    this.#insRecord = db.prepare('INSERT INTO records (mailbox, counter, header, payload) VALUES (?, ?, ?, ?)');
    this.#delRecords = db.prepare('DELETE FROM records WHERE mailbox = ?');
    this.#countMailboxes = db.prepare('SELECT count(*) FROM mailboxes').pluck() as Statement<[], number>;
    const selExpired = db.prepare('SELECT id FROM mailboxes WHERE written_at < ?').pluck() as Statement<[number], number>;
    const delMailbox = db.prepare('DELETE FROM mailboxes WHERE id = ?');

    this.#readTx = db.transaction((mailbox: Uint8Array, after: number): MailboxSnapshot => {
      const row = this.#selMailbox.get(mailbox);
      if (row === undefined) return { head: null, headCounter: 0, records: [], bytes: 0, entries: 0 };
      const records: StoredMailboxRecord[] = this.#selRecords.all(row.id, after).map((r) => ({ counter: r.counter, header: view(r.header), payload: view(r.payload) }));
      return { head: view(row.head_header), headCounter: row.head, records, bytes: row.bytes, entries: row.entries };
    });

    this.#commitTx = db.transaction((c: MailboxCommit): MailboxCommitResult => {
      const row = this.#selMailbox.get(c.mailbox);
      const head = row?.head ?? 0;
      const bytes = row?.bytes ?? 0;
      const entries = row?.entries ?? 0;
      const header = decodeMailboxHeader(c.header);
      const refuse = (status: number): MailboxCommitResult => ({ status, head, bytes, entries });
      if (header === null) return refuse(MailboxStatus.BAD_RECORD);
      const sequence = checkMailboxSequence(header, head, row !== undefined);
      if (sequence !== MailboxStatus.OK) return refuse(sequence);
      const size = recordBytes(c.payload.length);
      const replaces = c.op !== MailboxOp.DEPOSIT;
      const nextBytes = replaces ? size : bytes + size;
      const nextEntries = replaces ? 1 : entries + 1;
      if (replaces && size > c.limits.maxMailboxBytes) return refuse(MailboxStatus.TOO_LARGE);
      if (nextBytes > c.limits.maxMailboxBytes || nextEntries > c.limits.maxEntries) return refuse(MailboxStatus.FULL);
      let id: number;
      if (row === undefined) {
        if (this.#countMailboxes.get()! >= c.limits.maxMailboxes) return refuse(MailboxStatus.RELAY_FULL);
        const info = this.#insMailbox.run(c.mailbox, c.counter, c.header, nextBytes, nextEntries, c.now) as { lastInsertRowid: number | bigint };
        id = Number(info.lastInsertRowid);
      } else {
        id = row.id;
        if (replaces) this.#delRecords.run(id);
        this.#updMailbox.run(c.counter, c.header, nextBytes, nextEntries, c.now, id);
      }
      this.#insRecord.run(id, c.counter, c.header, c.payload);
      return { status: MailboxStatus.OK, head: c.counter, bytes: nextBytes, entries: nextEntries };
    });

    this.#expireTx = db.transaction((before: number): number => {
      const ids = selExpired.all(before);
      for (const id of ids) {
        this.#delRecords.run(id);
        delMailbox.run(id);
      }
      return ids.length;
    });
  }

  read(mailbox: Uint8Array, after: number): Promise<MailboxSnapshot> {
    return this.#run(() => this.#readTx.deferred(mailbox, after));
  }

  commit(request: MailboxCommit): Promise<MailboxCommitResult> {
    return this.#run(() => this.#commitTx.immediate(request));
  }

  expire(lastWriteBefore: number): Promise<number> {
    return this.#run(() => this.#expireTx.immediate(lastWriteBefore));
  }

  stats(): Promise<MailboxStoreStats> {
    return this.#run(() => {
      const r = this.#db.prepare('SELECT count(*) AS mailboxes, coalesce(sum(entries), 0) AS entries, coalesce(sum(bytes), 0) AS bytes FROM mailboxes').get() as MailboxStoreStats;
      return { mailboxes: r.mailboxes, entries: r.entries, bytes: r.bytes };
    });
  }

  /** Truncates the WAL (for measurements and backups). */
  checkpoint(): void {
    if (!this.#closed) this.#db.pragma('wal_checkpoint(TRUNCATE)');
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#db.close();
    }
    return Promise.resolve();
  }

  #run<T>(fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('mailbox store is closed'));
    try {
      return Promise.resolve(fn());
    } catch (error) {
      if (isCorruption(error)) return Promise.reject(new StoreCorruptError(this.path, `damaged mailbox file (${(error as Error).message})`, { cause: error }));
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

/**
 * Opens (or creates) a relay mailbox file. An existing file is checked read-only first; a
 * damaged file, or an SQLite file of another application, throws `ERR_STORE_CORRUPT` with a
 * message that says so and leaves the file exactly as it was.
 */
export function openSqliteMailboxStore(path: string): SqliteMailboxStore {
  const size = statSync(path, { throwIfNoEntry: false })?.size ?? 0;
  if (size > 0) validateExisting(path);
  const db = new Database(path);
  try {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === 0) db.pragma('auto_vacuum = FULL');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    // The WAL counts towards the disk bound: checkpoint every 1 MiB and truncate it back to 1 MiB
    // after a checkpoint (a snapshot commit writes its whole payload to the WAL first).
    db.pragma('wal_autocheckpoint = 256');
    db.pragma('journal_size_limit = 1048576');
    const migrate = db.transaction(() => {
      const v = db.pragma('user_version', { simple: true }) as number;
      if (v > MAILBOX_SCHEMA_VERSION) throw new StoreVersionError(path, v, MAILBOX_SCHEMA_VERSION);
      if (v === MAILBOX_SCHEMA_VERSION) return;
      db.exec(SCHEMA);
      db.pragma(`application_id = ${MAILBOX_APPLICATION_ID}`);
      db.pragma(`user_version = ${MAILBOX_SCHEMA_VERSION}`);
    });
    migrate.immediate();
  } catch (error) {
    db.close();
    if (isCorruption(error)) throw new StoreCorruptError(path, `damaged mailbox file (${(error as Error).message}); ${HINT}`, { cause: error });
    throw error;
  }
  return new SqliteMailboxStore(db, path);
}
