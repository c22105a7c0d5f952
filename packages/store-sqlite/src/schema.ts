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
 *   `name` is the document id; `last_seq` the sequence number of the newest appended update
 *   (it never goes down, even when compaction empties the log); `snapshot` a Yjs update that
 *   encodes every update with `seq <= snapshot_seq`.
 * - `updates`: the log after the snapshot, `(doc, seq)` unique, `data` one Yjs (v1) update.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'docs and updates tables',
    sql: `
      CREATE TABLE docs (
        id           INTEGER PRIMARY KEY,
        name         TEXT    NOT NULL UNIQUE,
        last_seq     INTEGER NOT NULL DEFAULT 0,
        snapshot     BLOB,
        snapshot_seq INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE updates (
        doc  INTEGER NOT NULL REFERENCES docs(id),
        seq  INTEGER NOT NULL,
        data BLOB    NOT NULL,
        PRIMARY KEY (doc, seq)
      );
    `,
  },
];

/** The schema version this build of Rhizome writes and understands. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;
