// Large states and write bursts over the memory transport: a 100k-node initial sync through a
// transport capped at 64 KiB frames, and a tight loop of 100k puts with a peer connected (one
// send in flight per connection, bounded queue collapsing into a catch-up diff, convergence).
import { afterEach, expect, it } from 'vitest';
import { join } from 'node:path';
import * as Y from 'yjs';
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { TapTransport, tempDir, uniqueHub, untilSize } from './sync-helpers.js';

const open: Database[] = [];
const transports: Array<{ disconnect(): Promise<void> }> = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
  await Promise.all(transports.splice(0).map((t) => t.disconnect()));
  for (const c of cleanups.splice(0)) c();
});

it('syncs a 100k-node database to a fresh file-backed replica over a 64 KiB frame cap', async () => {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const hub = uniqueHub('large');
  const id = generateDatabaseId();
  const N = 100_000;
  const tSrc = new MemoryTransport({ hub, peerId: 'src', maxMessageSize: 65536 });
  const tFresh = new TapTransport(new MemoryTransport({ hub, peerId: 'fresh', maxMessageSize: 65536 }));
  transports.push(tSrc, tFresh);
  const source = await openDatabase({ id, path: join(dir, 'src.db'), transport: tSrc });
  open.push(source);
  source.doc.transact(() => {
    for (let i = 0; i < N; i++) source.put(`node-${i}`, { i, title: `title ${i}` });
  });
  const state = Y.encodeStateAsUpdate(source.doc).length;
  const t0 = performance.now();
  const fresh = await openDatabase({ id, path: join(dir, 'fresh.db'), transport: tFresh });
  open.push(fresh);
  await fresh.whenSynced({ minPeers: 1, timeoutMs: 50_000 });
  const ms = performance.now() - t0;
  expect(fresh.size).toBe(N);
  expect(fresh.get('node-99999')).toEqual({ i: 99999, title: 'title 99999' });
  const tap = tFresh.connections[0]!;
  const peer = fresh.stats().peers[0]!;
  // Every frame the transport carried was within the cap, and the state came in many of them.
  expect(tap.received.every((f) => f.length <= 65536)).toBe(true);
  expect(peer.framesReceived).toBeGreaterThan(state / 65536);
  expect(peer.bytesReceived).toBe(tap.received.reduce((n, f) => n + f.length, 0));
  expect(peer.bytesReceived).toBeLessThan(state * 1.02 + 1024);
  console.log(`100k-node sync over 64 KiB frames: ${ms.toFixed(0)} ms, ${peer.framesReceived} frames, ${peer.bytesReceived} B (state ${state} B)`);
  // And it is on disk: reopen the fresh replica's file.
  await fresh.close();
  const reopened = await openDatabase({ id, path: join(dir, 'fresh.db') });
  open.push(reopened);
  expect(reopened.size).toBe(N);
}, 60_000);

it('a tight loop of 100k puts with a peer connected: one send in flight, bounded queue, convergence', async () => {
  const hub = uniqueHub('burst');
  const id = generateDatabaseId();
  const tapA = new TapTransport(new MemoryTransport({ hub, peerId: 'a' }));
  transports.push(tapA);
  // A small queue bound, so the burst overflows it and collapses into one catch-up diff.
  const a = await openDatabase({ id, transport: tapA, limits: { maxQueuedBytes: 256 * 1024 } });
  const b = await openDatabase({ id, transport: { mode: 'memory', hub, peerId: 'b' } });
  open.push(a, b);
  await Promise.all([a.whenSynced({ minPeers: 1 }), b.whenSynced({ minPeers: 1 })]);
  tapA.connections[0]!.record = false;
  const N = 100_000;
  for (let i = 0; i < N; i++) a.put(`n${i}`, { i });
  // The burst is queued, not sent in parallel: at most a bounded number of messages wait.
  expect(a.stats().peers[0]!.queued).toBeLessThan(N / 10);
  await untilSize(b, N);
  const conn = tapA.connections[0]!;
  expect(conn.maxInFlight).toBe(1);
  expect(b.get('n99999')).toEqual({ i: 99999 });
  expect(Y.encodeStateVector(b.doc)).toEqual(Y.encodeStateVector(a.doc));
  expect(a.stats().collapses).toBeGreaterThan(0);
  // Far fewer frames than puts: updates were batched (and collapsed).
  expect(conn.sentFrames).toBeLessThan(N / 100);
}, 60_000);

it('adapts when the transport refuses frames below its advertised maxMessageSize (a relay with a smaller cap)', async () => {
  const hub = uniqueHub('cap');
  const id = generateDatabaseId();
  const tapSrc = new TapTransport(new MemoryTransport({ hub, peerId: 'src' }));
  tapSrc.frameLimit = 20_000; // advertises 16 MiB, accepts 20,000 bytes
  transports.push(tapSrc);
  const source = await openDatabase({ id, transport: tapSrc });
  open.push(source);
  source.doc.transact(() => {
    for (let i = 0; i < 20_000; i++) source.put(`n${i}`, { i });
  });
  const fresh = await openDatabase({ id, transport: { mode: 'memory', hub, peerId: 'fresh' } });
  open.push(fresh);
  await fresh.whenSynced({ minPeers: 1, timeoutMs: 30_000 });
  expect(fresh.size).toBe(20_000);
  expect(source.stats().peers[0]!.maxFrameBytes).toBe(20_000);
  expect(tapSrc.connections[0]!.maxInFlight).toBe(1);
}, 60_000);
