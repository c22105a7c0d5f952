import * as Y from 'yjs';
import { describe, expect, it } from 'vitest';
import { REENCODE_SKIP_BYTES, applyRemoteUpdates } from './apply.js';
import { onDocUpdate } from './doc-updates.js';

/** Rhizome's own listeners (the persistence, the router) see what `onDocUpdate` hands them. */
function collect(doc: Y.Doc): Uint8Array[] {
  const got: Uint8Array[] = [];
  onDocUpdate(doc, (update) => got.push(update));
  return got;
}

/** A fresh doc rebuilt from what the listeners got (what a store reloads, what a peer receives). */
function rebuild(updates: Uint8Array[]): Y.Doc {
  const copy = new Y.Doc();
  for (const u of updates) Y.applyUpdate(copy, u);
  return copy;
}

describe('a large received update and Rhizome own update listeners', () => {
  it('hands over structs that were pending before and that the large update let in', () => {
    const source = new Y.Doc();
    const m = source.getMap('m');
    const updates: Uint8Array[] = [];
    source.on('update', (u: Uint8Array) => updates.push(u));
    source.transact(() => {
      for (let i = 0; i < 3000; i++) m.set(`k${i}`, `value ${i} ${'x'.repeat(30)}`);
    });
    m.set('later', 'depends on the first update');
    const [first, second] = updates as [Uint8Array, Uint8Array];
    expect(first.length).toBeGreaterThanOrEqual(REENCODE_SKIP_BYTES);

    const doc = new Y.Doc();
    const got = collect(doc);
    applyRemoteUpdates(doc, [second], 'peer'); // waits for its dependency
    expect(doc.store.pendingStructs).not.toBeNull();
    applyRemoteUpdates(doc, [first], 'peer'); // lets both in
    expect(doc.getMap('m').get('later')).toBe('depends on the first update');
    // What was handed over must hold the pending structs too: else the store never gets them.
    expect(rebuild(got).getMap('m').toJSON()).toEqual(doc.getMap('m').toJSON());
  });

  it('does not hand over the received bytes of a large update that failed half way', () => {
    const source = new Y.Doc();
    source.transact(() => {
      const m = source.getMap('m');
      for (let i = 0; i < 3000; i++) m.set(`k${i}`, `value ${i} ${'x'.repeat(30)}`);
    });
    const update = Y.encodeStateAsUpdate(source);
    // Its structs are whole; its delete set (the last byte, 0: none) is cut off.
    const cut = update.subarray(0, update.length - 1);
    expect(cut.length).toBeGreaterThanOrEqual(REENCODE_SKIP_BYTES);

    const doc = new Y.Doc();
    const got = collect(doc);
    expect(() => applyRemoteUpdates(doc, [cut], 'peer')).toThrow();
    // Yjs integrated the structs before the delete set failed; the listeners get a valid update
    // of what was integrated (as Yjs's 'update' would), never the bytes that failed.
    for (const u of got) expect(() => Y.applyUpdate(new Y.Doc(), u)).not.toThrow();
    expect(rebuild(got).getMap('m').toJSON()).toEqual(doc.getMap('m').toJSON());
  });
});
