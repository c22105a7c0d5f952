// A DocStore on SQLite-in-OPFS (@sqlite.org/sqlite-wasm, the "opfs-sahpool" VFS), for the
// store-choice benchmark only (bench/browser-stores.ts): the same tables as @rhizome/store-sqlite
// (`docs`, `updates` WITHOUT ROWID), one SQLite transaction per `append`, synchronous like the
// Node store. Not shipped, not a product: it leaves out what the real stores add (format checks,
// compare-and-swap compaction, the watch of other handles), none of which is on the measured paths.
import type { Database as SqliteDb, PreparedStatement, SAHPoolUtil } from '@sqlite.org/sqlite-wasm';
import type { DocStore, StoredDoc, StoreStats } from '@rhizome/core';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS docs (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    snapshot     BLOB,
    snapshot_seq INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE IF NOT EXISTS updates (
    doc  INTEGER NOT NULL REFERENCES docs(id),
    seq  INTEGER NOT NULL,
    data BLOB    NOT NULL,
    PRIMARY KEY (doc, seq)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
`;

/** `PRAGMA journal_mode` of the benchmark store (WAL with `locking_mode = EXCLUSIVE`). */
export type OpfsJournal = 'TRUNCATE' | 'PERSIST' | 'WAL';

/** `PRAGMA synchronous` of the benchmark store: FULL syncs (SyncAccessHandle.flush) at every commit. */
export type OpfsSynchronous = 'FULL' | 'NORMAL' | 'OFF';

/**
 * SQLite in OPFS through a sahpool VFS; every write is in the file when the call returns. With
 * `synchronous = FULL` every commit also flushes the file to disk; with `OFF` none does, and
 * {@link flush} commits once with FULL (which flushes the whole file): IndexedDB's relaxed
 * commits with a strict flush(), in SQLite.
 */
export class OpfsSqliteStore implements DocStore {
  readonly #db: SqliteDb;
  readonly #synchronous: OpfsSynchronous;
  readonly #insUpdate: PreparedStatement;
  #begin!: PreparedStatement;
  #commit!: PreparedStatement;
  readonly #docIds = new Map<string, { id: number; lastSeq: number }>();

  constructor(pool: SAHPoolUtil, file: string, synchronous: OpfsSynchronous = 'FULL', journal: OpfsJournal = 'TRUNCATE') {
    this.#db = new pool.OpfsSAHPoolDb(file);
    this.#synchronous = synchronous;
    try {
      // WAL needs shared memory, which no OPFS VFS has, unless the connection holds the file alone
      // (locking_mode EXCLUSIVE), which a sahpool connection does anyway.
      if (journal === 'WAL') this.#db.exec('PRAGMA locking_mode = EXCLUSIVE');
      this.#db.exec(`PRAGMA journal_mode = ${journal}; PRAGMA synchronous = ${synchronous};`);
      this.#db.exec(SCHEMA);
      this.#insUpdate = this.#db.prepare('INSERT INTO updates (doc, seq, data) VALUES (?, ?, ?)');
      this.#begin = this.#db.prepare('BEGIN IMMEDIATE');
      this.#commit = this.#db.prepare('COMMIT');
    } catch (error) {
      this.#db.close();
      throw error;
    }
    this.#db.exec({
      sql: 'SELECT d.id, d.name, max(d.snapshot_seq, coalesce((SELECT max(seq) FROM updates WHERE doc = d.id), 0)) FROM docs d',
      rowMode: 'array',
      callback: (row) => {
        const [id, name, lastSeq] = row as [number, string, number];
        this.#docIds.set(name, { id, lastSeq });
      },
    });
  }

  #doc(name: string): { id: number; lastSeq: number } {
    let doc = this.#docIds.get(name);
    if (!doc) {
      this.#db.exec({ sql: 'INSERT INTO docs (name) VALUES (?)', bind: [name] });
      doc = { id: Number(this.#db.selectValue('SELECT last_insert_rowid()')), lastSeq: 0 };
      this.#docIds.set(name, doc);
    }
    return doc;
  }

  load(docId: string): StoredDoc {
    const doc = this.#docIds.get(docId);
    if (!doc) return { snapshot: null, updates: [], lastSeq: 0 };
    const snapshot = this.#db.selectValue('SELECT snapshot FROM docs WHERE id = ?', [doc.id]);
    const updates: Uint8Array[] = [];
    const stmt = this.#db.prepare('SELECT data FROM updates WHERE doc = ? ORDER BY seq');
    try {
      stmt.bind([doc.id]);
      while (stmt.step()) updates.push(stmt.get(0) as Uint8Array);
    } finally {
      stmt.finalize();
    }
    return { snapshot: snapshot instanceof Uint8Array ? snapshot : null, updates, lastSeq: doc.lastSeq };
  }

  append(docId: string, updates: readonly Uint8Array[]): number {
    if (updates.length === 0) return this.#docIds.get(docId)?.lastSeq ?? 0;
    // Prepared BEGIN/COMMIT (as better-sqlite3 does): the hot path parses no SQL.
    this.#begin.stepReset();
    const doc = this.#doc(docId);
    let seq = doc.lastSeq;
    try {
      for (const update of updates) this.#insUpdate.bind([doc.id, ++seq, update]).stepReset();
      this.#commit.stepReset();
    } catch (error) {
      this.#insUpdate.reset();
      this.#db.exec('ROLLBACK');
      throw error;
    }
    doc.lastSeq = seq;
    return seq;
  }

  compact(docId: string, snapshot: Uint8Array, throughSeq: number): void {
    this.#db.transaction('IMMEDIATE', () => {
      const doc = this.#doc(docId);
      this.#db.exec({ sql: 'DELETE FROM updates WHERE doc = ? AND seq <= ?', bind: [doc.id, throughSeq] });
      this.#db.exec({ sql: 'UPDATE docs SET snapshot = ?, snapshot_seq = max(snapshot_seq, ?) WHERE id = ?', bind: [snapshot, throughSeq, doc.id] });
    });
  }

  stats(docId: string): StoreStats {
    const doc = this.#docIds.get(docId);
    if (!doc) return { updates: 0, updateBytes: 0, snapshotBytes: 0, lastSeq: 0 };
    let updates = 0;
    let updateBytes = 0;
    let snapshotBytes = 0;
    this.#db.exec({
      sql: 'SELECT count(*), coalesce(sum(length(data)), 0), (SELECT coalesce(length(snapshot), 0) FROM docs WHERE id = ?1) FROM updates WHERE doc = ?1',
      bind: [doc.id],
      rowMode: 'array',
      callback: (row) => {
        [updates, updateBytes, snapshotBytes] = row as [number, number, number];
      },
    });
    return { updates, updateBytes, snapshotBytes, lastSeq: doc.lastSeq };
  }

  /** Resolves once every committed write is on disk (at once when every commit syncs). */
  flush(): Promise<void> {
    if (this.#synchronous !== 'FULL') {
      this.#db.exec('PRAGMA synchronous = FULL');
      try {
        this.#db.exec({ sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('flushedAt', ?)", bind: [Date.now()] });
      } finally {
        this.#db.exec(`PRAGMA synchronous = ${this.#synchronous}`);
      }
    }
    return Promise.resolve();
  }

  docIds(): string[] {
    return [...this.#docIds.keys()];
  }

  close(): void {
    for (const stmt of [this.#insUpdate, this.#begin, this.#commit]) stmt.finalize();
    this.#db.close();
  }
}
