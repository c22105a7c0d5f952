import * as Y from 'yjs';
import { describe, expect, it } from 'vitest';
import { CACHE_MIN_BYTES, dropEncodedState, encodeDiff } from './state-cache.js';

const EMPTY_SV = Y.encodeStateVector(new Y.Doc());

describe('encodeDiff', () => {
  it('encodes the whole document once per change for empty state vectors', () => {
    const doc = new Y.Doc();
    const m = doc.getMap('m');
    m.set('a', 1);
    m.set('big', 'x'.repeat(CACHE_MIN_BYTES));
    const first = encodeDiff(doc, EMPTY_SV);
    expect(encodeDiff(doc, EMPTY_SV)).toBe(first); // reused while unchanged
    expect(Buffer.compare(first, Y.encodeStateAsUpdate(doc))).toBe(0);

    // A change (an addition, then a delete that adds no struct) drops it.
    m.set('b', 2);
    const second = encodeDiff(doc, EMPTY_SV);
    expect(second).not.toBe(first);
    expect(Buffer.compare(second, Y.encodeStateAsUpdate(doc))).toBe(0);
    m.delete('a');
    const third = encodeDiff(doc, EMPTY_SV);
    expect(third).not.toBe(second);
    const check = new Y.Doc();
    Y.applyUpdate(check, third);
    expect(check.getMap('m').get('b')).toBe(2);
    expect(check.getMap('m').has('a')).toBe(false);

    // A transaction that changes nothing keeps it; a remote update drops it.
    doc.transact(() => undefined);
    expect(encodeDiff(doc, EMPTY_SV)).toBe(third);
    const other = new Y.Doc();
    other.getMap('m').set('c', 3);
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(other), 'remote');
    const fourth = encodeDiff(doc, EMPTY_SV);
    expect(fourth).not.toBe(third);
    Y.applyUpdate(check, fourth);
    expect(check.getMap('m').get('c')).toBe(3);

    dropEncodedState(doc);
    expect(encodeDiff(doc, EMPTY_SV)).not.toBe(fourth);
  });

  it('does not keep a small document', () => {
    const doc = new Y.Doc();
    doc.getMap('m').set('a', 1);
    const first = encodeDiff(doc, EMPTY_SV);
    expect(encodeDiff(doc, EMPTY_SV)).not.toBe(first);
    expect(first).toEqual(Y.encodeStateAsUpdate(doc));
  });

  it('answers any other state vector with Yjs directly', () => {
    const doc = new Y.Doc();
    doc.getMap('m').set('a', 1);
    const peer = new Y.Doc();
    Y.applyUpdate(peer, Y.encodeStateAsUpdate(doc));
    doc.getMap('m').set('b', 2);
    const sv = Y.encodeStateVector(peer);
    const diff = encodeDiff(doc, sv);
    expect(diff).toEqual(Y.encodeStateAsUpdate(doc, sv));
    expect(encodeDiff(doc, sv)).not.toBe(diff);
    Y.applyUpdate(peer, diff);
    expect(peer.getMap('m').toJSON()).toEqual({ a: 1, b: 2 });
  });
});

describe('encodeDiff of an empty document (made without Yjs)', () => {
  it("is Yjs's own encoding for any state vector, and a document with pending structs still takes Yjs's path", () => {
    const doc = new Y.Doc();
    const other = new Y.Doc();
    other.getMap('m').set('a', 1);
    const someSv = Y.encodeStateVector(other);
    for (const sv of [EMPTY_SV, someSv]) expect(Buffer.compare(encodeDiff(doc, sv), Y.encodeStateAsUpdate(doc, sv))).toBe(0);
    expect([...encodeDiff(doc, EMPTY_SV)]).toEqual([0, 0]);

    // An update whose dependency is missing stays pending: the doc has no clients in its store,
    // yet its diff carries the pending structs (what Yjs sends), not [0, 0].
    const before = Y.encodeStateVector(other);
    other.getMap('m').set('b', 2);
    const dependent = Y.encodeStateAsUpdate(other, before);
    Y.applyUpdate(doc, dependent);
    expect(doc.store.clients.size).toBe(0);
    expect(doc.store.pendingStructs).not.toBeNull();
    const diff = encodeDiff(doc, EMPTY_SV);
    expect(Buffer.compare(diff, Y.encodeStateAsUpdate(doc, EMPTY_SV))).toBe(0);
    expect(diff.length).toBeGreaterThan(2);
  });
});
