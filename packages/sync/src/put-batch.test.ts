import * as Y from 'yjs';
import { describe, expect, it } from 'vitest';
import { REENCODE_SKIP_BYTES, applyRemoteUpdates } from './apply.js';
import { WriteBatch } from './put-batch.js';

/** A document with a write batch that sets `m[id] = data.v` (clientID 1), and the origins of its updates. */
function setup(): { doc: Y.Doc; map: Y.Map<unknown>; batch: WriteBatch; origins: unknown[]; local: object } {
  const doc = new Y.Doc();
  doc.clientID = 1;
  const map = doc.getMap('m');
  const local = { name: 'the batch' };
  const origins: unknown[] = [];
  doc.on('update', (_update: Uint8Array, origin: unknown) => origins.push(origin));
  const batch = new WriteBatch(doc, {
    applyBatch: (writes) =>
      doc.transact(() => {
        for (const w of writes) map.set(w.id, w.data?.['v'] ?? null);
      }, local),
    reportError: (error) => {
      throw error;
    },
  });
  return { doc, map, batch, origins, local };
}

/** An update of another replica (clientID 2, so it wins a concurrent write of one key) setting `m.x`. */
function remoteUpdate(value: string): Uint8Array {
  const remote = new Y.Doc();
  remote.clientID = 2;
  remote.getMap('m').set('x', value);
  return Y.encodeStateAsUpdate(remote);
}

describe('WriteBatch ordering', () => {
  it('applies writes queued in the task before a remote update applied in the same task', () => {
    const { map, batch, origins, local } = setup();
    const peer = { name: 'a peer session' };
    batch.add({ id: 'x', data: { v: 'local' } });
    applyRemoteUpdates(map.doc!, [remoteUpdate('remote')], peer);
    // The local put is its own local update (sent to every peer, the sender included) and comes
    // first; the two writes are concurrent, so the remote one wins here as on every replica.
    expect(origins).toEqual([local, peer]);
    expect(map.get('x')).toBe('remote');
    expect(batch.pending).toBe(0);
  });

  it('applies queued writes ahead of a local transaction opened on the document directly', () => {
    const { map, batch, origins } = setup();
    batch.add({ id: 'x', data: { v: 'batched' } });
    map.set('x', 'direct'); // a Yjs type the app holds: written after the put, so it wins
    expect(map.get('x')).toBe('direct');
    expect(batch.pending).toBe(0);
    expect(origins).toEqual([null]); // the queued write joined the app's transaction
  });

  it('opens every remote transaction as remote, so the batch never joins one', () => {
    const { doc, map } = setup();
    const seen: boolean[] = [];
    doc.on('beforeTransaction', (tr: Y.Transaction) => seen.push(tr.local));
    const big = new Y.Doc();
    big.getMap('m').set('big', 'x'.repeat(REENCODE_SKIP_BYTES));
    const peer = {};
    applyRemoteUpdates(doc, [remoteUpdate('one')], peer); // ordinary path
    applyRemoteUpdates(doc, [remoteUpdate('two'), remoteUpdate('three')], peer); // a coalesced frame
    applyRemoteUpdates(doc, [Y.encodeStateAsUpdate(big)], peer); // a large update
    expect(seen).toEqual([false, false, false]);
    expect(map.get('big')).toHaveLength(REENCODE_SKIP_BYTES);
  });
});
