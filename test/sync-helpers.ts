// Helpers for the sync tests: unique hubs, temp dirs, and waiting on events (never sleeping).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { SyncEvent } from '@rhizome/core';
import type { Database } from '@rhizome/sync';

/** A hub name no other test uses. */
export function uniqueHub(prefix = 'sync'): string {
  return `${prefix}-${randomUUID()}`;
}

/** A temp dir, removed by the returned cleanup. */
export function tempDir(prefix = 'rhizome-sync-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Resolves with the first event of `db` (published after this call) matching `predicate`;
 * rejects after `timeoutMs` with a message naming `what`.
 */
export function nextEvent<T extends SyncEvent>(
  db: Database,
  predicate: (e: SyncEvent) => e is T,
  what: string,
  timeoutMs?: number,
): Promise<T>;
export function nextEvent(db: Database, predicate: (e: SyncEvent) => boolean, what: string, timeoutMs?: number): Promise<SyncEvent>;
export function nextEvent(db: Database, predicate: (e: SyncEvent) => boolean, what: string, timeoutMs = 20_000): Promise<SyncEvent> {
  const sub = db.events.subscribe({ capacity: 1 << 16 });
  return new Promise<SyncEvent>((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    void (async () => {
      for await (const e of sub) {
        if (e.type !== 'lagged' && predicate(e)) {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve(e);
          return;
        }
      }
    })();
  });
}

/** Collects every event of `db` from now on; `stop()` ends the collection. */
export function collectEvents(db: Database): { events: SyncEvent[]; stop: () => void } {
  const sub = db.events.subscribe({ capacity: 1 << 20 });
  const events: SyncEvent[] = [];
  void (async () => {
    for await (const e of sub) events.push(e);
  })();
  return { events, stop: () => sub.unsubscribe() };
}

/** Resolves once `check()` is true, re-checking after every event of `db`; bounded in time. */
export async function until(db: Database, check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  if (check()) return;
  await nextEvent(db, () => check(), what, timeoutMs);
}
