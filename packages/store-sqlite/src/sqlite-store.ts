import { closeSync, existsSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  ClosedError,
  InvalidArgumentError,
  StoreCorruptError,
  StoreVersionError,
  type DocStore,
  type StoredDoc,
  type StoreStats,
} from '@rhizome/core';
import { APPLICATION_ID, MIGRATIONS, type Migration } from './schema.js';

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
}

const SQLITE_MAGIC = 'SQLite format 3\0';
const DEFAULT_BUSY_TIMEOUT_MS = 5000;

interface DocRow {
  id: number;
  last_seq: number;
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

function isCorruptionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
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
function validateExisting(path: string, integrityCheck: 'quick' | 'none', supported: number): void {
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
    db = new Database(path, { readonly: true, fileMustExist: true });
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
    db.close();
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
      if (migration.version > version) db.exec(migration.sql);
    }
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${target}`);
  });
  run.immediate();
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
  readonly #db: Sqlite;
  #closed = false;

  readonly #selDoc: Database.Statement<[string], DocRow>;
  readonly #insDoc: Database.Statement<[string], number>;
  readonly #insUpdate: Database.Statement<[number, number, Uint8Array], unknown>;
  readonly #selSnapshot: Database.Statement<[string], SnapshotRow>;
  readonly #selUpdates: Database.Statement<[number], Buffer>;
  readonly #delUpdates: Database.Statement<[number, number], unknown>;
  readonly #setSnapshot: Database.Statement<[Uint8Array, number, number], unknown>;
  readonly #selDocStats: Database.Statement<[string], DocStatsRow>;
  readonly #selStats: Database.Statement<[number], StatsRow>;
  readonly #selNames: Database.Statement<[], string>;

  readonly #appendTx: (docId: string, updates: readonly Uint8Array[]) => number;
  readonly #compactTx: (docId: string, snapshot: Uint8Array, throughSeq: number) => void;
  readonly #loadTx: (docId: string) => StoredDoc;

  /** @internal Use {@link openSqliteStore}: it validates the file before anything writes to it. */
  constructor(db: Sqlite, path: string) {
    this.#db = db;
    this.path = path;
    const lastSeq = 'max(snapshot_seq, coalesce((SELECT max(seq) FROM updates WHERE doc = docs.id), 0))';
    this.#selDoc = db.prepare(`SELECT id, ${lastSeq} AS last_seq FROM docs WHERE name = ?`);
    this.#insDoc = db.prepare<[string], number>('INSERT INTO docs (name) VALUES (?) RETURNING id').pluck();
    this.#insUpdate = db.prepare('INSERT INTO updates (doc, seq, data) VALUES (?, ?, ?)');
    this.#selSnapshot = db.prepare(`SELECT id, snapshot, ${lastSeq} AS last_seq FROM docs WHERE name = ?`);
    this.#selUpdates = db.prepare<[number], Buffer>('SELECT data FROM updates WHERE doc = ? ORDER BY seq').pluck();
    this.#delUpdates = db.prepare('DELETE FROM updates WHERE doc = ? AND seq <= ?');
    // snapshot_seq never goes down: a snapshot must encode the previous one (DocStore.compact).
    this.#setSnapshot = db.prepare('UPDATE docs SET snapshot = ?, snapshot_seq = max(snapshot_seq, ?) WHERE id = ?');
    this.#selDocStats = db.prepare(
      `SELECT id, coalesce(length(snapshot), 0) AS snapshot_bytes, ${lastSeq} AS last_seq FROM docs WHERE name = ?`,
    );
    this.#selStats = db.prepare('SELECT count(*) AS n, coalesce(sum(length(data)), 0) AS bytes FROM updates WHERE doc = ?');
    this.#selNames = db.prepare<[], string>('SELECT name FROM docs ORDER BY id').pluck();

    const append = db.transaction((docId: string, updates: readonly Uint8Array[]): number => {
      const row = this.#docRow(docId);
      let seq = row.last_seq;
      for (const update of updates) this.#insUpdate.run(row.id, ++seq, update);
      return seq;
    });
    this.#appendTx = (docId, updates) => append.immediate(docId, updates);

    const compact = db.transaction((docId: string, snapshot: Uint8Array, throughSeq: number): void => {
      const row = this.#docRow(docId);
      if (throughSeq > row.last_seq) {
        throw new InvalidArgumentError(`compact: throughSeq ${throughSeq} is past the last sequence number ${row.last_seq}`);
      }
      this.#delUpdates.run(row.id, throughSeq);
      this.#setSnapshot.run(snapshot, throughSeq, row.id);
    });
    this.#compactTx = (docId, snapshot, throughSeq) => compact.immediate(docId, snapshot, throughSeq);

    // A deferred (read) transaction: snapshot and log are read from one consistent state even
    // if another process compacts meanwhile.
    this.#loadTx = db.transaction((docId: string): StoredDoc => {
      const row = this.#selSnapshot.get(docId);
      if (!row) return { snapshot: null, updates: [], lastSeq: 0 };
      return {
        snapshot: row.snapshot ? view(row.snapshot) : null,
        updates: this.#selUpdates.all(row.id).map(view),
        lastSeq: row.last_seq,
      };
    });
  }

  /** The row of `docId`, created if missing. Call inside a write transaction. */
  #docRow(docId: string): DocRow {
    const row = this.#selDoc.get(docId);
    if (row) return row;
    return { id: this.#insDoc.get(docId) as number, last_seq: 0 };
  }

  #guard<T>(fn: () => T): T {
    if (this.#closed) throw new ClosedError('store');
    try {
      return fn();
    } catch (error) {
      if (isCorruptionError(error)) {
        throw new StoreCorruptError(this.path, `damaged database file (${(error as Error).message})`, { cause: error });
      }
      throw error;
    }
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
    return this.#guard(() => {
      if (updates.length === 0) return this.#selDoc.get(docId)?.last_seq ?? 0;
      return this.#appendTx(docId, updates);
    });
  }

  compact(docId: string, snapshot: Uint8Array, throughSeq: number): void {
    assertDocId(docId);
    if (!(snapshot instanceof Uint8Array)) throw new InvalidArgumentError('compact: snapshot must be a Uint8Array');
    if (!Number.isSafeInteger(throughSeq) || throughSeq < 0) {
      throw new InvalidArgumentError(`compact: throughSeq must be a non-negative integer, got ${String(throughSeq)}`);
    }
    this.#guard(() => this.#compactTx(docId, snapshot, throughSeq));
  }

  stats(docId: string): StoreStats {
    assertDocId(docId);
    return this.#guard(() => {
      const row = this.#selDocStats.get(docId);
      if (!row) return { updates: 0, updateBytes: 0, snapshotBytes: 0, lastSeq: 0 };
      const { n, bytes } = this.#selStats.get(row.id) as StatsRow;
      return { updates: n, updateBytes: bytes, snapshotBytes: row.snapshot_bytes, lastSeq: row.last_seq };
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
  }

  /** Closes the file (checkpointing the WAL). Later calls throw `ERR_CLOSED`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
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
  return openWithMigrations(path, options, MIGRATIONS);
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
  const inMemory = path === ':memory:';
  if (!inMemory) {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat && !stat.isFile()) throw new InvalidArgumentError(`${path} is not a regular file`);
    if (!stat && !statSync(dirname(path), { throwIfNoEntry: false })?.isDirectory()) {
      throw new InvalidArgumentError(`cannot create ${path}: its directory does not exist`);
    }
    if (stat && stat.size > 0) validateExisting(path, integrityCheck, migrations.length);
  }

  const db = new Database(path);
  try {
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS}`);
    if (!inMemory) {
      const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
      if (mode.toLowerCase() !== 'wal') throw new StoreCorruptError(path, `could not switch to WAL mode (got ${mode})`);
    }
    db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    migrate(db, path, migrations);
    return new SqliteStore(db, path);
  } catch (error) {
    db.close();
    if (isCorruptionError(error)) {
      throw new StoreCorruptError(path, `damaged database file (${(error as Error).message})`, { cause: error });
    }
    throw error;
  }
}
