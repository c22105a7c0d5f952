// The automatic idle compaction (packages/sync/src/persistence.ts, issue 12 session 10) on a disk
// that fills up: it runs from an unref'd timer, so its failure must be reported (an `error` event)
// and neither crash the process (an exception thrown from a timer would) nor lose a write; once
// space is back, the next idle compaction goes through. A real 4 MiB tmpfs (root only).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '@rhizome/sync';
import { mountTmpfs, type Tmpfs } from './tmpfs-helpers.js';

const mounts: Tmpfs[] = [];
afterAll(() => {
  for (const m of mounts.splice(0)) m.unmount();
});

/** Polls `check` every 10 ms until it holds; throws after `ms`. */
async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('idle compaction on a full disk', () => {
  it('fails with an error event (ERR_STORE_IO, SQLITE_FULL), the process goes on, nothing is lost; after space is freed the next idle compaction succeeds', async () => {
    const fs = mountTmpfs(4 * 1024 * 1024);
    mounts.push(fs);
    let db: Database | undefined;
    try {
      const path = join(fs.dir, 'idle.db');
      const id = 'idle-compaction-disk-0123456789';
      // Idle compaction once the log holds 100 updates (a quarter of 400), 50 ms after the last write.
      db = await openDatabase({ id, path, persistence: { compactAfterUpdates: 400, compactIdleMs: 50 } });
      const errors: unknown[] = [];
      const sub = db.events.subscribe();
      void (async () => {
        for await (const event of sub) if (event.type === 'error') errors.push(event.error);
      })();
      const big = 'z'.repeat(1500);
      for (let i = 0; i < 150; i++) {
        db.put(`n-${i}`, { v: i, big });
        await new Promise((resolve) => setImmediate(resolve));
      }
      await db.flush();
      // An empty WAL: the compaction's snapshot (~220 KB) then needs new space, which is gone.
      const raw = new Sqlite(path);
      raw.pragma('wal_checkpoint(TRUNCATE)');
      raw.close();
      const filler = fs.fill();
      await until('the idle compaction to fail', () => errors.length > 0);
      expect(errors[0]).toMatchObject({ code: 'ERR_STORE_IO', reason: 'SQLITE_FULL' });
      for (let i = 0; i < 150; i++) expect(db.get(`n-${i}`)).toEqual({ v: i, big });
      // The file still holds every write (a failed compaction changed nothing).
      const check = new Sqlite(path, { readonly: true });
      expect(check.prepare('SELECT count(*) FROM updates').pluck().get()).toBe(150);
      check.close();

      rmSync(filler);
      db.put('after', { v: 1 });
      await db.flush();
      await until('a later idle compaction to succeed', () => {
        const c = new Sqlite(path, { readonly: true });
        try {
          return (c.prepare('SELECT count(*) FROM updates').pluck().get() as number) === 0;
        } finally {
          c.close();
        }
      });
      sub.unsubscribe();
      await db.close();
      db = undefined;
      const reopened = await openDatabase({ id, path });
      try {
        for (let i = 0; i < 150; i++) expect(reopened.get(`n-${i}`)).toEqual({ v: i, big });
        expect(reopened.get('after')).toEqual({ v: 1 });
      } finally {
        await reopened.close();
      }
    } finally {
      await db?.close().catch(() => undefined);
      fs.unmount();
    }
  }, 60_000);
});
