// What a relay could do with sealed frames it carries: replay them on the same topic (harmless:
// every message type is idempotent or request-bound), or into another database (refused with
// ERR_DECRYPT, even under the same secret). A tapping transport wraps the memory transport and
// lets the test inject frames into a connection as a relay would.
import { afterEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import type { SyncEvent, Transport } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { TapTransport, collectEvents, nextEvent, uniqueHub, until } from './sync-helpers.js';

const open: Database[] = [];
const transports: Transport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
  await Promise.all(transports.splice(0).map((t) => t.disconnect()));
});

async function pair(id: string, secret?: string): Promise<{ a: Database; b: Database; tapB: TapTransport }> {
  const hub = uniqueHub('replay');
  const tapB = new TapTransport(new MemoryTransport({ hub, peerId: 'b' }));
  transports.push(tapB);
  const a = await openDatabase({ id, transport: { mode: 'memory', hub, peerId: 'a' }, ...(secret ? { secret } : {}) });
  const b = await openDatabase({ id, transport: tapB, ...(secret ? { secret } : {}) });
  open.push(a, b);
  await Promise.all([a.whenSynced({ minPeers: 1 }), b.whenSynced({ minPeers: 1 })]);
  return { a, b, tapB };
}

function state(db: Database): { list: unknown } {
  return { list: db.list() };
}

it('replaying every frame a peer sent (twice, in order and reversed) leaves the state unchanged', async () => {
  const { a, b, tapB } = await pair(generateDatabaseId());
  a.put('x', { v: 1 });
  a.put('y', { v: 2, w: [1, 2] });
  a.delete('x');
  a.put('y', { v: 3 });
  a.awareness.setLocalStateField('name', 'alice');
  await until(b, () => b.get('y')?.v === 3 && b.get('x') === undefined, 'edits on b');
  // Presence too, then a marker so every frame above has been received.
  const marker = nextEvent(b, (e) => e.type === 'node-upsert' && e.id === 'marker', 'marker');
  a.put('marker', {});
  await marker;
  const conn = tapB.connections[0]!;
  const recorded = conn.received.slice();
  expect(recorded.length).toBeGreaterThanOrEqual(5);
  const before = state(b);
  const events = collectEvents(b);
  for (const frame of [...recorded, ...recorded.slice().reverse()]) conn.inject(frame);
  // A frame after the replays: once it is applied, every replay before it was processed.
  const after = nextEvent(b, (e) => e.type === 'node-upsert' && e.id === 'after', 'after');
  a.put('after', { ok: true });
  await after;
  events.stop();
  // Nothing but 'after' changed: same nodes, and the same Yjs state as the sender.
  expect(b.list().filter((n) => n.id !== 'after')).toEqual(before.list);
  expect(Y.equalSnapshots(Y.snapshot(b.doc), Y.snapshot(a.doc))).toBe(true);
  // Replayed node frames changed nothing: the only node events are for 'after'.
  const nodeEvents = events.events.filter((e): e is Extract<SyncEvent, { id: string }> => e.type === 'node-upsert' || e.type === 'node-delete');
  expect(nodeEvents.map((e) => e.id)).toEqual(['after']);
  expect(events.events.filter((e) => e.type === 'error')).toEqual([]);
  expect(b.stats().peers[0]!.synced).toBe(true);
  expect([...b.awareness.getStates().values()]).toContainEqual({ name: 'alice' });
  expect(a.list()).toEqual(b.list());
});

it('a frame of one database does not open in another, even under the same secret', async () => {
  const one = await pair(generateDatabaseId(), 'shared secret');
  const two = await pair(generateDatabaseId(), 'shared secret');
  one.a.put('n', { v: 1 });
  await until(one.b, () => one.b.get('n') !== undefined, 'n on one.b');
  const frames = one.tapB.connections[0]!.received;
  const refused = nextEvent(two.b, (e) => e.type === 'error' && e.error.code === 'ERR_DECRYPT', 'ERR_DECRYPT on two.b');
  for (const f of frames) two.tapB.connections[0]!.inject(f);
  await refused;
  await until(two.b, () => two.b.stats().decryptErrors === frames.length, 'every foreign frame refused');
  expect(two.b.get('n')).toBeUndefined();
  two.a.put('still-works', {});
  await until(two.b, () => two.b.get('still-works') !== undefined, 'two still syncs');
});
