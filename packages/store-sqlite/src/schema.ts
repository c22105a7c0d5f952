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
 */
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
];

/** The schema version this build of Rhizome writes and understands. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;
