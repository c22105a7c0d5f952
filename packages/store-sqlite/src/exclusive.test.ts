// `openSqliteStore(path, { exclusive: true })`: the store holds the file alone (SQLite's
// locking_mode=EXCLUSIVE) and numbers appends from memory. These tests check what a user relies
// on: the store contract still holds, another process can neither read nor write the file while
// it is held and can once it is closed, sequence numbers continue from what the file holds
// (including a log emptied by a compaction), and an exclusive open never takes a file another
// connection has open.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runStoreContract } from '@rhizome/core/testing';
import Database from 'better-sqlite3';
import { openSqliteStore } from './index.js';
import { EXCLUSIVE_NEW_PAGE_SIZE } from './sqlite-store.js';

const root = mkdtempSync(join(tmpdir(), 'rhizome-store-exclusive-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let fileCounter = 0;
function freshPath(): string {
  return join(root, `store-${fileCounter++}.db`);
}

runStoreContract('SqliteStore (file, exclusive)', () => {
  const path = freshPath();
  return {
    store: openSqliteStore(path, { exclusive: true }),
    reopen: () => openSqliteStore(path, { exclusive: true }),
    dispose: () => {
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
    },
  };
}, { persistent: true });

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

/** Another process reads the number of stored updates with a plain better-sqlite3 connection. */
function countFromOtherProcess(path: string): { count?: number; error?: string } {
  const script = `
    const Database = require(${JSON.stringify(BETTER_SQLITE3)});
    try {
      const db = new Database(${JSON.stringify(path)}, { readonly: true, fileMustExist: true, timeout: 0 });
      process.stdout.write(JSON.stringify({ count: db.prepare('SELECT count(*) FROM updates').pluck().get() }));
      db.close();
    } catch (error) {
      process.stdout.write(JSON.stringify({ error: error.code }));
    }`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { count?: number; error?: string };
}

describe('SqliteStore exclusive: true', () => {
  it('holds the file: another process cannot read it until close; the data is then all there', () => {
    const path = freshPath();
    const store = openSqliteStore(path, { exclusive: true });
    expect(store.exclusive).toBe(true);
    for (let i = 1; i <= 5; i++) expect(store.append('d', [Uint8Array.of(i)])).toBe(i);
    expect(countFromOtherProcess(path)).toEqual({ error: 'SQLITE_BUSY' });
    store.close();
    expect(countFromOtherProcess(path)).toEqual({ count: 5 });
  });

  it('another store in this process is refused with ERR_STORE_IO (SQLITE_BUSY) while the file is held', () => {
    const path = freshPath();
    const store = openSqliteStore(path, { exclusive: true });
    store.append('d', [Uint8Array.of(1)]);
    let thrown: unknown;
    try {
      openSqliteStore(path, { busyTimeoutMs: 50 }).close();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'ERR_STORE_IO', reason: 'SQLITE_BUSY', path });
    expect((thrown as Error).message).toMatch(/exclusive/);
    // The holder is unaffected.
    expect(store.append('d', [Uint8Array.of(2)])).toBe(2);
    store.close();
    const after = openSqliteStore(path);
    expect(after.load('d').updates.map((u) => u[0])).toEqual([1, 2]);
    after.close();
  });

  it('never takes a file another connection has open: the exclusive open fails, the other store keeps working', () => {
    const path = freshPath();
    const shared = openSqliteStore(path);
    shared.append('d', [Uint8Array.of(1)]);
    expect(() => openSqliteStore(path, { exclusive: true, busyTimeoutMs: 50 })).toThrow(
      expect.objectContaining({ code: 'ERR_STORE_IO', reason: 'SQLITE_BUSY' }),
    );
    expect(shared.append('d', [Uint8Array.of(2)])).toBe(2);
    expect(shared.load('d').updates.map((u) => u[0])).toEqual([1, 2]);
    shared.close();
  });

  it('continues the sequence numbers the file holds, also after a compaction emptied the log', () => {
    const path = freshPath();
    const shared = openSqliteStore(path);
    shared.append('a', [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]);
    shared.compact('a', Uint8Array.of(9), 3); // log empty, snapshot through 3
    shared.append('b', [Uint8Array.of(7)]);
    shared.close();

    const store = openSqliteStore(path, { exclusive: true });
    expect(store.append('a', [Uint8Array.of(4)])).toBe(4);
    expect(store.append('a', [Uint8Array.of(5), Uint8Array.of(6)])).toBe(6);
    expect(store.append('a', [Uint8Array.of(7)])).toBe(7);
    expect(store.append('a', [])).toBe(7);
    expect(store.append('b', [Uint8Array.of(8)])).toBe(2);
    expect(store.append('c', [Uint8Array.of(1)])).toBe(1);
    store.compact('a', Uint8Array.of(9, 9), 6);
    expect(store.append('a', [Uint8Array.of(8)])).toBe(8);
    const loaded = store.load('a');
    expect(loaded.lastSeq).toBe(8);
    expect(loaded.updates.map((u) => u[0])).toEqual([7, 8]);
    store.close();

    // A shared store afterwards reads the same numbers from the file.
    const again = openSqliteStore(path);
    expect(again.stats('a').lastSeq).toBe(8);
    expect(again.append('a', [Uint8Array.of(9)])).toBe(9);
    expect(again.load('b').updates.map((u) => u[0])).toEqual([7, 8]);
    again.close();
  });

  it('rejects exclusive with readOnly, and a non-boolean, with ERR_INVALID_ARGUMENT', () => {
    const path = freshPath();
    openSqliteStore(path).close();
    const code = expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' });
    expect(() => openSqliteStore(path, { exclusive: true, readOnly: true })).toThrow(code);
    expect(() => openSqliteStore(path, { exclusive: 'yes' as unknown as boolean })).toThrow(code);
  });

  it('makes a new file with 1 KiB pages; an existing file keeps its page size; either opens shared or exclusive', () => {
    const pageSize = (path: string): number => {
      const db = new Database(path, { readonly: true, fileMustExist: true });
      try {
        return db.pragma('page_size', { simple: true }) as number;
      } finally {
        db.close();
      }
    };
    // New, exclusive: 1 KiB pages, and everything written is read back by a shared store.
    const made = freshPath();
    const first = openSqliteStore(made, { exclusive: true });
    const big = new Uint8Array(10_000).map((_, i) => i & 0xff);
    for (let i = 1; i <= 50; i++) first.append('d', [Uint8Array.of(i)]);
    first.compact('d', big, 50);
    first.append('d', [Uint8Array.of(51)]);
    first.close();
    expect(pageSize(made)).toBe(EXCLUSIVE_NEW_PAGE_SIZE);
    const shared = openSqliteStore(made);
    const stored = shared.load('d');
    expect(Buffer.from(stored.snapshot!).equals(Buffer.from(big))).toBe(true);
    expect(stored.updates.map((u) => u[0])).toEqual([51]);
    expect(shared.append('d', [Uint8Array.of(52)])).toBe(52);
    shared.close();
    // Existing (made shared: SQLite's 4 KiB pages): kept when opened exclusive.
    const old = freshPath();
    const plain = openSqliteStore(old);
    plain.append('d', [Uint8Array.of(1)]);
    plain.close();
    expect(pageSize(old)).toBe(4096);
    const held = openSqliteStore(old, { exclusive: true });
    expect(held.append('d', [Uint8Array.of(2)])).toBe(2);
    held.close();
    expect(pageSize(old)).toBe(4096);
    const again = openSqliteStore(old);
    expect(again.load('d').updates).toHaveLength(2);
    again.close();
  });

  it('a file of 1 KiB pages checkpoints after as many WAL bytes as 4 KiB pages do (4 MiB), not after 1,000 frames', () => {
    const path = freshPath();
    const store = openSqliteStore(path, { exclusive: true });
    const walBytes = (): number => statSync(`${path}-wal`).size;
    const update = new Uint8Array(60).fill(9);
    // One append = one commit = one 1 KiB frame: past 1,000 frames, no checkpoint yet restarted the WAL.
    for (let i = 0; i < 2500; i++) store.append('d', [update]);
    expect(walBytes()).toBeGreaterThan(2400 * 1024);
    // ... and it stays bounded: SQLite checkpoints at 4,096 frames and then reuses the WAL from its start.
    for (let i = 0; i < 10_000; i++) store.append('d', [update]);
    expect(walBytes()).toBeLessThan(4_096 * (1024 + 24) + 64 * 1024);
    expect(store.stats('d').updates).toBe(12_500);
    store.close();
    const reopened = openSqliteStore(path);
    expect(reopened.load('d').updates).toHaveLength(12_500);
    reopened.close();
  });
});
