import * as Y from 'yjs';
import { describe, expect, it } from 'vitest';
import type { JsonValue } from '@rhizome/core';
import { FIELDS_MAP, NODES_MAP, NodeModel } from './nodes.js';

/** Yjs's own way to make the same writes: `Y.Map#set` per entry, one transaction per call. */
function viaYMap(doc: Y.Doc): { put: (id: string, data: Record<string, JsonValue>) => void } {
  const nodes = doc.getMap(NODES_MAP);
  const fields = doc.getMap(FIELDS_MAP);
  return {
    put: (id, data) =>
      doc.transact(() => {
        nodes.set(id, true);
        for (const field in data) fields.set(`${id}\u0000${field}`, data[field]!);
      }),
  };
}

function updates(doc: Y.Doc): Uint8Array[] {
  const out: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => out.push(u));
  return out;
}

describe('NodeModel writes', () => {
  it('make byte for byte the document and updates Y.Map#set makes (puts, overwrites, nested values, batches)', () => {
    const ours = new Y.Doc();
    const theirs = new Y.Doc();
    theirs.clientID = ours.clientID;
    const model = new NodeModel(ours);
    const ref = viaYMap(theirs);
    const a = updates(ours);
    const b = updates(theirs);
    const values: Array<Record<string, JsonValue>> = [
      { title: 'hello', n: 1, done: false },
      { title: 'wörld 🌱', list: [1, 'two', null, { deep: true }], empty: '' },
      { n: 2.5, obj: { k: 'v', arr: [] }, nil: null },
    ];
    model.put('a', values[0]!, 'o');
    ref.put('a', values[0]!);
    model.put('a', values[1]!, 'o'); // overwrites 'title', adds fields
    ref.put('a', values[1]!);
    model.putMany([['b', values[2]!], ['c', values[0]!], ['a', values[2]!]], 'o');
    theirs.transact(() => {
      ref.put('b', values[2]!);
      ref.put('c', values[0]!);
      ref.put('a', values[2]!);
    });
    model.apply([{ id: 'd', data: values[1]! }, { id: 'b', data: null }, { id: 'b', data: values[0]! }], 'o');
    theirs.transact(() => {
      ref.put('d', values[1]!);
      theirs.getMap(NODES_MAP).delete('b');
      for (const field of Object.keys(values[2]!)) theirs.getMap(FIELDS_MAP).delete(`b\u0000${field}`);
      ref.put('b', values[0]!);
    });
    expect(a.length).toBe(b.length);
    for (let i = 0; i < a.length; i++) expect(Buffer.from(a[i]!).equals(Buffer.from(b[i]!)), `update ${i}`).toBe(true);
    expect(Buffer.from(Y.encodeStateAsUpdate(ours)).equals(Buffer.from(Y.encodeStateAsUpdate(theirs)))).toBe(true);
    expect(model.get('a')).toEqual({ ...values[0], ...values[1], ...values[2] });
    expect(model.get('b')).toEqual(values[0]);
  });
});
