// Schema migration 1 -> 2 of a store file under the things that happen to real files: the
// migrating process SIGKILLed half way through a large file, two processes opening one version-1
// file at the same time, the disk filling up during the migration. In every case the file ends
// at version 1 or 2, never between, and no row is lost.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, openSqliteStore } from '@rhizome/store-sqlite';
import { mountTmpfs } from './tmpfs-helpers.js';

const OPENER = join(import.meta.dirname, 'fixtures', 'migrate-open.ts');
const root = mkdtempSync(join(tmpdir(), 'rhizome-migration-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The bytes of update `seq` of document `doc` in the files these tests build. */
function updateBytes(doc: number, seq: number, size: number): Buffer {
  const bytes = Buffer.alloc(size, (doc * 31 + seq) & 0xff);
  bytes.writeUInt32BE(seq, 0);
  bytes[4] = doc;
  return bytes;
}

/** Writes a version-1 file (as the version-1 store wrote them): `docs` documents of `rows` updates each, document 1 compacted through 10. */
function writeV1(path: string, docs: number, rows: number, size: number): void {
  const raw = new Database(path);
  raw.pragma('journal_mode = WAL');
  raw.exec(MIGRATIONS[0]!.sql);
  raw.pragma(`application_id = ${APPLICATION_ID}`);
  raw.pragma('user_version = 1');
  const doc = raw.prepare('INSERT INTO docs (id, name, snapshot, snapshot_seq) VALUES (?, ?, ?, ?)');
  const row = raw.prepare('INSERT INTO updates (doc, seq, data) VALUES (?, ?, ?)');
  raw.transaction(() => {
    for (let d = 1; d <= docs; d++) {
      const compacted = d === 1 ? 10 : 0;
      doc.run(d, `doc-${d}`, compacted > 0 ? Buffer.from('snapshot') : null, compacted);
      for (let seq = compacted + 1; seq <= rows; seq++) row.run(d, seq, updateBytes(d, seq, size));
    }
  })();
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.close();
}

/** Every document of a file written by {@link writeV1} reads back whole through the store. */
function expectAllRows(path: string, docs: number, rows: number, size: number): void {
  const store = openSqliteStore(path);
  expect(store.schemaVersion).toBe(SCHEMA_VERSION);
  for (let d = 1; d <= docs; d++) {
    const stored = store.load(`doc-${d}`);
    const first = d === 1 ? 11 : 1;
    expect(stored.lastSeq).toBe(rows);
    expect(stored.updates).toHaveLength(rows - first + 1);
    const wrong = stored.updates.findIndex((u, i) => !Buffer.from(u).equals(updateBytes(d, first + i, size)));
    expect(wrong, `document ${d}: first wrong update`).toBe(-1);
    if (d === 1) expect(Buffer.from(stored.snapshot!).toString()).toBe('snapshot');
  }
  store.close();
}

function userVersion(path: string): number {
  const raw = new Database(path, { readonly: true });
  try {
    return raw.pragma('user_version', { simple: true }) as number;
  } finally {
    raw.close();
  }
}

interface Opener {
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Runs the opener fixture on `path`. With `killWhenWalExceeds`, SIGKILLs it once the file's WAL
 * has grown past that many bytes before the child reported the open done: the migration's
 * transaction spills its pages to the WAL long before it commits.
 */
function runOpener(path: string, marker: number, killWhenWalExceeds?: number): Promise<Opener> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', OPENER, path, String(marker)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    let partial = '';
    let stderr = '';
    let watch: NodeJS.Timeout | undefined;
    if (killWhenWalExceeds !== undefined) {
      watch = setInterval(() => {
        if ((statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0) > killWhenWalExceeds) {
          clearInterval(watch);
          child.kill('SIGKILL');
        }
      }, 1);
    }
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => {
      clearInterval(watch);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearInterval(watch);
      resolve({ lines, code, signal, stderr });
    });
  });
}

describe('store-sqlite migration 1 -> 2 of real files', () => {
  it('a process SIGKILLed in the middle of migrating a large version-1 file leaves it at version 1 with every row; the next open migrates it whole', async () => {
    const path = join(root, 'killed.db');
    // 4 documents x 20,000 updates of 256 B: ~22 MB of log, copied by the migration in one
    // transaction (SQLite's 2 MB page cache spills into the WAL long before the commit).
    writeV1(path, 4, 20_000, 256);
    const result = await runOpener(path, 1, 4 * 1024 * 1024);
    expect(result.stderr).toBe('');
    expect(result.signal, `the opener was not killed mid-migration: ${result.lines.join(' | ')}`).toBe('SIGKILL');
    expect(result.lines).toEqual(['opening']);
    // The kill left a WAL of uncommitted frames: the file reads as version 1.
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(4 * 1024 * 1024);
    expect(userVersion(path)).toBe(1);
    expectAllRows(path, 4, 20_000, 256);
    // Migrated for good: a second open finds version 2 and every row again.
    expect(userVersion(path)).toBe(SCHEMA_VERSION);
    expectAllRows(path, 4, 20_000, 256);
  }, 120_000);

  it('a version-1 file another connection has open (an older build) is not migrated under it: ERR_STORE_IO (SQLITE_BUSY), the older connection goes on; once it is closed the file migrates with its rows', () => {
    const path = join(root, 'held-by-v1.db');
    writeV1(path, 2, 50, 16);
    // What a version-1 build's store does with the file: WAL, reads and appends (doc, seq) rows.
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    const append = old.prepare('INSERT INTO updates (doc, seq, data) VALUES (?, ?, ?)');
    const count = old.prepare('SELECT count(*) FROM updates').pluck();
    expect(count.get()).toBe(40 + 50);
    let thrown: unknown;
    try {
      openSqliteStore(path, { busyTimeoutMs: 300 }).close();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'ERR_STORE_IO', reason: 'SQLITE_BUSY', path });
    // Before the fix the file was migrated: this append failed with "table updates has no column named doc".
    append.run(2, 51, updateBytes(2, 51, 16));
    expect(count.get()).toBe(40 + 51);
    old.close();
    expect(userVersion(path)).toBe(1);
    const store = openSqliteStore(path);
    expect(store.schemaVersion).toBe(SCHEMA_VERSION);
    expect(store.load('doc-2').lastSeq).toBe(51);
    expect(Buffer.from(store.load('doc-2').updates[50]!).equals(updateBytes(2, 51, 16))).toBe(true);
    store.close();
  });

  it('a read-only open of a version-1 file is refused with ERR_STORE_READ_ONLY (the migration writes), the file unchanged', () => {
    const path = join(root, 'read-only.db');
    writeV1(path, 2, 100, 16);
    const before = createHash('sha256').update(readFileSync(path)).digest('hex');
    expect(() => openSqliteStore(path, { readOnly: true })).toThrow(expect.objectContaining({ code: 'ERR_STORE_READ_ONLY', path }));
    expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(before);
    expect(userVersion(path)).toBe(1);
    expectAllRows(path, 2, 100, 16);
  });

  it('four processes opening one version-1 file (and one new file) at the same time: one migrates, the others wait and find version 2; all write, nothing is lost', async () => {
    const markers = [7, 8, 9, 10];
    for (const existing of [true, false]) {
      const path = join(root, existing ? 'race.db' : 'race-new.db');
      if (existing) writeV1(path, 3, 5_000, 200);
      const runs = await Promise.all(markers.map((m) => runOpener(path, m)));
      for (const run of runs) {
        expect(run.stderr).toBe('');
        expect(run.lines).toEqual(['opening', `opened ${SCHEMA_VERSION}`, 'closed']);
        expect(run.code).toBe(0);
      }
      if (existing) expectAllRows(path, 3, 5_000, 200);
      const store = openSqliteStore(path);
      for (const m of markers) expect(store.load(`marker-${m}`).updates.map((u) => [...u])).toEqual([[m]]);
      store.close();
    }
  }, 120_000);

  it('a disk that fills up during the migration: ERR_STORE_IO (SQLITE_FULL), the file stays at version 1 unchanged; once space is freed the next open migrates every row', () => {
    let fs: ReturnType<typeof mountTmpfs>;
    try {
      fs = mountTmpfs(24 * 1024 * 1024);
    } catch (error) {
      // The tmpfs tests need root (mount); say so rather than pass.
      throw new Error(`cannot mount a tmpfs for the full-disk test (root needed): ${(error as Error).message}`);
    }
    try {
      const path = join(fs.dir, 'full.db');
      writeV1(path, 2, 12_000, 256); // ~7 MB
      const before = createHash('sha256').update(readFileSync(path)).digest('hex');
      // Fill the disk, then give back 3 MB: enough to open the file, not for the migration's
      // copy of the log (~7 MB written to the WAL before its commit).
      const filler = fs.fill();
      truncateSync(filler, Math.max(0, statSync(filler).size - 3 * 1024 * 1024));
      let thrown: unknown;
      try {
        openSqliteStore(path).close();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toMatchObject({ code: 'ERR_STORE_IO', reason: 'SQLITE_FULL', path });
      expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(before);
      expect(userVersion(path)).toBe(1);
      rmSync(filler);
      expectAllRows(path, 2, 12_000, 256);
    } finally {
      fs.unmount();
    }
  }, 120_000);
});
