// Issue 10 defect 4 and the full-disk concerns, on real files: a database file that cannot be
// written is refused at open with ERR_STORE_READ_ONLY naming it (no -wal/-shm left behind), or
// opened read-only on request; a full disk (a real small tmpfs) makes writes fail visibly
// (stats().storage, lastError, a rejected flush and close) without losing a put that returned.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { tempDir } from './sync-helpers.js';
import { mountTmpfs, type Tmpfs } from './tmpfs-helpers.js';

const ROOT = join(import.meta.dirname, '..');
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const { dir, cleanup } = tempDir('rhizome-access-');
afterAll(cleanup);
// The unprivileged child must reach the files: the temp dir is private to its creator.
chmodSync(dir, 0o755);
const mounts: Tmpfs[] = [];
afterAll(() => {
  for (const m of mounts.splice(0)) m.unmount();
});

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A store file with one node, closed cleanly (no side files). */
async function makeFile(path: string, id: string): Promise<void> {
  const db = await openDatabase({ id, path });
  db.put('n1', { v: 1 });
  await db.close();
}

/**
 * Opens `path` in a child process run as an unprivileged user (as root: uid/gid nobody; otherwise
 * this user, who is unprivileged already), and returns what it printed.
 */
function openAsUser(path: string, id: string): Promise<{ opened: boolean; code: string | null; path: string | null; message?: string; putCode?: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=rhizome-source', '--import', 'tsx', join(ROOT, 'test/fixtures/open-database.ts'), path, id],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...(isRoot ? { uid: NOBODY, gid: NOBODY, env: { ...process.env, HOME: '/tmp' } } : {}) },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`open-database fixture exited ${code}: ${err.slice(-1000)}`));
      else resolve(JSON.parse(line) as { opened: boolean; code: string | null; path: string | null });
    });
  });
}

describe('a database file that cannot be written', () => {
  it('a file without write permission is refused at open with ERR_STORE_READ_ONLY naming it, leaving no -wal/-shm', async () => {
    const sub = join(dir, 'mode-444');
    mkdirSync(sub);
    const path = join(sub, 'ro.db');
    await makeFile(path, 'access-test-444-0123456789');
    chmodSync(path, 0o444);
    // The directory is writable by everyone: only the file's mode stands in the way.
    chmodSync(sub, 0o777);
    const before = sha256(path);
    const listing = readdirSync(sub).sort();
    const result = await openAsUser(path, 'access-test-444-0123456789');
    expect(result).toMatchObject({ opened: false, code: 'ERR_STORE_READ_ONLY', path });
    expect(result.message).toContain(path);
    expect(readdirSync(sub).sort()).toEqual(listing);
    expect(sha256(path)).toBe(before);
  });

  it('a file in a directory the user cannot write (no room for -wal/-shm) is refused the same way', async () => {
    const sub = join(dir, 'dir-755');
    mkdirSync(sub);
    const path = join(sub, 'rw.db');
    await makeFile(path, 'access-test-dir-0123456789');
    chmodSync(path, 0o666);
    if (isRoot) chownSync(sub, 0, 0);
    chmodSync(sub, 0o555);
    const listing = readdirSync(sub).sort();
    try {
      const result = await openAsUser(path, 'access-test-dir-0123456789');
      expect(result).toMatchObject({ opened: false, code: 'ERR_STORE_READ_ONLY', path });
      expect(result.message).toContain('directory');
      expect(readdirSync(sub).sort()).toEqual(listing);
    } finally {
      chmodSync(sub, 0o755);
    }
  });

  it('readOnly: true opens it for reading: get and list work, put, delete and putMany throw ERR_STORE_READ_ONLY, the file is unchanged', async () => {
    const path = join(dir, 'explicit-ro.db');
    const id = 'access-test-explicit-0123456789';
    await makeFile(path, id);
    chmodSync(path, 0o444);
    const before = sha256(path);
    const db = await openDatabase({ id, path, readOnly: true });
    try {
      expect(db.get('n1')).toEqual({ v: 1 });
      expect(db.list()).toHaveLength(1);
      expect(() => db.put('n2', { v: 2 })).toThrow(expect.objectContaining({ code: 'ERR_STORE_READ_ONLY', path }));
      expect(() => db.delete('n1')).toThrow(expect.objectContaining({ code: 'ERR_STORE_READ_ONLY' }));
      expect(() => db.putMany([['n3', { v: 3 }]])).toThrow(expect.objectContaining({ code: 'ERR_STORE_READ_ONLY' }));
      expect(db.get('n3')).toBeUndefined();
      expect(db.stats().storage.health).toBe('read-only');
    } finally {
      await db.close();
    }
    expect(sha256(path)).toBe(before);
    await expect(openDatabase({ id, readOnly: true })).rejects.toMatchObject({ code: 'ERR_INVALID_CONFIG', field: 'readOnly' });
    rmSync(path, { force: true });
    await expect(openDatabase({ id, path, readOnly: true })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

// Mounting needs root; CI runs as root.
describe.runIf(isRoot)('a read-only file system and a full disk (real tmpfs)', () => {
  it('a file on a read-only file system is refused at open with ERR_STORE_READ_ONLY, leaving nothing behind', async () => {
    const fs = mountTmpfs(4 * 1024 * 1024);
    mounts.push(fs);
    try {
      const path = join(fs.dir, 'rofs.db');
      await makeFile(path, 'access-test-rofs-0123456789');
      fs.remount(true);
      const listing = readdirSync(fs.dir).sort();
      await expect(openDatabase({ id: 'access-test-rofs-0123456789', path })).rejects.toMatchObject({
        code: 'ERR_STORE_READ_ONLY',
        path,
        message: expect.stringContaining('read-only file system'),
      });
      expect(readdirSync(fs.dir).sort()).toEqual(listing);
      // Read-only on request cannot work there either (SQLite must create -shm beside a WAL-mode
      // file to read it): a typed error that names the file and says why.
      await expect(openDatabase({ id: 'access-test-rofs-0123456789', path, readOnly: true })).rejects.toMatchObject({
        code: 'ERR_STORE_IO',
        reason: 'SQLITE_CANTOPEN',
        path,
      });
      expect(readdirSync(fs.dir).sort()).toEqual(listing);
    } finally {
      fs.unmount();
    }
  });

  // exclusive: true too: its appends after the first are single autocommit INSERTs numbered from
  // memory, and a failed one must leave the number where it was.
  it.each([false, true])('a full disk: failed writes are visible without a subscriber, close rejects, nothing that put returned is lost (exclusive: %s)', async (exclusive) => {
    const fs = mountTmpfs(2 * 1024 * 1024);
    mounts.push(fs);
    let db: Database | undefined;
    try {
      const path = join(fs.dir, 'full.db');
      const id = 'access-test-full-0123456789';
      db = await openDatabase({ id, path, exclusive });
      db.put('before', { v: 0 });
      await db.flush();
      const filler = fs.fill();
      const big = 'x'.repeat(2000);
      // Puts return (local first); their writes fail in the background.
      for (let i = 0; i < 200; i++) db.put(`full-${i}`, { v: i, big });
      await new Promise((resolve) => setImmediate(resolve));
      const stats = db.stats();
      expect(stats.storage.health).toBe('failing');
      expect(stats.storage.pendingUpdates).toBeGreaterThan(0);
      expect(stats.lastError).toMatchObject({ code: 'ERR_STORE_IO', reason: 'SQLITE_FULL', path });
      expect(stats.health.health).not.toBe('healthy');
      await expect(db.flush()).rejects.toMatchObject({ code: 'ERR_STORE_IO', reason: 'SQLITE_FULL' });
      // The app closes while the disk is still full: close says so instead of resolving.
      await expect(db.close()).rejects.toMatchObject({ code: 'ERR_STORE_IO', reason: 'SQLITE_FULL' });
      // Space comes back; closing again writes what was kept in memory.
      rmSync(filler);
      await db.close();
      db = undefined;
      const reopened = await openDatabase({ id, path });
      try {
        expect(reopened.get('before')).toEqual({ v: 0 });
        for (let i = 0; i < 200; i++) expect(reopened.get(`full-${i}`)).toEqual({ big, v: i });
        expect(reopened.stats().storage).toMatchObject({ health: 'ok', pendingUpdates: 0 });
      } finally {
        await reopened.close();
      }
    } finally {
      await db?.close().catch(() => undefined);
      fs.unmount();
    }
  });

  it('a full disk that clears: the background retry writes the kept updates and health returns to ok', async () => {
    const fs = mountTmpfs(2 * 1024 * 1024);
    mounts.push(fs);
    let db: Database | undefined;
    try {
      const path = join(fs.dir, 'retry.db');
      db = await openDatabase({ id: 'access-test-retry-0123456789', path });
      const filler = fs.fill();
      for (let i = 0; i < 100; i++) db.put(`r-${i}`, { big: 'y'.repeat(2000) });
      await new Promise((resolve) => setImmediate(resolve));
      expect(db.stats().storage.health).toBe('failing');
      rmSync(filler);
      // No flush, no new write: the retry timer (backing off from 100 ms) gets there alone.
      const deadline = Date.now() + 15_000;
      while (db.stats().storage.health !== 'ok') {
        if (Date.now() > deadline) throw new Error('the kept updates were not written within 15 s of freeing space');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(db.stats().storage.pendingUpdates).toBe(0);
      expect(db.stats().lastError).toMatchObject({ code: 'ERR_STORE_IO' });
      await db.close();
      db = undefined;
    } finally {
      await db?.close().catch(() => undefined);
      fs.unmount();
    }
  });
});
