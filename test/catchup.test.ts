// Catch-up by state vectors: a replica that was offline while 10,000 nodes were written receives
// about the size of the diff on reconnect, not the whole history. Bytes are counted at the
// Connection level (sealed wire frames) by the sync layer's stats().
import { afterEach, expect, it } from 'vitest';
import { join } from 'node:path';
import * as Y from 'yjs';
import { generateDatabaseId } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { tempDir, uniqueHub, until } from './sync-helpers.js';

const open: Database[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
  for (const c of cleanups.splice(0)) c();
});

it('a replica offline while 10,000 nodes were written catches up with ~the diff, not the history', async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const hub = uniqueHub();
  const id = generateDatabaseId();
  const memory = (peerId: string) => ({ mode: 'memory' as const, hub, peerId });
  const a = await openDatabase({ id, path: join(dir, 'a.db'), transport: memory('a') });
  open.push(a);
  let b = await openDatabase({ id, path: join(dir, 'b.db'), transport: memory('b') });
  // Shared history first: 10,000 nodes, each edited twice, synced to b.
  for (let i = 0; i < 10_000; i++) a.put(`old-${i}`, { i, text: `first version of ${i}` });
  for (let i = 0; i < 10_000; i++) a.put(`old-${i}`, { text: `second version of ${i}` });
  await until(b, () => b.size === 10_000 && b.get('old-9999')?.text === 'second version of 9999', 'history on b', 30_000);
  await b.close();

  // b is offline: its state vector is what it had.
  const offline = await openDatabase({ id, path: join(dir, 'b.db') });
  const offlineSv = Y.encodeStateVector(offline.doc);
  await offline.close();
  for (let i = 0; i < 10_000; i++) a.put(`new-${i}`, { i, title: `written while b was away ${i}` });
  const diff = Y.encodeStateAsUpdate(a.doc, offlineSv).length;
  const whole = Y.encodeStateAsUpdate(a.doc).length;

  b = await openDatabase({ id, path: join(dir, 'b.db'), transport: memory('b') });
  open.push(b);
  await b.whenSynced({ minPeers: 1, timeoutMs: 30_000 });
  expect(b.size).toBe(20_000);
  expect(b.get('new-9999')).toEqual({ i: 9999, title: 'written while b was away 9999' });
  const received = b.stats().peers.find((p) => p.peerId === 'a')!.bytesReceived;
  console.log(`catch-up: received ${received} B on the connection; diff ${diff} B; whole state ${whole} B`);
  expect(received).toBeGreaterThanOrEqual(diff);
  expect(received).toBeLessThanOrEqual(2 * diff);
  expect(received).toBeLessThan(whole * 0.75);
  // And b sent a: about its state vector, not its history.
  const sent = b.stats().peers.find((p) => p.peerId === 'a')!.bytesSent;
  expect(sent).toBeLessThan(diff / 10);
}, 60_000);
