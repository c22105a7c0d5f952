import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore, StoreConflictError, StoreCorruptError, StoreVersionError } from '@rhizome/core';
import { runStoreContract } from '@rhizome/core/testing';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, SqliteStore, openSqliteStore, openStore, type Migration } from './index.js';
import { openWithMigrations } from './sqlite-store.js';
import { MAX_DOC, MAX_SEQ } from './schema.js';

const root = mkdtempSync(join(tmpdir(), 'rhizome-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let fileCounter = 0;
/** A new file at `path` as version 1 of this store made them (its schema, WAL, ids), opened raw to fill in. */
function openVersion1(path: string): Database.Database {
  const raw = new Database(path);
  raw.pragma('journal_mode = WAL');
  raw.exec(MIGRATIONS[0]!.sql);
  raw.pragma(`application_id = ${APPLICATION_ID}`);
  raw.pragma('user_version = 1');
  return raw;
}

function freshPath(): string {
  return join(root, `store-${fileCounter++}.db`);
}

runStoreContract('SqliteStore (file)', () => {
  const path = freshPath();
  return {
    store: openSqliteStore(path),
    reopen: () => openSqliteStore(path),
    dispose: () => {
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
    },
  };
}, { persistent: true });

runStoreContract('SqliteStore (:memory:)', () => ({ store: openSqliteStore(':memory:') }));

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Opening `path` must throw `code`, and leave the file and its directory exactly as they were. */
function expectRejected(path: string, code: string, errorClass: typeof StoreCorruptError | typeof StoreVersionError): void {
  const before = sha256(path);
  const dir = readdirSync(join(path, '..')).sort();
  let thrown: unknown;
  try {
    openSqliteStore(path).close();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(errorClass);
  expect((thrown as { code: string }).code).toBe(code);
  expect(sha256(path)).toBe(before);
  expect(readdirSync(join(path, '..')).sort()).toEqual(dir);
  // A second attempt gives the same answer (nothing was half-written by the first).
  expect(() => openSqliteStore(path)).toThrow(errorClass);
  expect(sha256(path)).toBe(before);
}

/** A valid store file with enough rows to span many pages, closed cleanly (WAL checkpointed). */
function makeStoreFile(dir: string): string {
  const path = join(dir, 'valid.db');
  const store = openSqliteStore(path);
  for (let i = 0; i < 200; i++) store.append(`doc-${i % 3}`, [new Uint8Array(200).fill(i & 0xff)]);
  store.close();
  expect(existsSync(`${path}-wal`)).toBe(false);
  return path;
}

describe('SqliteStore files that cannot be used', () => {
  /** Each case in its own directory, so the directory listing before/after is the case's own. */
  function dir(): string {
    return mkdtempSync(join(root, 'bad-'));
  }

  it('a text file fails with ERR_STORE_CORRUPT and stays untouched', () => {
    const path = join(dir(), 'notes.txt');
    writeFileSync(path, 'this is not a database, just some notes\n'.repeat(50));
    expectRejected(path, 'ERR_STORE_CORRUPT', StoreCorruptError);
  });

  it('a short non-empty file fails with ERR_STORE_CORRUPT', () => {
    const path = join(dir(), 'short.db');
    writeFileSync(path, 'SQLite format 3\0');
    expectRejected(path, 'ERR_STORE_CORRUPT', StoreCorruptError);
  });

  it('a store file with damaged pages fails with ERR_STORE_CORRUPT and stays untouched', () => {
    const path = makeStoreFile(dir());
    const bytes = readFileSync(path);
    expect(bytes.length).toBeGreaterThan(4096 * 4);
    // Overwrite the third page (a b-tree page of the updates table) with garbage.
    for (let i = 4096 * 2; i < 4096 * 3; i++) bytes[i] = (i * 7919) & 0xff;
    writeFileSync(path, bytes);
    expectRejected(path, 'ERR_STORE_CORRUPT', StoreCorruptError);
  });

  it('a truncated store file fails with ERR_STORE_CORRUPT and stays untouched', () => {
    const path = makeStoreFile(dir());
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    expectRejected(path, 'ERR_STORE_CORRUPT', StoreCorruptError);
  });

  it('a store file with a damaged header fails with ERR_STORE_CORRUPT', () => {
    const path = makeStoreFile(dir());
    const bytes = readFileSync(path);
    bytes.writeUInt16BE(1000, 16); // page size that is not a power of two
    writeFileSync(path, bytes);
    expectRejected(path, 'ERR_STORE_CORRUPT', StoreCorruptError);
  });

  it('an SQLite database of another application fails with ERR_STORE_CORRUPT and stays untouched', () => {
    const path = join(dir(), 'other.db');
    const other = new Database(path);
    other.exec('CREATE TABLE people (name TEXT); INSERT INTO people VALUES (\'ada\')');
    other.close();
    expectRejected(path, 'ERR_STORE_CORRUPT', StoreCorruptError);
  });

  it('a WAL-mode SQLite database of another application is rejected without leaving -wal/-shm files behind', () => {
    const path = join(dir(), 'other-wal.db');
    const other = new Database(path);
    other.pragma('journal_mode = WAL');
    other.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    other.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
    expectRejected(path, 'ERR_STORE_CORRUPT', StoreCorruptError);
  });

  it('a store file with a newer schema version fails with ERR_STORE_VERSION and stays untouched', () => {
    const path = makeStoreFile(dir());
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    let thrown: unknown;
    try {
      openSqliteStore(path);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(StoreVersionError);
    expect((thrown as StoreVersionError).found).toBe(SCHEMA_VERSION + 1);
    expect((thrown as StoreVersionError).supported).toBe(SCHEMA_VERSION);
    expectRejected(path, 'ERR_STORE_VERSION', StoreVersionError);
  });

  it('a newer schema version still in the WAL (not checkpointed) is found too', () => {
    const path = makeStoreFile(dir());
    const raw = new Database(path);
    raw.pragma('wal_autocheckpoint = 0');
    raw.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
    // The header of the main file still says SCHEMA_VERSION: the change is only in the WAL.
    expect(readFileSync(path).readUInt32BE(60)).toBe(SCHEMA_VERSION);
    try {
      const before = sha256(path);
      expect(() => openSqliteStore(path)).toThrow(StoreVersionError);
      expect(sha256(path)).toBe(before);
    } finally {
      raw.close();
    }
  });

  it('a directory path, or a file in a missing directory, fails with ERR_INVALID_ARGUMENT', () => {
    const d = dir();
    expect(() => openSqliteStore(d)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => openSqliteStore(join(d, 'missing', 'x.db'))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(readdirSync(d)).toEqual([]);
  });
});

describe('SqliteStore schema and files', () => {
  it('stamps new files with the application id and the schema version, in WAL mode', () => {
    const path = freshPath();
    openSqliteStore(path).close();
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(raw.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all()).toEqual([
      'docs',
      'updates',
    ]);
    raw.close();
  });

  it('adopts an empty file and an empty SQLite database (forward migration from version 0)', () => {
    const empty = freshPath();
    writeFileSync(empty, '');
    const a = openSqliteStore(empty);
    expect(a.schemaVersion).toBe(SCHEMA_VERSION);
    a.append('d', [Uint8Array.of(1)]);
    a.close();

    const blank = freshPath();
    const raw = new Database(blank);
    raw.pragma('journal_mode = DELETE');
    raw.exec('VACUUM');
    raw.close();
    const b = openSqliteStore(blank);
    expect(b.schemaVersion).toBe(SCHEMA_VERSION);
    expect(b.load('d').lastSeq).toBe(0);
    b.close();
  });

  it('runs a future migration forward on an existing file, keeping its data; the older build then refuses the file', () => {
    const path = freshPath();
    const v1 = openSqliteStore(path);
    v1.append('d', [Uint8Array.of(1), Uint8Array.of(2)]);
    v1.compact('d', Uint8Array.of(9), 1);
    v1.close();

    const next: Migration = {
      version: SCHEMA_VERSION + 1,
      description: 'test: a meta table and a column',
      sql: "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); ALTER TABLE docs ADD COLUMN created_at INTEGER; INSERT INTO meta VALUES ('k', 'v');",
    };
    const v2 = openWithMigrations(path, {}, [...MIGRATIONS, next]);
    expect(v2.schemaVersion).toBe(SCHEMA_VERSION + 1);
    expect(v2.load('d')).toMatchObject({ lastSeq: 2 });
    expect(v2.load('d').updates.map((x) => x[0])).toEqual([2]);
    v2.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare("SELECT value FROM meta WHERE key = 'k'").pluck().get()).toBe('v');
    raw.close();

    expectRejected(path, 'ERR_STORE_VERSION', StoreVersionError);
  });

  it('a file of more than 512 documents: every row of a later document is kept, read in order, and cut exactly (log keys past 2^53 stay exact integers); shared and exclusive', () => {
    for (const exclusive of [false, true]) {
      const path = freshPath();
      const store = openSqliteStore(path, { exclusive });
      // Documents numbered 1..700: from 512 on, (doc << 44) + seq is above 2^53, where a key
      // computed from numbers bound as REAL would be rounded to an even value.
      for (let i = 1; i <= 700; i++) store.append(`d${i}`, [Uint8Array.of(0)]);
      for (const name of ['d600', 'd700']) {
        for (let seq = 2; seq <= 9; seq++) store.append(name, [Uint8Array.of(seq)]);
        expect(store.load(name).updates.map((u) => u[0])).toEqual([0, 2, 3, 4, 5, 6, 7, 8, 9]);
        expect(store.load(name).lastSeq).toBe(9);
        expect(store.loadSince(name, 4).updates.map((u) => u[0])).toEqual([5, 6, 7, 8, 9]);
        expect(store.stats(name)).toMatchObject({ updates: 9, lastSeq: 9 });
        store.compact(name, Uint8Array.of(1), 5);
        expect(store.load(name).updates.map((u) => u[0])).toEqual([6, 7, 8, 9]);
      }
      store.close();
      const again = openSqliteStore(path, { exclusive });
      expect(again.load('d700').updates.map((u) => u[0])).toEqual([6, 7, 8, 9]);
      expect(again.load('d699').updates.map((u) => u[0])).toEqual([0]);
      again.close();
    }
  });

  it('the last document number a file takes still reads its log back; the next is refused with DOCS_EXHAUSTED', () => {
    const path = freshPath();
    openSqliteStore(path).close();
    const raw = new Database(path);
    // Skip to the end of the numbers: the next documents are MAX_DOC and MAX_DOC + 1.
    raw.prepare("INSERT INTO docs (id, name, snapshot, snapshot_seq) VALUES (?, 'filler', NULL, 0)").run(MAX_DOC - 1);
    raw.close();
    const store = openSqliteStore(path);
    expect(store.append('last', [Uint8Array.of(1), Uint8Array.of(2)])).toBe(2);
    expect(store.load('last').updates.map((u) => u[0])).toEqual([1, 2]);
    expect(store.stats('last')).toMatchObject({ updates: 2, lastSeq: 2 });
    expect(() => store.append('over', [Uint8Array.of(3)])).toThrow(expect.objectContaining({ code: 'ERR_STORE_IO', reason: 'DOCS_EXHAUSTED' }));
    store.close();
  });

  it('migrates a version-1 file (the log as (doc, seq) WITHOUT ROWID) to version 2 keeping every row, seq and snapshot; shared and exclusive', () => {
    for (const exclusive of [false, true]) {
      const path = freshPath();
      // A file as version 1 of this store wrote it: its schema, two documents, a snapshot, a log.
      const raw = openVersion1(path);
      raw.prepare("INSERT INTO docs (id, name, snapshot, snapshot_seq) VALUES (1, 'a', ?, 3), (2, 'b', NULL, 0)").run(Buffer.from([9, 9]));
      const row = raw.prepare('INSERT INTO updates (doc, seq, data) VALUES (?, ?, ?)');
      for (const seq of [4, 5, 6]) row.run(1, seq, Buffer.from([1, seq]));
      for (let seq = 1; seq <= 300; seq++) row.run(2, seq, Buffer.from([2, seq & 0xff, seq >> 8]));
      raw.close();

      const store = openSqliteStore(path, { exclusive });
      expect(store.schemaVersion).toBe(SCHEMA_VERSION);
      const a = store.load('a');
      expect(Buffer.from(a.snapshot!)).toEqual(Buffer.from([9, 9]));
      expect(a.updates.map((u) => [...u])).toEqual([[1, 4], [1, 5], [1, 6]]);
      expect(a.lastSeq).toBe(6);
      const b = store.load('b');
      expect(b.lastSeq).toBe(300);
      expect(b.updates).toHaveLength(300);
      expect(b.updates.every((u, i) => u[0] === 2 && u[1] === ((i + 1) & 0xff) && u[2] === (i + 1) >> 8)).toBe(true);
      expect(store.loadSince('b', 298).updates.map((u) => u[1])).toEqual([299 & 0xff, 300 & 0xff]);
      expect(store.stats('a')).toEqual({ updates: 3, updateBytes: 6, snapshotBytes: 2, lastSeq: 6 });
      // Numbers continue; compaction cuts one document's log only.
      expect(store.append('a', [Uint8Array.of(7)])).toBe(7);
      expect(store.append('b', [Uint8Array.of(8), Uint8Array.of(9)])).toBe(302);
      store.compact('b', Uint8Array.of(5), 301);
      expect(store.load('b')).toMatchObject({ lastSeq: 302 });
      expect(store.load('b').updates.map((u) => [...u])).toEqual([[9]]);
      expect(store.load('a').updates).toHaveLength(4);
      store.close();
      const check = new Database(path, { readonly: true });
      expect((check.pragma('table_info(updates)') as Array<{ name: string }>).map((c) => c.name)).toEqual(['key', 'data']);
      check.close();
    }
  });

  it('a version-1 file with a document number or sequence number that version-2 keys cannot hold is refused, left as it was (DOCS_EXHAUSTED, SEQ_EXHAUSTED)', () => {
    // Version 1 numbered documents without a bound. Document 2^19 - 1's log would read as empty
    // after migration (its range's end wraps past 2^63), 2^19 and above wrap onto other
    // documents' keys (2^20 + 1 shares document 1's), a seq of 2^44 lands in the next document.
    const cases: Array<[doc: number, seq: number, reason: string]> = [
      [MAX_DOC + 1, 1, 'DOCS_EXHAUSTED'],
      [MAX_DOC + 2, 1, 'DOCS_EXHAUSTED'],
      [2 ** 20 + 1, 4, 'DOCS_EXHAUSTED'],
      [2, 2 ** 44, 'SEQ_EXHAUSTED'],
    ];
    for (const [doc, seq, reason] of cases) {
      const path = freshPath();
      const raw = openVersion1(path);
      raw.prepare("INSERT INTO docs (id, name) VALUES (1, 'a'), (?, 'big')").run(doc);
      const row = raw.prepare('INSERT INTO updates (doc, seq, data) VALUES (?, ?, ?)');
      for (const s of [1, 2, 3]) row.run(1, s, Buffer.from([1, s]));
      row.run(doc, seq, Buffer.from([2]));
      raw.pragma('wal_checkpoint(TRUNCATE)');
      raw.close();
      const before = sha256(path);
      expect(() => openSqliteStore(path), `doc ${doc} seq ${seq}`).toThrow(expect.objectContaining({ code: 'ERR_STORE_IO', reason, path }));
      expect(sha256(path)).toBe(before);
      const check = new Database(path, { readonly: true });
      expect(check.pragma('user_version', { simple: true })).toBe(1);
      expect(check.prepare('SELECT count(*) FROM updates').pluck().get()).toBe(4);
      check.close();
    }
  });

  it('a failing migration leaves the file at its old version, usable', () => {
    const path = freshPath();
    const v1 = openSqliteStore(path);
    v1.append('d', [Uint8Array.of(1)]);
    v1.close();
    const broken: Migration = {
      version: SCHEMA_VERSION + 1,
      description: 'test: fails half way',
      sql: 'CREATE TABLE half (x); INSERT INTO no_such_table VALUES (1);',
    };
    expect(() => openWithMigrations(path, {}, [...MIGRATIONS, broken])).toThrow();
    const again = openSqliteStore(path);
    expect(again.schemaVersion).toBe(SCHEMA_VERSION);
    expect(again.load('d').updates).toHaveLength(1);
    again.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'half'").pluck().get()).toBe(0);
    raw.close();
  });

  it('two stores on one file (two processes, say) number appends from the file, not from memory', () => {
    const path = freshPath();
    const a = openSqliteStore(path);
    const b = openSqliteStore(path);
    a.append('d', [Uint8Array.of(1)]);
    b.append('d', [Uint8Array.of(2)]);
    expect(a.append('d', [Uint8Array.of(3)])).toBe(3);
    expect(b.load('d').updates.map((x) => x[0])).toEqual([1, 2, 3]);
    b.compact('d', Uint8Array.of(9), 2);
    expect(a.load('d').updates.map((x) => x[0])).toEqual([3]);
    a.close();
    b.close();
  });

  // A shared store appends one update as one INSERT of its remembered number + 1, which the file
  // checks (sqlite-store.ts #appendGuessed): each case below makes that guess wrong in one way.
  it('a shared store whose remembered number is stale numbers from the file: another handle appended, compacted through it, or appended and compacted past it', () => {
    const path = freshPath();
    const a = openSqliteStore(path);
    const b = openSqliteStore(path);
    const values = (store: SqliteStore, afterSeq = 0): number[] => store.loadSince('d', afterSeq).updates.map((x) => x[0]!);
    expect(a.append('d', [Uint8Array.of(1)])).toBe(1);
    expect(a.append('d', [Uint8Array.of(2)])).toBe(2);
    // b appended 3: a's guess (3) is taken.
    expect(b.append('d', [Uint8Array.of(3)])).toBe(3);
    expect(a.append('d', [Uint8Array.of(4)])).toBe(4);
    // b compacted through a's last number (its rows deleted, the snapshot at 4): 5 is still next.
    expect(b.append('d', [Uint8Array.of(5)])).toBe(5);
    expect(a.append('d', [Uint8Array.of(6)])).toBe(6);
    b.compact('d', Uint8Array.of(99), 6);
    expect(a.append('d', [Uint8Array.of(7)])).toBe(7);
    // b appended 8 and compacted through it: a's guess (8) is free again, but below b's snapshot,
    // where b's reads after 8 would never see it and b's next compaction would delete it.
    expect(b.append('d', [Uint8Array.of(8)])).toBe(8);
    b.compact('d', Uint8Array.of(98), 8);
    expect(a.append('d', [Uint8Array.of(9)])).toBe(9);
    expect(values(b, 8)).toEqual([9]);
    // A batch from a stale guess: numbered from the file, atomically.
    expect(b.append('d', [Uint8Array.of(10)])).toBe(10);
    expect(a.append('d', [Uint8Array.of(11), Uint8Array.of(12)])).toBe(12);
    expect(a.append('d', [Uint8Array.of(13)])).toBe(13);
    // An empty append reports the file's number, not the remembered one.
    expect(b.append('d', [Uint8Array.of(14)])).toBe(14);
    expect(a.append('d', [])).toBe(14);
    expect(values(a)).toEqual([9, 10, 11, 12, 13, 14]);
    expect(a.load('d').lastSeq).toBe(14);
    a.close();
    b.close();
  });

  it('a shared store never writes into another document through a remembered row id (the document row replaced under another name)', () => {
    const path = freshPath();
    const store = openSqliteStore(path);
    expect(store.append('d', [Uint8Array.of(1)])).toBe(1);
    expect(store.append('d', [Uint8Array.of(2)])).toBe(2);
    // Another connection removes 'd' and gives its row id to 'other', with a log of two rows (no
    // Rhizome API deletes a document: a hand edit, say). The remembered (id, 2) still matches rows.
    const raw = new Database(path);
    raw.exec(`DELETE FROM docs WHERE name = 'd'; INSERT INTO docs (id, name) VALUES (1, 'other');`);
    expect(raw.prepare("SELECT id FROM docs WHERE name = 'other'").pluck().get()).toBe(1);
    raw.close();
    expect(store.append('d', [Uint8Array.of(3)])).toBe(1);
    expect(store.load('other').updates.map((x) => x[0])).toEqual([1, 2]);
    expect(store.load('d').updates.map((x) => x[0])).toEqual([3]);
    expect(store.append('d', [Uint8Array.of(4)])).toBe(2);
    expect(store.load('d').updates.map((x) => x[0])).toEqual([3, 4]);
    store.close();
  });

  it('a shared store numbers after the last row even when rows in the middle of the log are gone (a hand edit): never into the gap', () => {
    const path = freshPath();
    const a = openSqliteStore(path);
    const b = openSqliteStore(path);
    expect(a.append('d', [Uint8Array.of(1)])).toBe(1);
    expect(a.append('d', [Uint8Array.of(2)])).toBe(2);
    expect(a.append('d', [Uint8Array.of(3)])).toBe(3);
    expect(b.append('d', [Uint8Array.of(4)])).toBe(4);
    expect(b.append('d', [Uint8Array.of(5)])).toBe(5);
    // Rows from the middle of the log removed by hand (no Rhizome API does this: compaction
    // removes a prefix): a's remembered row 3 is still there and 4 is free, but b has read
    // through 5 and reads only past it.
    const raw = new Database(path);
    raw.prepare('DELETE FROM updates WHERE key = (1 << 44) + 4').run();
    raw.close();
    expect(a.append('d', [Uint8Array.of(6)])).toBe(6);
    expect(b.loadSince('d', 5).updates.map((x) => x[0])).toEqual([6]);
    // From there on a's guesses hold again.
    expect(a.append('d', [Uint8Array.of(7)])).toBe(7);
    expect(a.load('d').updates.map((x) => x[0])).toEqual([1, 2, 3, 5, 6, 7]);
    a.close();
    b.close();
  });

  it('a shared store remembers the number a load or loadSince read, and a read-only store never appends', () => {
    const path = freshPath();
    const writer = openSqliteStore(path);
    writer.append('d', [Uint8Array.of(1), Uint8Array.of(2)]);
    const other = openSqliteStore(path);
    expect(other.load('d').lastSeq).toBe(2);
    expect(other.append('d', [Uint8Array.of(3)])).toBe(3);
    writer.append('d', [Uint8Array.of(4)]);
    expect(other.loadSince('d', 3).lastSeq).toBe(4);
    expect(other.append('d', [Uint8Array.of(5)])).toBe(5);
    other.close();
    writer.close();
    const readOnly = openSqliteStore(path, { readOnly: true });
    expect(readOnly.load('d').lastSeq).toBe(5);
    expect(() => readOnly.append('d', [Uint8Array.of(6)])).toThrow(expect.objectContaining({ code: 'ERR_STORE_READ_ONLY' }));
    expect(readOnly.stats('d')).toMatchObject({ lastSeq: 5, updates: 5 });
    readOnly.close();
  });

  it('a shared store refuses an append past the last sequence number a log holds (SEQ_EXHAUSTED) with its number in memory too', () => {
    const path = freshPath();
    openSqliteStore(path).close();
    const raw = new Database(path);
    raw.exec(`INSERT INTO docs (id, name) VALUES (1, 'd'); INSERT INTO updates (key, data) VALUES ((1 << 44) + ${MAX_SEQ - 1}, x'01');`);
    raw.close();
    const store = openSqliteStore(path);
    expect(store.load('d').lastSeq).toBe(MAX_SEQ - 1);
    expect(store.append('d', [Uint8Array.of(2)])).toBe(MAX_SEQ);
    expect(() => store.append('d', [Uint8Array.of(3)])).toThrow(expect.objectContaining({ code: 'ERR_STORE_IO', reason: 'SEQ_EXHAUSTED' }));
    expect(store.stats('d')).toMatchObject({ lastSeq: MAX_SEQ, updates: 2 });
    store.close();
  });

  it('the last document at its last sequence numbers: appends, SEQ_EXHAUSTED, loadSince and compaction ranges stay inside it; its neighbour is untouched (shared and exclusive)', () => {
    for (const exclusive of [false, true]) {
      const path = freshPath();
      openSqliteStore(path).close();
      const raw = new Database(path);
      raw.prepare("INSERT INTO docs (id, name) VALUES (?, 'before'), (?, 'last')").run(MAX_DOC - 1, MAX_DOC);
      // The neighbour's last possible row, and the last document's log up to MAX_SEQ - 3.
      raw.exec(`INSERT INTO updates (key, data) VALUES ((${MAX_DOC - 1} << 44) + ${MAX_SEQ}, x'aa')`);
      for (const seq of [MAX_SEQ - 4, MAX_SEQ - 3]) raw.exec(`INSERT INTO updates (key, data) VALUES ((${MAX_DOC} << 44) + ${seq}, x'0${seq === MAX_SEQ - 4 ? 1 : 2}')`);
      raw.close();
      const store = openSqliteStore(path, { exclusive });
      expect(store.load('last')).toMatchObject({ lastSeq: MAX_SEQ - 3 });
      expect(store.append('last', [Uint8Array.of(3)])).toBe(MAX_SEQ - 2);
      expect(store.append('last', [Uint8Array.of(4), Uint8Array.of(5)])).toBe(MAX_SEQ);
      expect(() => store.append('last', [Uint8Array.of(6)])).toThrow(expect.objectContaining({ code: 'ERR_STORE_IO', reason: 'SEQ_EXHAUSTED' }));
      expect(store.load('last').updates.map((u) => u[0])).toEqual([1, 2, 3, 4, 5]);
      expect(store.loadSince('last', MAX_SEQ - 2).updates.map((u) => u[0])).toEqual([4, 5]);
      expect(store.loadSince('last', MAX_SEQ).updates).toEqual([]);
      store.compact('last', Uint8Array.of(9), MAX_SEQ - 1);
      expect(store.load('last')).toMatchObject({ lastSeq: MAX_SEQ });
      expect(store.load('last').updates.map((u) => u[0])).toEqual([5]);
      expect(store.stats('last')).toMatchObject({ updates: 1, updateBytes: 1, lastSeq: MAX_SEQ });
      expect(store.load('before')).toMatchObject({ lastSeq: MAX_SEQ });
      expect(store.load('before').updates.map((u) => u[0])).toEqual([0xaa]);
      store.compact('last', Uint8Array.of(9, 9), MAX_SEQ);
      expect(store.load('last').updates).toEqual([]);
      expect(store.load('before').updates.map((u) => u[0])).toEqual([0xaa]);
      store.close();
    }
  });

  it('a compaction from a stale read cannot replace a newer snapshot (two handles, issue 10 defect 1)', () => {
    // Handle 1 reads; handle 2 appends and compacts; handle 1 then compacts from what it read.
    // Before the fix, handle 1's older snapshot replaced the newer one and update 3 was lost.
    const path = freshPath();
    const one = openSqliteStore(path);
    const two = openSqliteStore(path);
    one.append('d', [Uint8Array.of(1), Uint8Array.of(2)]);
    const read = one.load('d');
    expect(read.lastSeq).toBe(2);
    two.append('d', [Uint8Array.of(3)]);
    two.compact('d', Uint8Array.of(1, 2, 3), 3);
    let thrown: unknown;
    try {
      one.compact('d', Uint8Array.of(1, 2), read.lastSeq);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(StoreConflictError);
    expect(thrown).toMatchObject({ code: 'ERR_STORE_CONFLICT', path });
    // The newer snapshot is still there.
    expect([...(one.load('d').snapshot ?? [])]).toEqual([1, 2, 3]);
    // A compaction through the newest sequence number (from a fresh read) goes through.
    one.compact('d', Uint8Array.of(1, 2, 3, 4), 3);
    expect([...(two.load('d').snapshot ?? [])]).toEqual([1, 2, 3, 4]);
    one.close();
    two.close();
  });

  it('rejects bad arguments with ERR_INVALID_ARGUMENT', () => {
    const store = openSqliteStore(':memory:');
    store.append('d', [Uint8Array.of(1)]);
    const code = expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' });
    expect(() => store.compact('d', Uint8Array.of(1), 2)).toThrow(code);
    expect(() => store.compact('d', Uint8Array.of(1), -1)).toThrow(code);
    expect(() => store.compact('d', Uint8Array.of(1), 0.5)).toThrow(code);
    expect(() => store.append('d', ['x' as unknown as Uint8Array])).toThrow(code);
    expect(() => store.load(42 as unknown as string)).toThrow(code);
    expect(() => openSqliteStore('')).toThrow(code);
    // The failed calls changed nothing.
    expect(store.stats('d')).toEqual({ updates: 1, updateBytes: 1, snapshotBytes: 0, lastSeq: 1 });
    store.close();
  });

  it('openStore gives a MemoryStore without a path or for :memory:, a SqliteStore otherwise', () => {
    expect(openStore()).toBeInstanceOf(MemoryStore);
    expect(openStore(':memory:')).toBeInstanceOf(MemoryStore);
    const path = freshPath();
    const store = openStore(path);
    expect(store).toBeInstanceOf(SqliteStore);
    store.close();
    expect(existsSync(path)).toBe(true);
  });
});
