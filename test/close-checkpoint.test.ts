// Closing a database while a WAL checkpoint of its file runs on the store's checkpoint thread
// (store-sqlite/src/checkpointer.ts): close() waits for it without blocking the event loop (the
// store's own close() would block in Atomics.wait), loses nothing, and leaves no connection of
// the process on the file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { openSqliteStore, SqliteStore } from '@rhizome/store-sqlite';
import { openDatabase } from '@rhizome/sync';
import { checkpointsInFlight, holdCheckpointsForTesting } from '../packages/store-sqlite/src/checkpointer.js';

const root = mkdtempSync(join(tmpdir(), 'rhizome-close-checkpoint-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  holdCheckpointsForTesting(0);
  vi.restoreAllMocks();
});

describe('db.close() during a checkpoint on the checkpoint thread', () => {
  it('waits for it without blocking, then closes the store with none in flight; every write is there after a reopen', async () => {
    // Each request stays in flight 1.5 s on the thread: surely running when close() begins.
    holdCheckpointsForTesting(1500);
    const path = join(root, 'db.sqlite');
    const db = await openDatabase({ id: 'close-checkpoint', path });
    const writes = 100;
    // ~6 MB of updates, one commit per macrotask: past the store's checkpoint request (4 MiB).
    for (let i = 0; i < writes; i++) {
      db.put(`n${i}`, { text: String(i).padEnd(60_000, '.') });
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(checkpointsInFlight()).toBe(1);
    const inFlightAtStoreClose: number[] = [];
    const close = SqliteStore.prototype.close;
    vi.spyOn(SqliteStore.prototype, 'close').mockImplementation(function (this: SqliteStore) {
      inFlightAtStoreClose.push(checkpointsInFlight());
      close.call(this);
    });
    // The event loop keeps running while close() waits for the checkpoint.
    let ticksWhileInFlight = 0;
    const ticker = setInterval(() => {
      if (checkpointsInFlight() > 0) ticksWhileInFlight++;
    }, 20);
    try {
      await db.close();
    } finally {
      clearInterval(ticker);
    }
    expect(inFlightAtStoreClose).toEqual([0]);
    expect(ticksWhileInFlight).toBeGreaterThan(0);
    // No connection of this process is left on the file, and nothing was lost.
    const alone = openSqliteStore(path, { exclusive: true, busyTimeoutMs: 0 });
    alone.close();
    const reopened = await openDatabase({ id: 'close-checkpoint', path });
    expect(reopened.list().length).toBe(writes);
    expect((reopened.get('n42') as { text: string }).text.startsWith('42.')).toBe(true);
    await reopened.close();
  });

  it('a process whose last step is `await db.close()` during a checkpoint finishes the close before it exits', () => {
    // The wait for the checkpoint thread (Atomics.waitAsync, the thread unref'd) must keep the
    // event loop alive: otherwise the process exits in the middle of close().
    const path = join(root, 'exit.sqlite');
    const checkpointer = fileURLToPath(new URL('../packages/store-sqlite/src/checkpointer.ts', import.meta.url));
    const script = `
      import { openDatabase } from '@rhizome/sync';
      import { checkpointsInFlight, holdCheckpointsForTesting } from ${JSON.stringify(checkpointer)};
      holdCheckpointsForTesting(1000);
      const db = await openDatabase({ id: 'close-checkpoint', path: ${JSON.stringify(path)} });
      for (let i = 0; i < 100; i++) {
        db.put('n' + i, { text: String(i).padEnd(60000, '.') });
        await new Promise((resolve) => setImmediate(resolve));
      }
      console.log('in flight ' + checkpointsInFlight());
      await db.close();
      console.log('closed');
    `;
    const out = execFileSync(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(out).toBe('in flight 1\nclosed\n');
  });
});
