import * as Y from 'yjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declineFastPathsForTesting } from './yjs-guard.js';
import type { JsonValue } from '@rhizome/core';
import { FIELDS_MAP, NODES_MAP, NodeModel, setEntry } from './nodes.js';
import { prng } from '../../../test/prng.js';

/** Yjs's own way to make the same writes: `Y.Map#set` per entry, one transaction per call. */
/** Two empty documents with one client id: ours (written by Rhizome's code) and theirs (by Yjs's). */
function twins(): { ours: Y.Doc; theirs: Y.Doc } {
  const ours = new Y.Doc();
  const theirs = new Y.Doc();
  theirs.clientID = ours.clientID;
  return { ours, theirs };
}

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

for (const declined of [false, true]) {
  describe(`NodeModel writes${declined ? ' (fast paths declined: public Yjs API)' : ''}`, () => {
    beforeAll(() => declineFastPathsForTesting(declined ? 'all' : []));
    afterAll(() => declineFastPathsForTesting([]));

    it('make byte for byte the document and updates Y.Map#set makes (puts, overwrites, nested values, batches)', () => {
      const { ours, theirs } = twins();
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
}

/** What a doc's observers and listeners see of each transaction: its update and its changed keys. */
function record(doc: Y.Doc): { updates: string[]; changed: string[]; deletes: string[] } {
  const out = { updates: [] as string[], changed: [] as string[], deletes: [] as string[] };
  doc.on('update', (u: Uint8Array) => out.updates.push(Buffer.from(u).toString('hex')));
  doc.on('afterTransaction', (tr: Y.Transaction) => {
    if (tr.changed.size === 0 && tr.deleteSet.clients.size === 0) return; // an empty transaction
    const types = [...(tr.changed as Map<unknown, Set<string | null>>)].map(([type, keys]) => {
      const name = type === doc.getMap(NODES_MAP) ? 'nodes' : type === doc.getMap(FIELDS_MAP) ? 'fields' : 'other';
      return `${name}:${[...keys].map(String).sort().join(',')}`;
    });
    out.changed.push(types.sort().join(' | '));
    const ds = [...tr.deleteSet.clients].map(([client, items]) => `${client}:${items.map((d) => `${d.clock}+${d.len}`).join(',')}`);
    out.deletes.push(ds.sort().join(' '));
  });
  return out;
}

for (const declined of [false, true]) {
  describe(`setEntry (NodeModel writes integrate map entries themselves)${declined ? ' (fast paths declined: public Yjs API)' : ''}`, () => {
    beforeAll(() => declineFastPathsForTesting(declined ? 'all' : []));
    afterAll(() => declineFastPathsForTesting([]));

    for (const seed of [1, 2, 3, 4]) {
      it(`matches Y.Map#set with concurrent remote writers, deletes and re-sets (seed ${seed})`, () => {
        const random = prng(seed);
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
        const { ours, theirs } = twins();
        const model = new NodeModel(ours);
        const ref = viaYMap(theirs);
        const seenOurs = record(ours);
        const seenTheirs = record(theirs);
        // Two remote writers whose client ids sort below and above ours (Yjs orders conflicts by id).
        const remotes = [new Y.Doc(), new Y.Doc()];
        remotes[0]!.clientID = ours.clientID - 1;
        remotes[1]!.clientID = ours.clientID + 1;
        const ids = ['a', 'b', 'c', 'd'];
        const fieldNames = ['x', 'y', 'z'];
        const data = (): Record<string, JsonValue> => {
          const out: Record<string, JsonValue> = {};
          for (const f of fieldNames) if (random() < 0.6) out[f] = pick<JsonValue>([1, 'two', null, true, [3], { k: 'v' }]);
          return out;
        };
        for (let step = 0; step < 120; step++) {
          const r = random();
          if (r < 0.35) {
            const id = pick(ids);
            const d = data();
            model.put(id, d, 'o');
            ref.put(id, d);
          } else if (r < 0.5) {
            const batch = [0, 1, 2].map(() => [pick(ids), data()] as const);
            model.putMany(batch, 'o');
            theirs.transact(() => {
              for (const [id, d] of batch) ref.put(id, d);
            });
          } else if (r < 0.6) {
            const id = pick(ids);
            model.delete(id, 'o');
            theirs.transact(() => {
              if (!theirs.getMap(NODES_MAP).has(id) && !fieldNames.some((f) => theirs.getMap(FIELDS_MAP).has(`${id}\u0000${f}`))) return;
              theirs.getMap(NODES_MAP).delete(id);
              for (const f of fieldNames) if (theirs.getMap(FIELDS_MAP).has(`${id}\u0000${f}`)) theirs.getMap(FIELDS_MAP).delete(`${id}\u0000${f}`);
            });
          } else {
            // A remote writer, which may or may not have seen our latest writes, writes the same keys.
            const remote = pick(remotes);
            if (random() < 0.5) Y.applyUpdate(remote, Y.encodeStateAsUpdate(ours, Y.encodeStateVector(remote)));
            const id = pick(ids);
            remote.transact(() => {
              remote.getMap(NODES_MAP).set(id, true);
              remote.getMap(FIELDS_MAP).set(`${id}\u0000${pick(fieldNames)}`, pick<JsonValue>([7, 'r', false]));
            });
            const update = Y.encodeStateAsUpdate(remote, Y.encodeStateVector(ours));
            Y.applyUpdate(ours, update, 'remote');
            Y.applyUpdate(theirs, update, 'remote');
          }
        }
        expect(seenOurs.updates).toEqual(seenTheirs.updates);
        expect(seenOurs.changed).toEqual(seenTheirs.changed);
        expect(seenOurs.deletes).toEqual(seenTheirs.deletes);
        expect(Buffer.from(Y.encodeStateAsUpdate(ours)).equals(Buffer.from(Y.encodeStateAsUpdate(theirs)))).toBe(true);
        expect(ours.getMap(FIELDS_MAP).toJSON()).toEqual(theirs.getMap(FIELDS_MAP).toJSON());
      });
    }

    it('takes Yjs’s own integrate for a map that is not a root type, with the same result', () => {
      const { ours, theirs } = twins();
      const seenOurs = record(ours);
      const seenTheirs = record(theirs);
      for (const doc of [ours, theirs]) doc.getMap('root').set('inner', new Y.Map());
      const inner = (doc: Y.Doc): Y.Map<unknown> => doc.getMap('root').get('inner') as Y.Map<unknown>;
      ours.transact((tr) => {
        setEntry(tr, inner(ours), 'k', 1);
        setEntry(tr, inner(ours), 'k', 'two');
        setEntry(tr, inner(ours), 'j', true);
      });
      theirs.transact(() => {
        inner(theirs).set('k', 1);
        inner(theirs).set('k', 'two');
        inner(theirs).set('j', true);
      });
      expect(seenOurs.updates).toEqual(seenTheirs.updates);
      expect(seenOurs.deletes).toEqual(seenTheirs.deletes);
      expect(inner(ours).toJSON()).toEqual({ k: 'two', j: true });
    });
  });
}

for (const declined of [false, true]) {
  describe(`NodeModel index${declined ? ' (fast paths declined: public Yjs API)' : ''}`, () => {
    beforeAll(() => declineFastPathsForTesting(declined ? 'all' : []));
    afterAll(() => declineFastPathsForTesting([]));

    it('observes the fields map only from the first read on, and reads right before, at and after it (local and remote writes)', () => {
      const doc = new Y.Doc();
      const model = new NodeModel(doc);
      const observers = (): number => (model.fields as unknown as { _eH: { l: unknown[] } })._eH.l.length;
      const remote = new Y.Doc();
      const other = new NodeModel(remote);
      // Writes before any read: no observer yet.
      model.put('a', { x: 1, y: 2 }, null);
      other.put('b', { z: 3 }, null);
      Y.applyUpdate(doc, Y.encodeStateAsUpdate(remote));
      expect(observers()).toBe(0);
      // The first read indexes the whole map, and observes it from then on.
      expect(model.get('a')).toEqual({ x: 1, y: 2 });
      expect(observers()).toBe(1);
      expect(model.get('b')).toEqual({ z: 3 });
      // Later writes, local and remote, new fields and deletes, reach the index through the observer.
      model.put('a', { w: 4 }, null);
      const sv = Y.encodeStateVector(remote);
      other.put('b', { q: 5 }, null);
      other.delete('b', null);
      other.put('c', { r: 6 }, null);
      Y.applyUpdate(doc, Y.encodeStateAsUpdate(remote, sv));
      expect(model.get('a')).toEqual({ x: 1, y: 2, w: 4 });
      expect(model.get('b')).toBeUndefined();
      expect(model.get('c')).toEqual({ r: 6 });
      expect(model.list().map((n) => n.id).sort()).toEqual(['a', 'c']);
      expect(observers()).toBe(1);
    });
  });
}
