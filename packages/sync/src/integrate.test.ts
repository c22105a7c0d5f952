import * as Y from 'yjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declineFastPathsForTesting } from './yjs-guard.js';
import { integrateUpdate } from './integrate.js';
import { REENCODE_SKIP_BYTES, applyRemoteUpdates } from './apply.js';

/** What one remote transaction did to a document, as its listeners and its state show it. */
interface Outcome {
  handled: boolean;
  state: Uint8Array;
  vector: Uint8Array;
  json: Record<string, unknown>;
  /** Yjs's encoding of the transaction (an `'update'` listener's bytes). */
  updates: Uint8Array[];
  /** Changed keys per root type name, in the transaction's order. */
  changed: Array<[string, Array<string | null>]>;
  /** Keys of every observer event of the root maps. */
  events: Array<[string, string[]]>;
  deleteSet: Y.Doc['store'];
  pending: boolean;
}

const ROOTS = ['nodes', 'fields', 'm', 'text', 'list'];

/** A document with clientID 99 (not a writer of the updates) holding `prior` updates. */
function target(prior: Uint8Array[]): Y.Doc {
  const doc = new Y.Doc();
  doc.clientID = 99;
  for (const u of prior) Y.applyUpdate(doc, u);
  return doc;
}

function rootOf(doc: Y.Doc, type: unknown): string {
  for (const [name, t] of doc.share) if (t === type) return name;
  return '(nested)';
}

/** Applies `update` to a document holding `prior`, through Yjs or through integrateUpdate (falling back to Yjs when declined). */
function run(prior: Uint8Array[], update: Uint8Array, how: 'yjs' | 'rhizome', types?: (doc: Y.Doc) => void): Outcome {
  const doc = target(prior);
  types?.(doc);
  const updates: Uint8Array[] = [];
  const changed: Outcome['changed'] = [];
  const events: Outcome['events'] = [];
  doc.on('update', (u: Uint8Array) => updates.push(u));
  doc.on('afterTransaction', (tr: Y.Transaction) => {
    for (const [type, keys] of tr.changed) changed.push([rootOf(doc, type), [...keys]]);
  });
  for (const name of ROOTS) {
    const t = doc.share.get(name);
    if (t instanceof Y.Map) t.observe((e) => events.push([name, [...e.keysChanged]]));
  }
  let handled = false;
  const origin = { peer: 'remote' };
  Y.transact(
    doc,
    (tr) => {
      if (how === 'rhizome') handled = integrateUpdate(tr, update, origin);
      if (!handled) Y.applyUpdate(doc, update, origin);
    },
    origin,
    false,
  );
  const json: Record<string, unknown> = {};
  for (const [name, t] of doc.share) json[name] = t instanceof Y.Map || t instanceof Y.Array || t instanceof Y.Text ? t.toJSON() : t.constructor.name;
  return {
    handled,
    state: Y.encodeStateAsUpdate(doc),
    vector: Y.encodeStateVector(doc),
    json,
    updates,
    changed,
    events,
    deleteSet: doc.store,
    pending: doc.store.pendingStructs !== null || doc.store.pendingDs !== null,
  };
}

/** Checks integrateUpdate against Y.applyUpdate on the same document; returns whether it handled the update. */
function same(prior: Uint8Array[], update: Uint8Array, types?: (doc: Y.Doc) => void): boolean {
  const a = run(prior, update, 'yjs', types);
  const b = run(prior, update, 'rhizome', types);
  expect(b.state).toEqual(a.state);
  expect(b.vector).toEqual(a.vector);
  expect(b.json).toEqual(a.json);
  expect(b.updates).toEqual(a.updates);
  expect(b.changed).toEqual(a.changed);
  expect(b.events).toEqual(a.events);
  expect(Y.equalDeleteSets(Y.createDeleteSetFromStructStore(b.deleteSet), Y.createDeleteSetFromStructStore(a.deleteSet))).toBe(true);
  expect(b.pending).toBe(a.pending);
  // The item chains, not only what they encode to: left/right links and each key's current item.
  expect(chains(b.deleteSet)).toEqual(chains(a.deleteSet));
  return b.handled;
}

/** Every struct of a store as `client:clock` with its neighbours and deleted flag (map-entry chains). */
function chains(store: Y.Doc['store']): string[] {
  const out: string[] = [];
  const id = (s: Y.Item | null): string => (s === null ? '-' : `${s.id.client}:${s.id.clock}`);
  for (const [client, structs] of [...store.clients].sort((x, y) => x[0] - y[0])) {
    for (const s of structs) {
      if (s instanceof Y.Item) out.push(`${client}:${s.id.clock} ${id(s.left)}<>${id(s.right)} ${s.parentSub ?? ''} ${s.deleted ? 'd' : ''}`);
      else out.push(`${client}:${s.id.clock} gc ${s.length}`);
    }
  }
  return out;
}

/** Rhizome's node model: `nodes[id] = true`, `fields[id + U+0000 + field] = value`. */
function putNodes(doc: Y.Doc, from: number, to: number, value: (i: number) => unknown = (i) => i): void {
  doc.transact(() => {
    for (let i = from; i < to; i++) {
      doc.getMap('nodes').set(`n${i}`, true);
      doc.getMap('fields').set(`n${i}\u0000v`, value(i));
    }
  });
}

function writer(clientID: number, gc = true): Y.Doc {
  const doc = new Y.Doc({ gc });
  doc.clientID = clientID;
  return doc;
}

function sync(a: Y.Doc, b: Y.Doc): void {
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)));
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)));
}

for (const declined of [false, true]) {
  describe(`integrateUpdate${declined ? ' (fast paths declined: public Yjs API)' : ''}`, () => {
    beforeAll(() => declineFastPathsForTesting(declined ? 'all' : []));
    afterAll(() => declineFastPathsForTesting([]));

    it('integrates a full state of new keys into a fresh document as Y.applyUpdate does', () => {
      const src = writer(7);
      putNodes(src, 0, 500);
      expect(same([], Y.encodeStateAsUpdate(src))).toBe(!declined);
    });

    it('integrates overwritten and deleted entries (garbage-collected or kept)', () => {
      for (const gc of [true, false]) {
        const src = writer(7, gc);
        putNodes(src, 0, 50);
        putNodes(src, 0, 30, (i) => `second ${i}`);
        putNodes(src, 10, 20, (i) => ({ third: i, list: [i, 'x'] }));
        src.transact(() => {
          for (let i = 40; i < 45; i++) {
            src.getMap('nodes').delete(`n${i}`);
            src.getMap('fields').delete(`n${i}\u0000v`);
          }
        });
        expect(same([], Y.encodeStateAsUpdate(src))).toBe(!declined);
      }
    });

    it('integrates several clients in Yjs order, concurrent writes to one key and overwrites across clients', () => {
      const a = writer(3);
      const b = writer(11);
      const c = writer(5);
      putNodes(a, 0, 20, (i) => `a${i}`);
      putNodes(b, 10, 30, (i) => `b${i}`); // 10..19 concurrent with a
      sync(a, b);
      putNodes(c, 15, 25, (i) => `c${i}`); // concurrent with both
      putNodes(a, 0, 5, (i) => `a again ${i}`); // overwrites a's own entries after seeing b's
      putNodes(b, 18, 22, (i) => `b over ${i}`); // origins in a's and b's structs
      sync(a, c);
      sync(b, c);
      sync(a, b);
      putNodes(c, 10, 12, (i) => `c last ${i}`); // origin in another client's item
      const full = Y.mergeUpdates([Y.encodeStateAsUpdate(a), Y.encodeStateAsUpdate(c)]);
      expect(same([], full)).toBe(!declined);
      // A document that already holds a's first state receives the rest, with its own concurrent writes.
      const first = Y.encodeStateAsUpdate(a);
      const local = writer(98);
      Y.applyUpdate(local, first);
      putNodes(local, 0, 3, (i) => `local ${i}`);
      const prior = [first, Y.encodeStateAsUpdate(local)];
      const diff = Y.encodeStateAsUpdate(c, Y.encodeStateVector(target(prior)));
      expect(same(prior, diff)).toBe(!declined);
    });

    it('integrates text and array items (strings, any, deleted ranges) through Yjs', () => {
      const src = writer(7);
      const text = src.getText('text');
      const list = src.getArray('list');
      text.insert(0, 'hello world');
      list.insert(0, [1, 2, 3, 'four']);
      src.transact(() => {
        text.insert(5, ', dear');
        text.delete(0, 2);
        list.delete(1, 1);
        list.insert(2, [{ five: 5 }]);
      });
      expect(same([], Y.encodeStateAsUpdate(src), (d) => (d.getText('text'), d.getArray('list')))).toBe(!declined);
    });

    it('declines nested types, Skip structs, missing dependencies, overlaps and pending structs, leaving the document as it was', () => {
      const nested = writer(7);
      nested.getMap('m').set('inner', new Y.Map());
      expect(same([], Y.encodeStateAsUpdate(nested))).toBe(false);

      const src = writer(7);
      putNodes(src, 0, 5);
      const one = Y.encodeStateAsUpdate(src);
      putNodes(src, 5, 10);
      const two = Y.encodeStateAsUpdate(src, Y.encodeStateVector(target([one])));
      putNodes(src, 10, 15);
      const three = Y.encodeStateAsUpdate(src, Y.encodeStateVector(target([one, two])));
      // A gap (a Skip struct in the merge) and a client starting past the document's state (pending).
      expect(same([], Y.mergeUpdates([one, three]))).toBe(false);
      expect(same([one], three)).toBe(false);
      // Overlap: structs the document holds in part.
      expect(same([one], Y.encodeStateAsUpdate(src))).toBe(false);
      // A dependency on another client that is in neither the update nor the document.
      const other = writer(3);
      Y.applyUpdate(other, one);
      putNodes(other, 0, 2, () => 'over');
      const overOnly = Y.encodeStateAsUpdate(other, Y.encodeStateVector(target([one])));
      expect(same([], overOnly)).toBe(false);
      // The document holds pending structs.
      expect(same([three], Y.mergeUpdates([one, two]))).toBe(false);

      // Declined means untouched: a document with nothing, asked to integrate a nested type.
      const doc = target([]);
      let handled = true;
      Y.transact(doc, (tr) => (handled = integrateUpdate(tr, Y.encodeStateAsUpdate(nested), null)), null, false);
      expect(handled).toBe(false);
      expect(Y.encodeStateAsUpdate(doc)).toEqual(Y.encodeStateAsUpdate(new Y.Doc()));
    });

    it('is what applyRemoteUpdates does with one large update: listeners get the received bytes, the document equals Yjs’s', () => {
      const src = writer(7);
      putNodes(src, 0, 3000, (i) => `value number ${i}`);
      const update = Y.encodeStateAsUpdate(src);
      expect(update.length).toBeGreaterThanOrEqual(REENCODE_SKIP_BYTES);
      const doc = target([]);
      const got: Uint8Array[] = [];
      doc.on('update', (u: Uint8Array) => got.push(u));
      applyRemoteUpdates(doc, [update], { peer: 'remote' });
      // Declined (the updates fast path too): the ordinary path, one update event with Yjs's encoding.
      if (declined) expect(got.length).toBe(1);
      else expect(got).toEqual([update]);
      const yjs = target([update]);
      expect(Y.encodeStateAsUpdate(doc)).toEqual(Y.encodeStateAsUpdate(yjs));
      expect(doc.getMap('fields').get('n2999\u0000v')).toBe('value number 2999');
    });
  });
}
