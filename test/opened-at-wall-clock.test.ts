// `stats().openedAt` (and a peer's `connectedAt`, derived from it) is the wall-clock time of the
// open, also when the wall clock and the monotonic clock parted since the process started — as
// they do after the machine slept (performance.now() does not tick during sleep: Linux
// CLOCK_MONOTONIC, browsers' background tabs) or after the wall clock was stepped. Simulated by a
// wall clock one hour ahead of performance.timeOrigin + performance.now().
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import { openDatabase, type Database } from '@rhizome/sync';
import { uniqueHub } from './sync-helpers.js';

const SLEPT_MS = 3_600_000;
const open: Database[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.splice(0).map((db) => db.close()));
});

/** Resolves once `check()` holds, polled (the state read is synchronous). */
async function poll(check: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('openedAt after the wall clock and the monotonic clock parted', () => {
  it('is the wall-clock time of the open, and a peer connected after it is not dated before it', async () => {
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + SLEPT_MS);
    const id = generateDatabaseId();
    const hub = uniqueHub('opened-at');
    const before = Date.now();
    const a = await openDatabase({ id, transport: new MemoryTransport({ hub, peerId: 'a' }) });
    open.push(a);
    const after = Date.now();
    const openedAt = a.stats().openedAt;
    expect(openedAt).toBeGreaterThanOrEqual(before);
    expect(openedAt).toBeLessThanOrEqual(after);
    const b = await openDatabase({ id, transport: new MemoryTransport({ hub, peerId: 'b' }) });
    open.push(b);
    await poll(() => a.stats().peers.length === 1, 'a sees b');
    const peer = a.stats().peers[0]!;
    expect(peer.connectedAt).toBeGreaterThanOrEqual(openedAt);
    expect(peer.connectedAt).toBeLessThanOrEqual(Date.now());
  });
});
