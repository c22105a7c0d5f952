/**
 * The on-disk schema of a Rhizome store file and its forward migrations.
 *
 * A Rhizome file is an SQLite database whose header carries `application_id` =
 * {@link APPLICATION_ID} and `user_version` = the schema version. Migration `n` takes a file
 * from version `n - 1` to version `n`; all pending migrations run in one IMMEDIATE transaction
 * at open, so a crash mid-migration leaves the file at its old version.
 */

/** SQLite `application_id` of a Rhizome store: the ASCII bytes `Rhzm`. */
export const APPLICATION_ID = 0x52687a6d;

/** One forward migration: the SQL that takes the schema from `version - 1` to `version`. */
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
  /**
   * A query run (in the migration's transaction) before `sql`: a row `(reason, message)` means
   * the file cannot take this migration, which is then refused with `StoreIOError` (`reason`)
   * and the file stays at its old version.
   */
  readonly refuse?: string;
}

/**
 * Every migration, in order. Append new ones at the end; never edit a released one.
 *
 * Version 1:
 * - `docs`: one row per document (database id). `id` is a small integer key used by `updates`;
 *   `name` is the document id; `snapshot` a Yjs (v1) update that encodes every update with
 *   `seq <= snapshot_seq` (NULL before the first compaction).
 * - `updates`: the log after the snapshot, one Yjs (v1) update per row, keyed `(doc, seq)` in
 *   one b-tree (WITHOUT ROWID), so an append touches one index and the document row is not
 *   rewritten. The last sequence number of a document is
 *   `max(snapshot_seq, max(seq) of its updates)`: it never goes down, even when compaction
 *   empties the log.
 *
 * Version 2:
 * - `updates` is `(key INTEGER PRIMARY KEY, data)` with `key = (doc << 44) + seq`: the same order
 *   and ranges as `(doc, seq)`, in a rowid table (see the migration).
 */
/**
 * Version 2 keys the log by one integer: `key = (doc << 44) + seq` (see {@link SEQ_BITS}).
 * The seq of a row is `key - (doc << 44)`; SQL computes both (a key passes 2^53, past what a
 * JavaScript number holds exactly), so no key is ever read into JavaScript.
 */
export const SEQ_BITS = 44;
/** The largest sequence number a version-2 log holds (2^44 - 1: 13 years of 40,000 updates a second). */
export const MAX_SEQ = 2 ** SEQ_BITS - 1;
/** The largest document number (`docs.id`) a version-2 log holds: 2^19 - 2 (its range's end, `(doc + 1) << 44`, must stay below 2^63). */
export const MAX_DOC = 2 ** (63 - SEQ_BITS) - 2;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'docs and updates tables',
    sql: `
      CREATE TABLE docs (
        id           INTEGER PRIMARY KEY,
        name         TEXT    NOT NULL UNIQUE,
        snapshot     BLOB,
        snapshot_seq INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE updates (
        doc  INTEGER NOT NULL REFERENCES docs(id),
        seq  INTEGER NOT NULL,
        data BLOB    NOT NULL,
        PRIMARY KEY (doc, seq)
      ) WITHOUT ROWID;
    `,
  },
  {
    // Version 2 (issue 12, session 10): the log as a rowid table. An append to the WITHOUT ROWID
    // table that filled a leaf rebalanced it with its siblings (SQLite's quick balance is for rowid
    // tables only): ~2.4 WAL frames per one-update commit; a rowid table appended at its end adds
    // a page instead: ~3 µs less CPU per commit (BENCHMARKS.md § Issue 12, Session 10 (puts)).
    // One document's rows are one key range, in seq order, so every query is a range of the
    // table's own b-tree, as before.
    version: 2,
    description: 'the log keyed by one integer, (doc << 44) + seq, in a rowid table',
    // Version 1 numbered documents and seqs without a bound. A key (doc << 44) + seq is exact and
    // in its document's range only for doc <= MAX_DOC and 1 <= seq <= MAX_SEQ: document 2^19 - 1
    // would read an empty log (its range's end wraps past 2^63), higher numbers wrap onto other
    // documents' keys (2^20 + 1 onto 1's), a seq of 2^44 lands in the next document. Such a file
    // is refused, left at version 1, rather than migrated into rows nobody reads back.
    refuse: `
      SELECT reason, message FROM (
        SELECT 'DOCS_EXHAUSTED' AS reason,
               'document ' || quote(name) || ' is numbered ' || id || ', outside 0..${MAX_DOC}, which version 2 of the file format holds' AS message
          FROM docs WHERE id < 0 OR id > ${MAX_DOC}
        UNION ALL
        SELECT 'SEQ_EXHAUSTED',
               'document number ' || doc || ' has an update numbered ' || seq || ', outside 1..${MAX_SEQ}, which version 2 of the file format holds'
          FROM updates WHERE seq < 1 OR seq > ${MAX_SEQ}
      ) LIMIT 1
    `,
    sql: `
      CREATE TABLE updates_v2 (
        key  INTEGER PRIMARY KEY,
        data BLOB    NOT NULL
      );
      INSERT INTO updates_v2 (key, data) SELECT (doc << 44) + seq, data FROM updates ORDER BY doc, seq;
      DROP TABLE updates;
      ALTER TABLE updates_v2 RENAME TO updates;
    `,
  },
];

/** The schema version this build of Rhizome writes and understands. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;
