import { accessSync, closeSync, constants as fsConstants, existsSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  ClosedError,
  InvalidArgumentError,
  StoreConflictError,
  StoreCorruptError,
  StoreIOError,
  StoreReadOnlyError,
  StoreUnavailableError,
  StoreVersionError,
  type DocStore,
  type StoredDoc,
  type StoreStats,
} from '@rhizome/core';
import { APPLICATION_ID, MAX_DOC, MAX_SEQ, MIGRATIONS, SEQ_BITS, type Migration } from './schema.js';
import { CheckpointRequests } from './checkpointer.js';

/** A log numbered up to {@link MAX_SEQ} (2^44 - 1) takes no more rows: not reachable in practice (13 years at 40k/s). */
function seqsExhausted(path: string, docId: string): StoreIOError {
  return new StoreIOError(path, 'SEQ_EXHAUSTED', `the log of '${docId}' is full: its sequence numbers end at ${MAX_SEQ}`);
}

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * SQLite `synchronous` level. `'normal'` (default) with WAL survives a killed process
   * without losing a committed transaction; a power loss or OS crash may lose the last
   * transactions since the previous checkpoint (the file stays consistent). `'full'` fsyncs
   * the WAL on every commit and survives power loss too, at a large cost in write throughput.
   */
  synchronous?: 'normal' | 'full';
  /**
   * Integrity check run on an existing file before it is used: `'quick'` (default,
   * `PRAGMA quick_check`, reads the whole file once) or `'none'` (header and schema checks only;
   * damage deeper in the file is then reported by the first read that meets it).
   */
  integrityCheck?: 'quick' | 'none';
  /** How long a writer waits for another process's lock, in ms (default 5000). */
  busyTimeoutMs?: number;
  /**
   * Open an existing file for reading only: nothing is ever written to it (no migration, no
   * checkpoint), and `append`/`compact` throw `StoreReadOnlyError` (`ERR_STORE_READ_ONLY`).
   * Without it, a file that cannot be written is refused at open with that error.
   */
  readOnly?: boolean;
  /**
   * Hold the file for this store alone while it is open (default `false`): SQLite's
   * `locking_mode=EXCLUSIVE`, taken at open and kept until `close()`. A commit then takes no file
   * locks (six `fcntl` calls fewer per transaction) and `append` numbers its updates from memory
   * without the file checking the number (a shared store checks it in its INSERT), which makes one
   * write about a third cheaper (BENCHMARKS.md § Issue 12, Session 8 (puts)). Same durability:
   * every append is still committed to the WAL before it returns.
   *
   * The price: no other connection, in this process or another, can read or write the file
   * meanwhile. Another process that opens it (`rhizome put --db FILE` beside an app, `sqlite3`, a
   * second `openDatabase`) fails with `StoreIOError` (`ERR_STORE_IO`, reason `SQLITE_BUSY`), and
   * an exclusive open of a file another connection holds fails the same way after
   * `busyTimeoutMs`. The lock dies with the process (a killed process leaves a normal file).
   * Not with `readOnly`.
   *
   * A NEW file made by an exclusive store gets 1 KiB pages ({@link EXCLUSIVE_NEW_PAGE_SIZE})
   * instead of SQLite's 4 KiB: a commit of one small update writes one page to the WAL, so a
   * quarter of the bytes per commit (BENCHMARKS.md § Issue 12, Session 9 (puts)). The page size
   * is the file's for good; an existing file keeps its own, and any connection opens either.
   */
  exclusive?: boolean;
}

const SQLITE_MAGIC = 'SQLite format 3\0';
/** Page size of a new file made by an exclusive store (see {@link SqliteStoreOptions.exclusive}). */
export const EXCLUSIVE_NEW_PAGE_SIZE = 1024;
/**
 * The WAL SQLite's automatic checkpoint lets grow, in bytes: its default (1,000 pages) for the
 * default 4 KiB pages. A file of smaller pages gets as many more pages per checkpoint
 * (`wal_autocheckpoint = WAL_CHECKPOINT_BYTES / page_size`), so that one small commit per
 * macrotask (one WAL frame each) checkpoints — two fsyncs — every ~4,000 commits rather than every
 * 1,000 (BENCHMARKS.md § Issue 12, Session 10 (puts)). The window a power loss can take with
 * `synchronous: 'normal'` is the same 4 MiB of WAL as for a file of 4 KiB pages.
 */
export const WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024;
const DEFAULT_BUSY_TIMEOUT_MS = 5000;
/** Longest a closing store waits for a checkpoint of its file running on the checkpoint thread. */
const CHECKPOINT_SETTLE_MS = 30_000;
/**
 * WAL a shared store lets grow before it checkpoints the file itself, which starts the WAL over
 * (see `SqliteStore#look`): the WAL file of a store that never pauses stays below about this,
 * and twice this at most (past it the store waits for the checkpoint thread). It is also the
 * connection's `journal_size_limit`: a WAL started over is cut back to this size, so that the
 * file's size says how far the WAL has grown since (it is read, not estimated).
 */
export const OWN_CHECKPOINT_BYTES = 4 * WAL_CHECKPOINT_BYTES;
/**
 * How often (in bytes of WAL, estimated from the commits: each commit's bytes plus one page) a
 * shared store looks at its WAL file's real size: one `stat` per ~256 small commits.
 */
const WAL_LOOK_BYTES = WAL_CHECKPOINT_BYTES / 4;

interface DocRow {
  id: number;
  last_seq: number;
}

/**
 * A writable store's view of one document: its row id and last sequence number. Exact for an
 * exclusive store (nobody else writes); a guess for a shared one, which its numbered append
 * checks against the file (see {@link SqliteStore.append}).
 */
interface HeldDoc {
  readonly id: number;
  seq: number;
}

interface SnapshotRow {
  id: number;
  snapshot: Buffer | null;
  last_seq: number;
}

interface DocStatsRow {
  id: number;
  snapshot_bytes: number;
  last_seq: number;
}

interface StatsRow {
  n: number;
  bytes: number;
}

type Sqlite = Database.Database;

function sqliteCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

function isCorruptionError(error: unknown): boolean {
  const code = sqliteCode(error);
  return code !== undefined && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

const IO_MESSAGES: ReadonlyArray<[prefix: string, message: string]> = [
  ['SQLITE_FULL', 'disk full: the write was not committed'],
  ['SQLITE_IOERR', 'I/O error on the database file'],
  [
    'SQLITE_BUSY',
    'the file stayed locked by another connection beyond the busy timeout (a store opened with exclusive: true holds its file until it closes)',
  ],
  ['SQLITE_LOCKED', 'the file is locked'],
  [
    'SQLITE_CANTOPEN',
    'cannot open the file or its -wal/-shm side files (SQLite reads a WAL-mode file only where it can create those beside it)',
  ],
  ['SQLITE_PERM', 'permission denied'],
  ['SQLITE_NOMEM', 'SQLite ran out of memory'],
];

/**
 * The typed error for an SQLite failure: `StoreCorruptError`, `StoreReadOnlyError`,
 * `StoreIOError` (disk full, I/O, lock, ...), or the error itself when it is none of these.
 */
function typedError(path: string, error: unknown): unknown {
  const code = sqliteCode(error);
  if (code === undefined) return error;
  const message = (error as Error).message;
  if (isCorruptionError(error)) return new StoreCorruptError(path, `damaged database file (${message})`, { cause: error });
  if (code.startsWith('SQLITE_READONLY')) {
    return new StoreReadOnlyError(path, `the file cannot be written (${message}; ${code})`, { cause: error });
  }
  const known = IO_MESSAGES.find(([prefix]) => code.startsWith(prefix));
  if (known) return new StoreIOError(path, code, `${known[1]}: ${message}`, { cause: error });
  // Any other SQLite failure on statements this store prepared itself (a schema error, a broken
  // constraint or index) means the file is not what Rhizome wrote.
  return new StoreCorruptError(path, `unexpected SQLite error on a Rhizome store (${message}; ${code})`, { cause: error });
}

/** A BLOB read from the file, or `StoreCorruptError` when the cell holds another type. */
function blob(path: string, value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new StoreCorruptError(path, `${what} is not a BLOB (found ${value === null ? 'NULL' : typeof value})`);
  }
  return view(value);
}

/** A sequence number read from the file, or `StoreCorruptError`. */
function seqOf(path: string, value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new StoreCorruptError(path, `${what} is not a sequence number (found ${String(value)})`);
  }
  return value;
}

/** The errno code of a failed fs call (`'EACCES'`, `'EROFS'`, ...). */
function errnoCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}

/**
 * Refuses a file this process cannot write, before SQLite opens it: SQLite would otherwise fall
 * back to a read-only connection, accept the open, and fail every write later (issue 10, defect
 * 4). The directory must be writable too, unless both side files already exist and are
 * writable: SQLite creates `-wal` and `-shm` next to the file.
 */
function assertWritable(path: string, exists: boolean): void {
  if (exists) {
    try {
      accessSync(path, fsConstants.W_OK);
    } catch (error) {
      const code = errnoCode(error);
      throw new StoreReadOnlyError(
        path,
        code === 'EROFS' ? 'the file is on a read-only file system' : `the file is not writable (${code}); open it with readOnly: true to read it`,
        { cause: error },
      );
    }
  }
  try {
    accessSync(dirname(path), fsConstants.W_OK);
  } catch (error) {
    const sides = [`${path}-wal`, `${path}-shm`];
    const sidesWritable = sides.every((f) => {
      try {
        accessSync(f, fsConstants.W_OK);
        return true;
      } catch {
        return false;
      }
    });
    if (exists && sidesWritable) return;
    const code = errnoCode(error);
    throw new StoreReadOnlyError(
      path,
      code === 'EROFS'
        ? 'the file is on a read-only file system'
        : `its directory is not writable (${code}): SQLite needs to create ${path}-wal and ${path}-shm there`,
      { cause: error },
    );
  }
}

function view(buffer: Uint8Array): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/**
 * Checks an existing, non-empty file without writing to it. First the 100-byte SQLite header
 * (magic, application id, schema version) with a plain read; then, through a read-only
 * connection, integrity, schema version and tables. Throws {@link StoreCorruptError} or
 * {@link StoreVersionError}; the file itself is not modified. (A read-only connection to a
 * WAL-mode file creates the `-wal`/`-shm` side files if missing; when the file is rejected they
 * are removed again.)
 */
function validateExisting(path: string, integrityCheck: 'quick' | 'none', supported: number, busyTimeoutMs: number): number {
  const header = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  let read: number;
  try {
    read = readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (read < header.length || header.toString('latin1', 0, 16) !== SQLITE_MAGIC) {
    throw new StoreCorruptError(path, 'not an SQLite database (bad or missing file header)');
  }
  const headerAppId = header.readUInt32BE(68);
  const headerVersion = header.readUInt32BE(60);
  if (headerAppId !== 0 && headerAppId !== APPLICATION_ID) {
    throw new StoreCorruptError(path, 'an SQLite database that is not a Rhizome store');
  }
  if (headerAppId === APPLICATION_ID && headerVersion > supported) {
    throw new StoreVersionError(path, headerVersion, supported);
  }

  const sideFiles = [`${path}-wal`, `${path}-shm`].filter((f) => !existsSync(f));
  let db: Sqlite | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: busyTimeoutMs });
    if (integrityCheck === 'quick') {
      const result = db.pragma('quick_check') as Array<{ quick_check: string }>;
      const problems = result.map((r) => r.quick_check).filter((r) => r !== 'ok');
      if (problems.length > 0) {
        throw new StoreCorruptError(path, `integrity check failed: ${problems.slice(0, 3).join('; ')}`);
      }
    }
    // Read again through SQLite: a committed change may still be in the WAL.
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    const tables = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all() as string[];
    if (appId !== APPLICATION_ID && (appId !== 0 || version !== 0 || tables.length > 0)) {
      throw new StoreCorruptError(path, 'an SQLite database that is not a Rhizome store');
    }
    if (version > supported) throw new StoreVersionError(path, version, supported);
    if (appId === APPLICATION_ID && version === 0 && tables.length > 0) {
      throw new StoreCorruptError(path, 'Rhizome store without a schema version');
    }
    if (appId === APPLICATION_ID && version >= 1) assertSchema(db, path, version);
    db.close();
    return version;
  } catch (error) {
    db?.close();
    removeEmptySideFiles(sideFiles);
    if (error instanceof StoreCorruptError || error instanceof StoreVersionError) throw error;
    if (isCorruptionError(error)) {
      throw new StoreCorruptError(path, `damaged database file (${(error as Error).message})`, { cause: error });
    }
    throw error;
  }
}

/** The tables and columns of each schema version (index = version - 1). */
const SCHEMA_COLUMNS: ReadonlyArray<Record<string, readonly string[]>> = [
  { docs: ['id', 'name', 'snapshot', 'snapshot_seq'], updates: ['doc', 'seq', 'data'] },
  { docs: ['id', 'name', 'snapshot', 'snapshot_seq'], updates: ['key', 'data'] },
];

/** Checks that the file has the tables and columns its version has; `StoreCorruptError` otherwise. */
function assertSchema(db: Sqlite, path: string, version: number): void {
  // A version this build has no columns for is a future migration (tests add them): it only adds.
  const columnsOf = SCHEMA_COLUMNS[Math.min(version, SCHEMA_COLUMNS.length) - 1]!;
  for (const [table, columns] of Object.entries(columnsOf)) {
    const found = new Set((db.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name));
    const missing = columns.filter((c) => !found.has(c));
    if (missing.length > 0) {
      throw new StoreCorruptError(path, found.size === 0 ? `table '${table}' is missing` : `table '${table}' lacks column(s) ${missing.join(', ')}`);
    }
  }
}

/** Removes `-wal`/`-shm` files the validation created, if the WAL holds nothing. */
function removeEmptySideFiles(created: readonly string[]): void {
  const wal = created.find((f) => f.endsWith('-wal'));
  if (wal === undefined || statSync(wal, { throwIfNoEntry: false })?.size !== 0) return;
  for (const file of created) rmSync(file, { force: true });
}

/** Runs every pending migration in one IMMEDIATE transaction (re-reading the version inside it). */
function migrate(db: Sqlite, path: string, migrations: readonly Migration[]): void {
  const target = migrations.length;
  const run = db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > target) throw new StoreVersionError(path, version, target);
    if (version === target) return;
    for (const migration of migrations) {
      if (migration.version <= version) continue;
      if (migration.refuse !== undefined) {
        const refused = db.prepare(migration.refuse).get() as { reason: string; message: string } | undefined;
        if (refused) throw new StoreIOError(path, refused.reason, `cannot migrate to schema version ${migration.version}: ${refused.message}`);
      }
      db.exec(migration.sql);
    }
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${target}`);
  });
  run.immediate();
}

/**
 * Runs the pending migrations of a file with no other connection open on it: on a connection of its
 * own in `locking_mode=EXCLUSIVE` (set before its first access, so its `BEGIN EXCLUSIVE` is refused
 * while any other connection, in any process, has the file open), closed again before the store
 * opens the file. A process of an older build that has the file open would otherwise find its
 * tables changed under it and fail every read and write (`no such column`) with its updates kept
 * in memory only. While the file is in use, this tries again (with jitter: two new openers of one
 * old file do not keep refusing each other) until another opener has migrated it, or
 * `busyTimeoutMs` has passed: then `StoreIOError` (`SQLITE_BUSY`), the file untouched.
 */
function migrateAlone(path: string, migrations: readonly Migration[], busyTimeoutMs: number): void {
  const deadline = Date.now() + busyTimeoutMs;
  for (;;) {
    const alone = new Database(path);
    try {
      alone.pragma('busy_timeout = 0');
      alone.pragma('locking_mode = EXCLUSIVE');
      let locked = false;
      try {
        alone.exec('BEGIN EXCLUSIVE');
        locked = true;
      } catch (error) {
        if (!sqliteCode(error)?.startsWith('SQLITE_BUSY')) throw error;
      }
      if (locked) {
        alone.exec('ROLLBACK');
        migrate(alone, path, migrations);
        return;
      }
    } finally {
      alone.close();
    }
    // In use: by an opener that migrates it (then it is current once that one is done), or by a
    // process that holds it open. Read the version as any connection would (waits out a lock).
    const remaining = deadline - Date.now();
    const check = new Database(path, { fileMustExist: true, timeout: Math.max(0, remaining) });
    let version: number;
    try {
      version = check.pragma('user_version', { simple: true }) as number;
    } finally {
      check.close();
    }
    if (version >= migrations.length) return;
    if (Date.now() >= deadline) {
      throw new StoreIOError(
        path,
        'SQLITE_BUSY',
        `the file is open in another connection, and upgrading it from schema version ${version} to ${migrations.length} needs it alone ` +
          '(an older Rhizome that has it open could not read the new format): close the other process and open it again',
      );
    }
    sleepMs(10 + Math.random() * 40);
  }
}

/** Blocks the thread for `ms` (an open is synchronous; only while another process holds the file). */
function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * A {@link DocStore} in one SQLite file (better-sqlite3, WAL): several documents per file keyed
 * by document id, an append-only update log per document plus a snapshot. Every method is
 * synchronous; `append` commits one transaction per call, so an append that returned is in the
 * WAL and survives the process being killed.
 *
 * Open it with {@link openSqliteStore}. The file's format is described in ARCHITECTURE.md § Storage.
 *
 * @example
 * ```ts
 * const store = openSqliteStore('app.db');
 * store.append('my-db', [update]);
 * const { snapshot, updates } = store.load('my-db');
 * store.close();
 * ```
 */
export class SqliteStore implements DocStore {
  /** Path of the database file (or `':memory:'`). */
  readonly path: string;
  /** True when opened with `readOnly: true`: writes throw `ERR_STORE_READ_ONLY`. */
  readonly readOnly: boolean;
  /** True when opened with `exclusive: true`: no other connection can open the file meanwhile. */
  readonly exclusive: boolean;
  readonly #db: Sqlite;
  #closed = false;
  /**
   * Writable stores: row id and last sequence number per document, kept from its first append on
   * (and, in a shared store, from a load). Exact in an exclusive store (no other connection can
   * write while the lock is held); in a shared store the number the next append tries first
   * (`#appendGuessed`). `null` for a read-only store.
   */
  readonly #held: Map<string, HeldDoc> | null;
  /** The row id of the document the last `#appendTx` wrote to (read once it returned). */
  #appendedId = 0;
  /**
   * A shared store on a file: its page size, and its WAL is checkpointed on the checkpoint thread
   * (checkpointer.ts) instead of inside a commit; 0 otherwise (exclusive, read-only, in memory:
   * SQLite's automatic checkpoint).
   */
  readonly #walPage: number;
  /** Bytes of WAL (estimated: each commit's bytes plus one page) until the next look at the WAL file ({@link #look}). */
  #walBudget = WAL_LOOK_BYTES;
  /** Bytes of WAL (estimated as above) since the last checkpoint the thread was asked for. */
  #sinceRequest = 0;
  /** The thread was asked for the checkpoint after which the store checkpoints the rest itself. */
  #catchUp = false;
  /** The store's checkpoint requests, from its first one on. */
  #checkpoints: CheckpointRequests | null = null;

  readonly #selDoc: Database.Statement<[string], DocRow>;
  readonly #insDoc: Database.Statement<[string], number>;
  readonly #insUpdate: Database.Statement<[number, number, Uint8Array], unknown>;
  readonly #insNext: Database.Statement<[number, number, number, number, number, number, string, Uint8Array], unknown>;
  readonly #selSnapshot: Database.Statement<[string], SnapshotRow>;
  readonly #selUpdates: Database.Statement<[{ doc: number }], Buffer>;
  readonly #selUpdatesSince: Database.Statement<[{ doc: number; seq: number }], Buffer>;
  readonly #delUpdates: Database.Statement<[{ doc: number; seq: number }], unknown>;
  readonly #setSnapshot: Database.Statement<[Uint8Array, number, number], unknown>;
  readonly #selSnapshotSeq: Database.Statement<[number], number>;
  readonly #selDocStats: Database.Statement<[string], DocStatsRow>;
  readonly #selStats: Database.Statement<[{ doc: number }], StatsRow>;
  readonly #selNames: Database.Statement<[], string>;

  readonly #appendTx: (docId: string, updates: readonly Uint8Array[]) => number;
  readonly #compactTx: (docId: string, snapshot: Uint8Array, throughSeq: number) => void;
  readonly #loadTx: (docId: string) => StoredDoc;
  readonly #loadSinceTx: (docId: string, afterSeq: number) => StoredDoc;

  /** @internal Use {@link openSqliteStore}: it validates the file before anything writes to it. */
  constructor(db: Sqlite, path: string, readOnly = false, exclusive = false, walPage = 0) {
    this.#db = db;
    this.path = path;
    this.readOnly = readOnly;
    this.exclusive = exclusive;
    this.#walPage = walPage;
    this.#held = readOnly ? null : new Map();
    // The last sequence number: the log's newest row, or `snapshot_seq` when the log is empty.
    // Every row in the log is numbered above `snapshot_seq` (appends number from the last sequence
    // number, and a compaction through n deletes the rows up to n and sets snapshot_seq to n), so
    // this is `max(snapshot_seq, max(seq))` without reading `snapshot_seq` when the log has rows:
    // that column is stored after the snapshot BLOB, and reading it walks the snapshot's overflow
    // pages (~160 µs per append with a 10 MB snapshot; BENCHMARKS.md § Issue 12, Session 8 (puts)).
    // `coalesce` stops at its first non-NULL argument.
    //
    // The log's rows of document d are the keys (d << 44) + seq, seq >= 1 (schema version 2,
    // schema.ts): one range of the table's rowid b-tree, read in seq order. Keys pass 2^53, so
    // they are computed and compared in SQL only; JavaScript sees seqs (< 2^44). better-sqlite3
    // binds a JavaScript number as REAL: `<<` makes an INTEGER of its operand, but `+` with a REAL
    // seq would make the key a REAL (rounded to even past 2^53, i.e. from document 512 on: rows
    // lost or refused), so a bound seq is CAST to INTEGER first.
    const lastSeq =
      `coalesce((SELECT key - (docs.id << ${SEQ_BITS}) FROM updates WHERE key > (docs.id << ${SEQ_BITS}) ` +
      `AND key < ((docs.id + 1) << ${SEQ_BITS}) ORDER BY key DESC LIMIT 1), snapshot_seq)`;
    const ofDoc = `key > (@doc << ${SEQ_BITS}) AND key < ((@doc + 1) << ${SEQ_BITS})`;
    this.#selDoc = db.prepare(`SELECT id, ${lastSeq} AS last_seq FROM docs WHERE name = ?`);
    this.#insDoc = db.prepare<[string], number>('INSERT INTO docs (name) VALUES (?) RETURNING id').pluck();
    this.#insUpdate = db.prepare(`INSERT INTO updates (key, data) VALUES ((? << ${SEQ_BITS}) + CAST(? AS INTEGER), ?)`);
    // A shared store's append numbered from memory (#appendGuessed): (doc, seq + 1) written only
    // if the document's last row is still (doc, seq) — the newest key below the end of its range,
    // one seek from that end, as cheap as looking the row up — and the document row is still this
    // name's. Otherwise `data` is NULL and the NOT NULL constraint refuses the row
    // (SQLITE_CONSTRAINT_NOTNULL). One autocommit statement: it takes the write lock before it
    // reads, so the check and the write see one state. (A VALUES row, not INSERT ... SELECT WHERE:
    // SQLite would stage the rows of a SELECT reading the table it inserts into in a temporary
    // table first.)
    this.#insNext = db.prepare(
      `INSERT INTO updates (key, data) VALUES ((? << ${SEQ_BITS}) + CAST(? AS INTEGER) + 1, ` +
        `CASE WHEN (SELECT key FROM updates WHERE key < ((? + 1) << ${SEQ_BITS}) ORDER BY key DESC LIMIT 1) = (? << ${SEQ_BITS}) + CAST(? AS INTEGER) ` +
        `AND EXISTS (SELECT 1 FROM docs WHERE id = ? AND name = ?) THEN ? END)`,
    );
    this.#selSnapshot = db.prepare(`SELECT id, snapshot, ${lastSeq} AS last_seq FROM docs WHERE name = ?`);
    this.#selUpdates = db.prepare<[{ doc: number }], Buffer>(`SELECT data FROM updates WHERE ${ofDoc} ORDER BY key`).pluck();
    this.#selUpdatesSince = db
      .prepare<[{ doc: number; seq: number }], Buffer>(
        `SELECT data FROM updates WHERE key > (@doc << ${SEQ_BITS}) + CAST(@seq AS INTEGER) AND key < ((@doc + 1) << ${SEQ_BITS}) ORDER BY key`,
      )
      .pluck();
    this.#delUpdates = db.prepare(`DELETE FROM updates WHERE key > (@doc << ${SEQ_BITS}) AND key <= (@doc << ${SEQ_BITS}) + CAST(@seq AS INTEGER)`);
    // snapshot_seq never goes down: a snapshot must encode the previous one (DocStore.compact).
    this.#setSnapshot = db.prepare('UPDATE docs SET snapshot = ?, snapshot_seq = max(snapshot_seq, ?) WHERE id = ?');
    this.#selSnapshotSeq = db.prepare<[number], number>('SELECT snapshot_seq FROM docs WHERE id = ?').pluck();
    this.#selDocStats = db.prepare(
      `SELECT id, coalesce(length(snapshot), 0) AS snapshot_bytes, ${lastSeq} AS last_seq FROM docs WHERE name = ?`,
    );
    this.#selStats = db.prepare(`SELECT count(*) AS n, coalesce(sum(length(data)), 0) AS bytes FROM updates WHERE ${ofDoc}`);
    this.#selNames = db.prepare<[], string>('SELECT name FROM docs ORDER BY id').pluck();

    const append = db.transaction((docId: string, updates: readonly Uint8Array[]): number => {
      // An exclusive store's numbers are exact; a shared store reads them from the file here.
      const held = this.exclusive ? this.#held!.get(docId) : undefined;
      const row = held === undefined ? this.#docRow(docId) : undefined;
      let seq = row === undefined ? held!.seq : seqOf(path, row.last_seq, `the last sequence number of '${docId}'`);
      const id = row === undefined ? held!.id : row.id;
      if (seq + updates.length > MAX_SEQ) throw seqsExhausted(path, docId);
      for (const update of updates) this.#insUpdate.run(id, ++seq, update);
      this.#appendedId = id;
      return seq;
    });
    this.#appendTx = (docId, updates) => append.immediate(docId, updates);

    // Compare-and-swap inside one IMMEDIATE transaction: a snapshot computed from an older read
    // than the stored one (another handle compacted past throughSeq meanwhile) would replace the
    // newer snapshot and lose what only that one holds, so it is refused (issue 10, defect 1).
    const compact = db.transaction((docId: string, snapshot: Uint8Array, throughSeq: number): void => {
      const row = this.#docRow(docId);
      if (throughSeq > row.last_seq) {
        throw new InvalidArgumentError(`compact: throughSeq ${throughSeq} is past the last sequence number ${row.last_seq}`);
      }
      const storedSeq = this.#selSnapshotSeq.get(row.id) ?? 0;
      if (storedSeq > throughSeq) {
        throw new StoreConflictError(
          this.path,
          `compact of '${docId}' through ${throughSeq} refused: another handle stored a snapshot through ${storedSeq} meanwhile`,
        );
      }
      this.#delUpdates.run({ doc: row.id, seq: throughSeq });
      this.#setSnapshot.run(snapshot, throughSeq, row.id);
    });
    this.#compactTx = (docId, snapshot, throughSeq) => compact.immediate(docId, snapshot, throughSeq);

    // A deferred (read) transaction: snapshot and log are read from one consistent state even
    // if another process compacts meanwhile.
    // Values are checked as they are read: a cell of another type (a file edited by hand, or
    // damaged) is ERR_STORE_CORRUPT, never a crash or a silently empty update.
    this.#loadTx = db.transaction((docId: string): StoredDoc => {
      const row = this.#selSnapshot.get(docId);
      if (!row) return { snapshot: null, updates: [], lastSeq: 0 };
      const stored = {
        snapshot: row.snapshot === null ? null : blob(path, row.snapshot, `the snapshot of '${docId}'`),
        updates: this.#selUpdates.all({ doc: row.id }).map((u, i) => blob(path, u, `update ${i + 1} of '${docId}'`)),
        lastSeq: seqOf(path, row.last_seq, `the last sequence number of '${docId}'`),
      };
      this.#guess(docId, row.id, stored.lastSeq);
      return stored;
    });
    this.#loadSinceTx = db.transaction((docId: string, afterSeq: number): StoredDoc => {
      const row = this.#selSnapshot.get(docId);
      if (!row) return { snapshot: null, updates: [], lastSeq: 0 };
      const snapshotSeq = seqOf(path, this.#selSnapshotSeq.get(row.id) ?? 0, `the snapshot sequence number of '${docId}'`);
      const stored = {
        snapshot: snapshotSeq > afterSeq && row.snapshot !== null ? blob(path, row.snapshot, `the snapshot of '${docId}'`) : null,
        updates: this.#selUpdatesSince.all({ doc: row.id, seq: afterSeq }).map((u, i) => blob(path, u, `update ${i + 1} after ${afterSeq} of '${docId}'`)),
        lastSeq: seqOf(path, row.last_seq, `the last sequence number of '${docId}'`),
      };
      this.#guess(docId, row.id, stored.lastSeq);
      return stored;
    });
  }

  /** The row of `docId`, created if missing. Call inside a write transaction. */
  #docRow(docId: string): DocRow {
    const row = this.#selDoc.get(docId);
    if (row) return row;
    const id = this.#insDoc.get(docId) as number;
    // Its log keys would overflow (schema.ts SEQ_BITS): thrown inside the transaction, so the row is not kept.
    if (id > MAX_DOC) throw new StoreIOError(this.path, 'DOCS_EXHAUSTED', `no room for document '${docId}': a file holds at most ${MAX_DOC} documents`);
    return { id, last_seq: 0 };
  }

  /** A shared store remembers what a read found as the number its next append tries first. */
  #guess(docId: string, id: number, seq: number): void {
    if (this.#held === null || this.exclusive) return;
    const held = this.#held.get(docId);
    if (held === undefined || held.id !== id) this.#held.set(docId, { id, seq });
    else held.seq = seq;
  }

  #guard<T>(fn: () => T): T {
    if (this.#closed) throw new ClosedError('store');
    try {
      return fn();
    } catch (error) {
      throw typedError(this.path, error);
    }
  }

  #assertWritable(): void {
    if (this.readOnly) throw new StoreReadOnlyError(this.path, 'the store was opened read-only');
  }

  load(docId: string): StoredDoc {
    assertDocId(docId);
    return this.#guard(() => this.#loadTx(docId));
  }

  append(docId: string, updates: readonly Uint8Array[]): number {
    assertDocId(docId);
    for (const update of updates) {
      if (!(update instanceof Uint8Array)) throw new InvalidArgumentError('append: every update must be a Uint8Array');
    }
    if (updates.length > 0) this.#assertWritable();
    const held = this.#held?.get(docId);
    if (held !== undefined) {
      if (this.exclusive) return this.#appendHeld(docId, held, updates);
      if (updates.length === 1) {
        const seq = this.#appendGuessed(docId, held, updates[0]!);
        if (seq !== 0) return seq;
      }
    }
    return this.#guard(() => {
      if (updates.length === 0) return this.#selDoc.get(docId)?.last_seq ?? 0;
      const seq = this.#appendTx(docId, updates);
      if (this.#walPage !== 0) {
        let bytes = 0;
        for (const update of updates) bytes += update.length;
        this.#wrote(bytes);
      }
      // From now on the next number of this document is taken from memory: exact when exclusive,
      // tried first and checked by the file when shared.
      const id = this.#appendedId;
      const known = this.#held?.get(docId);
      if (known !== undefined && known.id === id) known.seq = seq;
      else this.#held?.set(docId, { id, seq });
      return seq;
    });
  }

  /**
   * `append` of ONE update by a shared store to a document whose row id and last sequence number
   * it remembers (from its last append or read): one autocommit `INSERT` of `seq + 1` instead of
   * `BEGIN IMMEDIATE`, a read of the last number, the `INSERT` and `COMMIT` (about 3 µs of CPU
   * less; BENCHMARKS.md § Issue 12, Session 11 (puts2)). Other connections (other processes) may
   * write the file meanwhile, so the statement checks the guess against the file as it writes:
   * the document's last row must still be `seq` (another connection appended after it, or a
   * compaction through `seq` or later deleted it) and the document row must still be this name's.
   * When the guess fails nothing is written and this returns 0: `append` then numbers from the
   * file in its transaction, after the other connection's rows. Any other failure (a full disk, a
   * lock held past the busy timeout) is thrown typed, and the number in memory does not move.
   *
   * Why the last row, and not only `seq + 1` free: then `seq + 1` is above every number in the
   * log, as the transaction's number would be, whatever the log looks like below it — also when
   * rows in its middle are gone (a hand edit: no Rhizome API deletes anything but a prefix). And
   * `seq` being a row, not only the snapshot's number: a compaction through `seq` or later makes
   * the guess fail. An append numbered at or below what another process has read (`loadSince`
   * reads only past its last number) or compacted would never be seen by it, and its next
   * compaction would delete it (RELIABILITY.md § The store's sequence numbers).
   */
  #appendGuessed(docId: string, held: HeldDoc, update: Uint8Array): number {
    if (this.#closed) throw new ClosedError('store');
    if (held.seq >= MAX_SEQ) return 0;
    try {
      this.#insNext.run(held.id, held.seq, held.id, held.id, held.seq, held.id, docId, update);
    } catch (error) {
      const code = sqliteCode(error);
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_NOTNULL') return 0;
      throw typedError(this.path, error);
    }
    if (this.#walPage !== 0) this.#wrote(update.length);
    return ++held.seq;
  }

  /**
   * After a commit of `bytes` by a shared store on a file (counted as its bytes plus one page:
   * an estimate of what it adds to the WAL, which only paces the looks below). Every
   * {@link WAL_LOOK_BYTES} of it the store looks at the WAL ({@link #look}); while it catches up
   * (the thread's last checkpoint is running), it checks at every commit whether that has ended.
   */
  #wrote(bytes: number): void {
    const added = bytes + this.#walPage;
    this.#sinceRequest += added;
    if ((this.#walBudget -= added) > 0) {
      if (this.#catchUp && !this.#checkpoints!.busy) this.#ownCheckpoint();
      return;
    }
    this.#walBudget = WAL_LOOK_BYTES;
    this.#look();
  }

  /**
   * Where SQLite's automatic checkpoint would have run one inside a commit, every
   * {@link WAL_CHECKPOINT_BYTES} of WAL, the store asks the checkpoint thread for a passive
   * checkpoint: the copy into the main file and its two fsyncs happen beside the commits that
   * follow. But SQLite starts the WAL over only when a writer finds ALL of it copied, which a
   * checkpoint running beside a stream of commits never leaves behind. So the store reads the
   * WAL file's size — the real figure: SQLite cuts a WAL it starts over back to
   * `journal_size_limit` ({@link OWN_CHECKPOINT_BYTES}), so a larger file is a WAL that has grown
   * past it since — and once it is past {@link OWN_CHECKPOINT_BYTES} asks the thread once more
   * and, when that checkpoint has ended, checkpoints itself: it copies only what came since
   * (small, its fsyncs short), and the next commit starts the WAL over. Past twice that with the
   * thread's checkpoint still running (a slow disk, many stores on the thread), the store waits
   * for it and checkpoints itself, as SQLite would have inside the commit: the WAL stays bounded.
   * Without the thread (it failed), the store checkpoints itself every
   * {@link WAL_CHECKPOINT_BYTES}, as SQLite did.
   *
   * The estimate alone could not bound it: a commit writes whole pages, often two or three per
   * small update (BENCHMARKS.md § Session 15 (loose3)), and other connections write to the file too.
   */
  #look(): void {
    if (!CheckpointRequests.available) {
      if (this.#sinceRequest >= WAL_CHECKPOINT_BYTES) this.#ownCheckpoint();
      return;
    }
    const requests = (this.#checkpoints ??= new CheckpointRequests(this.path));
    const wal = statSync(`${this.path}-wal`, { throwIfNoEntry: false })?.size ?? 0;
    if (requests.busy) {
      if (wal > 2 * OWN_CHECKPOINT_BYTES) {
        requests.settle(CHECKPOINT_SETTLE_MS);
        this.#ownCheckpoint();
      }
      return;
    }
    if (this.#catchUp) {
      this.#ownCheckpoint();
    } else if (wal > OWN_CHECKPOINT_BYTES) {
      if (requests.request()) {
        this.#sinceRequest = 0;
        this.#catchUp = true;
      } else {
        this.#ownCheckpoint();
      }
    } else if (this.#sinceRequest >= WAL_CHECKPOINT_BYTES && requests.request()) {
      this.#sinceRequest = 0;
    }
  }

  /**
   * A passive checkpoint on the store's own connection (see {@link #look}). Another process's
   * checkpoint running makes it copy nothing (SQLite answers busy): the WAL file then stays
   * large, and the next look tries again.
   */
  #ownCheckpoint(): void {
    this.#sinceRequest = 0;
    this.#catchUp = false;
    try {
      this.#db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // As SQLite's automatic checkpoint: a failed checkpoint fails no commit (the WAL keeps it).
    }
  }

  /**
   * `append` of an exclusive store to a document it has appended to before: no read of the last
   * sequence number, and one update is one autocommit INSERT (its own transaction, as atomic as
   * `BEGIN IMMEDIATE ... COMMIT`, one statement fewer). The number moves only once the write
   * committed: a failed write (a full disk) changes nothing.
   */
  #appendHeld(docId: string, held: HeldDoc, updates: readonly Uint8Array[]): number {
    if (this.#closed) throw new ClosedError('store');
    if (updates.length === 0) return held.seq;
    if (held.seq + updates.length > MAX_SEQ) throw seqsExhausted(this.path, docId);
    try {
      if (updates.length === 1) this.#insUpdate.run(held.id, held.seq + 1, updates[0]!);
      else return (held.seq = this.#appendTx(docId, updates));
    } catch (error) {
      throw typedError(this.path, error);
    }
    return ++held.seq;
  }

  compact(docId: string, snapshot: Uint8Array, throughSeq: number): void {
    assertDocId(docId);
    if (!(snapshot instanceof Uint8Array)) throw new InvalidArgumentError('compact: snapshot must be a Uint8Array');
    if (!Number.isSafeInteger(throughSeq) || throughSeq < 0) {
      throw new InvalidArgumentError(`compact: throughSeq must be a non-negative integer, got ${String(throughSeq)}`);
    }
    this.#assertWritable();
    this.#guard(() => this.#compactTx(docId, snapshot, throughSeq));
    if (this.#walPage !== 0) this.#wrote(snapshot.length);
  }

  /**
   * The log after `afterSeq` (and the snapshot, when another handle compacted past `afterSeq`),
   * read in one transaction: how a binding catches up with what other processes appended.
   */
  loadSince(docId: string, afterSeq: number): StoredDoc {
    assertDocId(docId);
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) {
      throw new InvalidArgumentError(`loadSince: afterSeq must be a non-negative integer, got ${String(afterSeq)}`);
    }
    return this.#guard(() => this.#loadSinceTx(docId, afterSeq));
  }

  /**
   * SQLite's `PRAGMA data_version`: changes when another connection (another process) commits to
   * the file, not for this store's own writes. One cheap query; poll it to notice foreign writes.
   */
  dataVersion(): number {
    return this.#guard(() => this.#db.pragma('data_version', { simple: true }) as number);
  }

  stats(docId: string): StoreStats {
    assertDocId(docId);
    return this.#guard(() => {
      const row = this.#selDocStats.get(docId);
      if (!row) return { updates: 0, updateBytes: 0, snapshotBytes: 0, lastSeq: 0 };
      const { n, bytes } = this.#selStats.get({ doc: row.id }) as StatsRow;
      const lastSeq = seqOf(this.path, row.last_seq, `the last sequence number of '${docId}'`);
      return { updates: n, updateBytes: Number(bytes), snapshotBytes: Number(row.snapshot_bytes), lastSeq };
    });
  }

  docIds(): string[] {
    return this.#guard(() => this.#selNames.all());
  }

  /** Schema version of the open file (`SCHEMA_VERSION` once opened by this build). */
  get schemaVersion(): number {
    return this.#guard(() => this.#db.pragma('user_version', { simple: true }) as number);
  }

  /**
   * Copies the WAL into the main file and truncates the WAL (`wal_checkpoint(TRUNCATE)`).
   * SQLite checkpoints by itself; call this e.g. after a large compaction to give disk space back.
   */
  checkpoint(): void {
    this.#guard(() => this.#db.pragma('wal_checkpoint(TRUNCATE)'));
    this.#sinceRequest = 0;
  }

  /**
   * Resolves once no checkpoint of this file asked of the checkpoint thread is running (at once
   * when none is), without blocking: `close()` right after has nothing to wait for.
   * `Database.close()` awaits it before it closes the store.
   */
  async settle(): Promise<void> {
    await this.#checkpoints?.settled(CHECKPOINT_SETTLE_MS);
  }

  /**
   * Checkpoints the WAL into the file (a passive checkpoint: it never waits for other processes'
   * readers or writers, who keep the WAL going), then closes. A checkpoint of the file still
   * running on the checkpoint thread is waited for first, blocking (as long as SQLite's own
   * checkpoint would have blocked the commit that ran it, at most 30 s): `await settle()` first
   * to wait without blocking, as `Database.close()` does. Later calls throw `ERR_CLOSED`;
   * idempotent. The handle is released even when the checkpoint fails, and then this throws
   * `StoreIOError` (e.g. `reason` `'SQLITE_FULL'`): every committed write is still safe in the
   * WAL and is replayed by the next open, but the WAL keeps its disk space until a checkpoint
   * succeeds (the next open tries one).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // A checkpoint of this file still running on the checkpoint thread ends first (it takes as
    // long as the fsyncs SQLite's own checkpoint made inside a commit): after close() no
    // connection of this process is left on the file.
    this.#checkpoints?.settle(CHECKPOINT_SETTLE_MS);
    let failure: unknown;
    if (!this.readOnly && this.path !== ':memory:') {
      try {
        this.#db.pragma('wal_checkpoint(PASSIVE)');
      } catch (error) {
        failure = typedError(this.path, error);
      }
    }
    this.#db.close();
    if (failure !== undefined) throw failure;
  }
}

function assertDocId(docId: unknown): asserts docId is string {
  if (typeof docId !== 'string') throw new InvalidArgumentError('document id must be a string');
}

/**
 * Opens (creating if missing) a Rhizome store file. An existing file is checked before anything
 * writes to it: a non-SQLite or damaged file throws {@link StoreCorruptError}
 * (`ERR_STORE_CORRUPT`), a file from a newer Rhizome throws {@link StoreVersionError}
 * (`ERR_STORE_VERSION`), and in both cases the file is left byte-for-byte as it was. Then WAL
 * mode is switched on and pending schema migrations run.
 *
 * `':memory:'` gives an SQLite store in memory (mostly for tests; see also `openStore`).
 *
 * @example
 * ```ts
 * const store = openSqliteStore('./data/app.db');
 * ```
 */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
  try {
    return openWithMigrations(path, options, MIGRATIONS);
  } catch (error) {
    throw nativeModuleError(path, error) ?? error;
  }
}

/**
 * better-sqlite3's native module loads on the first open; one built for another Node (another
 * `NODE_MODULE_VERSION`: in the Rhizome repository `npm install` builds it for the Node 22 it
 * provides, so a script run with an older `node` from the PATH meets this) fails to load with
 * Node's bare `ERR_DLOPEN_FAILED`. That becomes a {@link StoreUnavailableError} that says what
 * happened and what to run instead; `null` for any other error.
 * @internal
 */
export function nativeModuleError(path: string, error: unknown): StoreUnavailableError | null {
  if ((error as { code?: unknown } | null)?.code !== 'ERR_DLOPEN_FAILED') return null;
  const message = error instanceof Error ? error.message : String(error);
  const built = /using\s+NODE_MODULE_VERSION (\d+)/.exec(message)?.[1];
  const cause = built === undefined
    ? `better-sqlite3's native module does not load in Node ${process.version} (${message.split('\n')[0]})`
    : `better-sqlite3's native module was built for another Node (NODE_MODULE_VERSION ${built}; this is Node ${process.version}, NODE_MODULE_VERSION ${process.versions.modules})`;
  return new StoreUnavailableError(
    path,
    `${cause}: run with the Node it was built for — in the Rhizome repository, the one \`npm install\` provides (\`npx node app.mjs\`, npm scripts, \`npx rhizome\`) — or rebuild it for this Node in your app (\`npm rebuild better-sqlite3\`)`,
    { cause: error },
  );
}

/**
 * {@link openSqliteStore} with an explicit migration list (whose length is the schema version
 * it supports). Not exported from the package: tests use it to run a future migration.
 * @internal
 */
export function openWithMigrations(path: string, options: SqliteStoreOptions, migrations: readonly Migration[]): SqliteStore {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new InvalidArgumentError(`migration ${i} has version ${m.version}, expected ${i + 1}`);
  });
  if (typeof path !== 'string' || path === '') throw new InvalidArgumentError('store path must be a non-empty string');
  const integrityCheck = options.integrityCheck ?? 'quick';
  const synchronous = options.synchronous ?? 'normal';
  if (integrityCheck !== 'quick' && integrityCheck !== 'none') {
    throw new InvalidArgumentError(`integrityCheck must be 'quick' or 'none'`);
  }
  if (synchronous !== 'normal' && synchronous !== 'full') {
    throw new InvalidArgumentError(`synchronous must be 'normal' or 'full'`);
  }
  const readOnly = options.readOnly ?? false;
  if (typeof readOnly !== 'boolean') throw new InvalidArgumentError('readOnly must be a boolean');
  const exclusive = options.exclusive ?? false;
  if (typeof exclusive !== 'boolean') throw new InvalidArgumentError('exclusive must be a boolean');
  if (exclusive && readOnly) throw new InvalidArgumentError('exclusive needs a writable store, not readOnly');
  const inMemory = path === ':memory:';
  if (readOnly && inMemory) throw new InvalidArgumentError('readOnly needs a file path, not :memory:');
  let sideFiles: string[] = [];
  /** The file is new (missing or empty): this connection makes it. */
  let newFile = false;
  /** The schema version the file had when it was checked (0: new or empty). */
  let fileVersion = 0;
  if (!inMemory) {
    const stat = statSync(path, { throwIfNoEntry: false });
    newFile = !(stat && stat.size > 0);
    if (stat && !stat.isFile()) throw new InvalidArgumentError(`${path} is not a regular file`);
    if (!stat && !statSync(dirname(path), { throwIfNoEntry: false })?.isDirectory()) {
      throw new InvalidArgumentError(`cannot create ${path}: its directory does not exist`);
    }
    if (readOnly && !(stat && stat.size > 0)) throw new InvalidArgumentError(`readOnly: ${path} does not exist or is empty`);
    // Before anything else touches the file: a read-only open would create side files.
    if (!readOnly) assertWritable(path, stat !== undefined);
    sideFiles = [`${path}-wal`, `${path}-shm`].filter((f) => !existsSync(f));
    if (stat && stat.size > 0) {
      try {
        fileVersion = validateExisting(path, integrityCheck, migrations.length, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
      } catch (error) {
        throw typedError(path, error);
      }
    }
  }

  if (readOnly) return openReadOnly(path, options, migrations.length, sideFiles);
  let db: Sqlite | undefined;
  try {
    // An existing store of an older version: no other connection may have it open while it is
    // migrated. (A new or empty file is made on the connection below: no older build reads it.)
    if (!inMemory && fileVersion >= 1 && fileVersion < migrations.length) {
      migrateAlone(path, migrations, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
    }
    db = new Database(path);
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS}`);
    // Before anything is written: the page size of a new file is fixed by its first table.
    if (exclusive && newFile) db.pragma(`page_size = ${EXCLUSIVE_NEW_PAGE_SIZE}`);
    if (!inMemory) {
      const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
      if (mode.toLowerCase() !== 'wal') throw new StoreCorruptError(path, `could not switch to WAL mode (got ${mode})`);
    }
    db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    migrate(db, path, migrations);
    if (!inMemory) checkpointLeftover(db, path);
    if (exclusive) {
      scaleAutocheckpoint(db);
      holdExclusively(db);
      return new SqliteStore(db, path, false, true);
    }
    if (inMemory) return new SqliteStore(db, path);
    // A shared store on a file: checkpoints on the checkpoint thread (checkpointer.ts), not inside
    // a commit; SQLite's own automatic checkpoint is off on this connection (only: other
    // connections to the file keep theirs).
    db.pragma('wal_autocheckpoint = 0');
    // A WAL started over is cut back to this size: a larger file is a WAL grown past it since (SqliteStore#look).
    db.pragma(`journal_size_limit = ${OWN_CHECKPOINT_BYTES}`);
    return new SqliteStore(db, path, false, false, db.pragma('page_size', { simple: true }) as number);
  } catch (error) {
    db?.close();
    if (!inMemory) removeEmptySideFiles(sideFiles);
    throw typedError(path, error);
  }
}

/** {@link WAL_CHECKPOINT_BYTES}: pages smaller than 4 KiB checkpoint after as many bytes of WAL as 4 KiB pages do. */
function scaleAutocheckpoint(db: Sqlite): void {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  if (pageSize > 0 && pageSize < 4096) db.pragma(`wal_autocheckpoint = ${Math.ceil(WAL_CHECKPOINT_BYTES / pageSize)}`);
}

/**
 * A WAL left by a session whose checkpoint failed (a full disk) still holds its disk space: give
 * it back now that the file could be opened. Passive (never waits for other processes); a
 * failure here is not an error (the data is safe in the WAL).
 */
function checkpointLeftover(db: Sqlite, path: string): void {
  if ((statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0) === 0) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Still no space, or busy: the next close or SQLite's own auto-checkpoint tries again.
  }
}

/**
 * `exclusive: true`: switches the connection (already in WAL mode, so the WAL index stays in the
 * `-shm` file and a killed process leaves a file any connection can open) to
 * `locking_mode=EXCLUSIVE` and takes the lock now with an empty write transaction, so that
 * another connection is refused from the open on rather than from our first write.
 */
function holdExclusively(db: Sqlite): void {
  db.pragma('locking_mode = EXCLUSIVE');
  db.exec('BEGIN IMMEDIATE; COMMIT');
}

/** `readOnly: true`: a read-only connection; the schema must be current (a migration writes). */
function openReadOnly(path: string, options: SqliteStoreOptions, supported: number, sideFiles: string[]): SqliteStore {
  let db: Sqlite | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version !== supported) {
      throw new StoreReadOnlyError(path, `schema version ${version} needs a migration to ${supported}, which writes: open it writable once`);
    }
    // Side files this connection created stay: another process may open the file meanwhile and
    // share them, so deleting them at close could split two connections' WAL index.
    return new SqliteStore(db, path, true);
  } catch (error) {
    db?.close();
    removeEmptySideFiles(sideFiles);
    throw typedError(path, error);
  }
}
