// An openDatabase that fails after it started making the database releases what it made: the
// awareness's place in the shared liveness ticker (a timer that keeps the process alive), the
// persistence's store watch, and the SQLite file. Two failures the public API can produce: a
// stored log that is not Yjs (the constructor throws while loading), and an app's transport whose
// mailbox access throws (after the database was made). Timers are counted with vitest's fake
// setInterval (the ticker and the store watch are intervals); the file is checked by opening it
// exclusively, which SQLite refuses while another connection has it open.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DisabledTransport, type MailboxAccess } from '@rhizome/core';
import { openSqliteStore } from '@rhizome/store-sqlite';
import { openDatabase } from '@rhizome/sync';

const dir = mkdtempSync(join(tmpdir(), 'rhizome-open-failure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** True when no other connection has the file open: an exclusive open succeeds. */
function fileIsFree(path: string): boolean {
  try {
    openSqliteStore(path, { exclusive: true, busyTimeoutMs: 50 }).close();
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_STORE_IO') return false;
    throw error;
  }
}

/** A transport (local only) whose mailbox access refuses its first listener. */
function transportWithFailingMailbox(): DisabledTransport {
  const access: MailboxAccess = {
    serverId: 'refusing',
    offer: null,
    onOffer: () => {
      throw new Error('mailbox access refused');
    },
    read: () => Promise.reject(new Error('unused')),
    write: () => Promise.reject(new Error('unused')),
  };
  return Object.assign(new DisabledTransport(), { mailbox: access });
}

describe('a failed openDatabase releases what it made', () => {
  it('a stored log that is not Yjs: ERR_STORE_CORRUPT, no timer left (store watch, liveness ticker), the file closed', async () => {
    const path = join(dir, 'corrupt.db');
    const store = openSqliteStore(path);
    store.append('doc', [new Uint8Array([1, 2, 3])]);
    store.close();
    const timers = vi.getTimerCount();
    await expect(openDatabase({ id: 'doc', path })).rejects.toMatchObject({ code: 'ERR_STORE_CORRUPT' });
    expect(vi.getTimerCount()).toBe(timers);
    expect(fileIsFree(path)).toBe(true);
  });

  it('a store that cannot be opened (the path is a directory): no timer left, the transport it made released (its peer id free again)', async () => {
    const transport = { mode: 'memory' as const, hub: 'open-failure-store', peerId: 'p-store' };
    const timers = vi.getTimerCount();
    await expect(openDatabase({ id: 'doc', path: dir, transport })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(vi.getTimerCount()).toBe(timers);
    const db = await openDatabase({ id: 'doc', transport });
    await db.close();
    expect(vi.getTimerCount()).toBe(timers);
  });

  it("an app transport's mailbox access that throws: the error, no timer left, the file closed; the next open works", async () => {
    const path = join(dir, 'mailbox.db');
    const timers = vi.getTimerCount();
    await expect(openDatabase({ id: 'doc', path, transport: transportWithFailingMailbox() })).rejects.toThrow('mailbox access refused');
    expect(vi.getTimerCount()).toBe(timers);
    expect(fileIsFree(path)).toBe(true);
    const db = await openDatabase({ id: 'doc', path });
    expect(vi.getTimerCount()).toBeGreaterThan(timers);
    db.put('n', { ok: true });
    await db.close();
    expect(vi.getTimerCount()).toBe(timers);
  });
});
