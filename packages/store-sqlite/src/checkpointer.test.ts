// WAL checkpoints of a shared store on the checkpoint thread (checkpointer.ts): the thread really
// checkpoints the file (the pages reach the main file while the store stays open and commits
// nothing more), a store's WAL stays bounded under a long run of small commits, every update
// survives a reopen, and close() leaves no connection of the process on the file.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { CheckpointRequests, checkpointsInFlight, holdCheckpointsForTesting } from './checkpointer.js';
import { openSqliteStore, type SqliteStore } from './index.js';
import { OWN_CHECKPOINT_BYTES, WAL_CHECKPOINT_BYTES } from './sqlite-store.js';

const root = mkdtempSync(join(tmpdir(), 'rhizome-store-checkpointer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let fileCounter = 0;
function freshPath(): string {
  return join(root, `store-${fileCounter++}.db`);
}
const size = (path: string): number => statSync(path, { throwIfNoEntry: false })?.size ?? 0;

/**
 * Appends `update` to 'doc' `commits` times, one commit each; every `every` commits it reads the
 * WAL file's size and yields a macrotask (the thread's checkpoints run while the store keeps
 * committing). Resolves with the largest WAL file seen.
 */
async function appendWatchingWal(store: SqliteStore, path: string, update: Uint8Array, commits: number, every: number): Promise<number> {
  let largest = 0;
  for (let i = 0; i < commits; i++) {
    store.append('doc', [update]);
    if (i % every === 0) {
      largest = Math.max(largest, size(`${path}-wal`));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return Math.max(largest, size(`${path}-wal`));
}

describe('checkpoints on the checkpoint thread', () => {
  afterEach(() => holdCheckpointsForTesting(0));
  it('a request copies the WAL into the main file (a connection with no checkpoint of its own)', () => {
    const path = freshPath();
    const raw = new Database(path);
    raw.pragma('journal_mode = WAL');
    raw.pragma('wal_autocheckpoint = 0');
    raw.exec('CREATE TABLE t (x BLOB)');
    const insert = raw.prepare('INSERT INTO t (x) VALUES (?)');
    const blob = new Uint8Array(3000).fill(1);
    for (let i = 0; i < 700; i++) insert.run(blob); // ~2 MiB, all of it in the WAL
    const before = size(path);
    expect(before).toBeLessThan(64 * 1024);
    const requests = new CheckpointRequests(path);
    expect(requests.request()).toBe(true);
    requests.settle(60_000);
    expect(requests.busy).toBe(false);
    // The thread's checkpoint wrote the pages into the main file; this connection never checkpointed.
    expect(size(path)).toBeGreaterThan(2 * 1000 * 1000);
    expect(raw.prepare('SELECT count(*) FROM t').pluck().get()).toBe(700);
    raw.close();
  });

  it('a shared store keeps its WAL bounded over many small commits, and loses nothing', async () => {
    const path = freshPath();
    const store = openSqliteStore(path);
    const update = new Uint8Array(200).fill(7);
    // ~ 10 × WAL_CHECKPOINT_BYTES of WAL at one page per commit: without the store's own
    // checkpoints the WAL file would reach ~44 MB.
    const commits = Math.ceil((10 * WAL_CHECKPOINT_BYTES) / 4096);
    const largestWal = await appendWatchingWal(store, path, update, commits, 256);
    // The store checkpoints itself (and the next commit starts the WAL over) every
    // OWN_CHECKPOINT_BYTES, or at twice that when the thread's checkpoint is still running
    // (a loaded machine); without that the WAL would only grow.
    expect(largestWal).toBeLessThan(2 * OWN_CHECKPOINT_BYTES + WAL_CHECKPOINT_BYTES);
    // The checkpoints put the log into the main file while the store was open: at least what
    // the store's own checkpoint at OWN_CHECKPOINT_BYTES copied (two thirds of the commits).
    expect(size(path)).toBeGreaterThan((commits * update.length) / 2);
    store.close();
    const reopened = openSqliteStore(path);
    const loaded = reopened.load('doc');
    expect(loaded.updates.length).toBe(commits);
    expect(loaded.lastSeq).toBe(commits);
    reopened.close();
  });

  it('the WAL stays bounded when commits write more pages than the estimate counts (3 KB updates: ~2.4 pages each)', async () => {
    // The store paces its looks by an estimate (bytes + one page per commit) but decides on the
    // WAL file's real size. Paced by the estimate alone, this run's WAL grew past 120 MB: it
    // reached the store's own checkpoint late (at ~2.4x the bound), and then that checkpoint
    // ran while the thread's was still copying, and so copied nothing.
    const path = freshPath();
    const store = openSqliteStore(path);
    const update = new Uint8Array(3000).fill(9);
    const commits = 25_000;
    const largestWal = await appendWatchingWal(store, path, update, commits, 64);
    expect(largestWal).toBeLessThan(2 * OWN_CHECKPOINT_BYTES + WAL_CHECKPOINT_BYTES);
    store.close();
    const reopened = openSqliteStore(path);
    expect(reopened.load('doc').updates.length).toBe(commits);
    reopened.close();
  });

  it('settle() waits for a running checkpoint without blocking; close() after it finds none; nothing is lost', async () => {
    holdCheckpointsForTesting(1500);
    const path = freshPath();
    const store = openSqliteStore(path);
    const update = new Uint8Array(64 * 1024).fill(4);
    const count = WAL_CHECKPOINT_BYTES / update.length + 20;
    for (let i = 0; i < count; i++) store.append('doc', [update]);
    // The thread was asked (past WAL_CHECKPOINT_BYTES) and holds the request for 1.5 s.
    expect(checkpointsInFlight()).toBe(1);
    let settled = false;
    const settling = store.settle().then(() => (settled = true));
    // The event loop runs while the checkpoint is in flight (a blocking wait would not return
    // before it ended).
    const during = await new Promise<{ settled: boolean; inFlight: number }>((resolve) => setImmediate(() => resolve({ settled, inFlight: checkpointsInFlight() })));
    expect(during).toEqual({ settled: false, inFlight: 1 });
    await settling;
    expect(checkpointsInFlight()).toBe(0);
    store.close();
    const alone = openSqliteStore(path, { exclusive: true, busyTimeoutMs: 0 });
    expect(alone.load('doc').updates.length).toBe(count);
    alone.close();
  });

  it('close() waits for a checkpoint of its file still running: the file can be held exclusively at once', () => {
    for (let round = 0; round < 3; round++) {
      const path = freshPath();
      const store = openSqliteStore(path);
      const update = new Uint8Array(64 * 1024).fill(3);
      // Past WAL_CHECKPOINT_BYTES: the last appends ask for a checkpoint, which is running when close() begins.
      for (let i = 0; i <= WAL_CHECKPOINT_BYTES / update.length + 1; i++) store.append('doc', [update]);
      store.close();
      // No busy timeout: refused at once if any connection of this process were still on the file.
      const alone = openSqliteStore(path, { exclusive: true, busyTimeoutMs: 0 });
      expect(alone.load('doc').updates.length).toBe(WAL_CHECKPOINT_BYTES / update.length + 2);
      alone.close();
    }
  });

  it('an exclusive store keeps SQLite’s own checkpoint (no other connection can open its file)', () => {
    const path = freshPath();
    const store = openSqliteStore(path, { exclusive: true });
    const update = new Uint8Array(64 * 1024).fill(5);
    for (let i = 0; i < (2 * WAL_CHECKPOINT_BYTES) / update.length; i++) store.append('doc', [update]);
    // SQLite checkpointed inside a commit: the main file holds the pages already.
    expect(size(path)).toBeGreaterThan(WAL_CHECKPOINT_BYTES);
    store.close();
  });
});
