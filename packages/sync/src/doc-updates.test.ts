import * as Y from 'yjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declineFastPathsForTesting } from './yjs-guard.js';
import { FAST_MIN_STRUCTS, encodeSmallTransaction, encodeTransaction, onDocUpdate, useFastUpdates } from './doc-updates.js';
import { SHORT_STRING } from './codec.js';
import { setEntry } from './nodes.js';
import { prng } from '../../../test/prng.js';

interface Seen {
  ours: Array<{ update: Uint8Array; origin: unknown; tr: Y.Transaction }>;
  /** encodeSmallTransaction's bytes (the reused buffer), for the same transactions. */
  small: Uint8Array[];
  yjs: Array<{ update: Uint8Array; origin: unknown; tr: Y.Transaction }>;
  stop: () => void;
}

/**
 * Records, per transaction, Yjs's own 'update' bytes and encodeTransaction's for the same
 * transaction (computed inside Yjs's listener, on the state Yjs encoded).
 */
function record(doc: Y.Doc): Seen {
  const seen: Seen = { ours: [], small: [], yjs: [], stop: () => undefined };
  seen.stop = onDocUpdate(doc, (update, origin, d, tr) => {
    expect(d).toBe(doc);
    seen.yjs.push({ update, origin, tr });
    seen.ours.push({ update: encodeTransaction(tr)!, origin: tr.origin, tr });
    seen.small.push(encodeSmallTransaction(tr)!);
  });
  return seen;
}

function expectSame(seen: Seen): void {
  expect(seen.ours.length).toBe(seen.yjs.length);
  for (let i = 0; i < seen.yjs.length; i++) {
    const a = seen.ours[i]!;
    const b = seen.yjs[i]!;
    expect(a.tr).toBe(b.tr);
    expect(a.origin).toBe(b.origin);
    expect(Buffer.from(a.update).equals(Buffer.from(b.update)), `transaction ${i}`).toBe(true);
    expect(Buffer.from(seen.small[i]!).equals(Buffer.from(b.update)), `transaction ${i} (small)`).toBe(true);
  }
}

const STRINGS = ['', 'a', 'title', 'ünï', '🌱 rhizome', 'x'.repeat(SHORT_STRING), 'y'.repeat(SHORT_STRING + 1), 'z'.repeat(300), '\u0000\u007f', '\u00ff'];

describe('encodeTransaction (the fast v1 encoder, byte for byte Yjs)', () => {
  it("writes exactly Yjs's 'update' bytes for the node layout: puts, overwrites, deletes", () => {
    const doc = new Y.Doc();
    const seen = record(doc);
    const nodes = doc.getMap('nodes');
    const fields = doc.getMap('fields');
    for (let round = 0; round < 3; round++) {
      doc.transact(() => {
        for (let i = 0; i < 200; i++) {
          nodes.set(`n${i}`, true);
          fields.set(`n${i}\u0000title`, `node ${i} round ${round}`);
          fields.set(`n${i}\u0000n`, i * round);
          fields.set(`n${i}\u0000done`, i % 2 === 0);
        }
      }, 'local');
    }
    doc.transact(() => {
      for (let i = 0; i < 200; i += 3) {
        nodes.delete(`n${i}`);
        fields.delete(`n${i}\u0000title`);
      }
    });
    nodes.set('single', true);
    expect(seen.yjs.length).toBe(5);
    expectSame(seen);
  });

  it('matches Yjs for nested types apps create: maps, arrays, text with formats and embeds, XML, subdocs, binary', () => {
    const doc = new Y.Doc();
    const seen = record(doc);
    const root = doc.getMap<unknown>('app');
    const inner = new Y.Map<unknown>();
    const list = new Y.Array<unknown>();
    const text = new Y.Text();
    doc.transact(() => {
      root.set('inner', inner);
      root.set('list', list);
      root.set('text', text);
      inner.set('ключ', 'значение');
      inner.set('obj', { a: [1, 'ä', null, { deep: 'é' }], b: new Uint8Array([1, 2]) });
      list.push(['a', 1, { k: 'v' }, new Uint8Array([9])]);
      text.insert(0, 'Hello wörld');
      text.format(0, 5, { bold: true, colour: 'rød' });
      text.insertEmbed(3, { image: 'ü.png' });
    });
    text.delete(2, 4);
    list.delete(1, 2);
    list.insert(1, [new Y.Map<unknown>()]);
    const frag = doc.getXmlFragment('xml');
    const el = new Y.XmlElement('p');
    frag.insert(0, [el]);
    el.setAttribute('class', 'ïntro');
    el.insert(0, [new Y.XmlText('xml text')]);
    root.set('sub', new Y.Doc({ guid: 'sub-doc-guid' }));
    root.set('bin', new Uint8Array([0, 255]));
    for (const s of STRINGS) inner.set(s, s);
    root.delete('inner');
    doc.getText('note').insert(0, 'ab');
    doc.getText('note').insert(1, 'x'); // splits a struct
    expectSame(seen);
    expect(seen.yjs.length).toBeGreaterThan(10);
  });

  it('matches Yjs for remote transactions (several clients, pending structs) and sends nothing when nothing changed', () => {
    const a = new Y.Doc();
    const b = new Y.Doc();
    const c = new Y.Doc();
    a.getMap('m').set('x', 'from a');
    b.getMap('m').set('y', 'from b');
    b.getArray('l').push(['b1', 'b2']);
    const target = new Y.Doc();
    const seen = record(target);
    target.getMap('m').set('own', 1);
    Y.applyUpdate(target, Y.encodeStateAsUpdate(a), 'peer-a');
    // b's update merged with a later one of c that depends on it, applied in one remote transaction
    Y.applyUpdate(c, Y.encodeStateAsUpdate(b));
    c.getArray('l').delete(0, 1);
    c.getMap('m').set('y', 'overwritten by c');
    const sv = Y.encodeStateVector(target);
    Y.applyUpdate(target, Y.encodeStateAsUpdate(c, sv), 'peer-c');
    // Applying the same again changes nothing: neither emits.
    Y.applyUpdate(target, Y.encodeStateAsUpdate(c), 'peer-c');
    // A dependency not there yet: held pending (Yjs emits nothing new for it either).
    const d = new Y.Doc();
    Y.applyUpdate(d, Y.encodeStateAsUpdate(c));
    const before = Y.encodeStateVector(d);
    d.getMap('m').set('z', 1);
    const first = Y.encodeStateAsUpdate(d, before);
    const before2 = Y.encodeStateVector(d);
    d.getMap('m').set('z', 2);
    Y.applyUpdate(target, Y.encodeStateAsUpdate(d, before2), 'late');
    Y.applyUpdate(target, first, 'early');
    target.transact(() => undefined);
    expect(target.getMap('m').get('z')).toBe(2);
    // A local transaction deleting items of several clients, in ascending client order (Yjs
    // writes the delete set's clients in descending order, whatever order they were added in).
    const m = target.getMap('m');
    const keys = [...m.keys()];
    const clientOf = (key: string): number => (m as unknown as { _map: Map<string, Y.Item> })._map.get(key)!.id.client;
    keys.sort((x, y) => clientOf(x) - clientOf(y));
    expect(new Set(keys.map(clientOf)).size).toBeGreaterThanOrEqual(3);
    target.transact(() => {
      for (const key of keys) m.delete(key);
      target.getArray('l').delete(0, target.getArray('l').length);
    });
    expectSame(seen);
    expect(seen.yjs.length).toBeGreaterThanOrEqual(5);
  });

  it('matches Yjs over random transactions (seeded)', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = prng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
      const doc = new Y.Doc();
      const seen = record(doc);
      const maps = [doc.getMap<unknown>('nodes'), doc.getMap<unknown>('fields')];
      const arr = doc.getArray<unknown>('arr');
      const text = doc.getText('text');
      for (let t = 0; t < 120; t++) {
        doc.transact(() => {
          const ops = 1 + Math.floor(random() * 20);
          for (let o = 0; o < ops; o++) {
            const r = random();
            const key = `k${Math.floor(random() * 40)}${random() < 0.1 ? 'ü' : ''}`;
            if (r < 0.4) pick(maps).set(key, random() < 0.5 ? pick(STRINGS) : { v: pick(STRINGS), n: Math.floor(random() * 1e6) });
            else if (r < 0.55) pick(maps).delete(key);
            else if (r < 0.7) arr.insert(Math.floor(random() * (arr.length + 1)), [pick(STRINGS), random()]);
            else if (r < 0.78 && arr.length > 0) arr.delete(Math.floor(random() * arr.length), 1);
            else if (r < 0.9) text.insert(Math.floor(random() * (text.length + 1)), pick(STRINGS), random() < 0.3 ? { b: true } : undefined);
            else if (text.length > 0) {
              const at = Math.floor(random() * text.length);
              text.delete(at, Math.min(text.length - at, 1 + Math.floor(random() * 5)));
            }
          }
        }, `t${t}`);
      }
      try {
        expectSame(seen);
      } catch (error) {
        throw new Error(`seed ${seed}: ${String(error)}`);
      }
    }
  });

  it('gives null for a transaction that changed nothing; a stopped listener hears nothing', () => {
    const doc = new Y.Doc();
    let tr: Y.Transaction | null = null;
    doc.transact((t) => {
      tr = t;
    });
    expect(encodeTransaction(tr!)).toBe(null);
    const calls: Uint8Array[] = [];
    const stop = onDocUpdate(doc, (u) => calls.push(u));
    doc.getMap('m').set('a', 1);
    stop();
    doc.getMap('m').set('b', 2);
    expect(calls).toHaveLength(1);
  });
});

/** The same writes on two docs of one client id, one with useFastUpdates: their 'update' events must match. */
function twins(): { fast: Y.Doc; plain: Y.Doc; stop: () => void; fastSeen: Uint8Array[]; plainSeen: Uint8Array[] } {
  const fast = new Y.Doc();
  const plain = new Y.Doc();
  plain.clientID = fast.clientID;
  const stop = useFastUpdates(fast);
  const fastSeen: Uint8Array[] = [];
  const plainSeen: Uint8Array[] = [];
  fast.on('update', (u: Uint8Array) => fastSeen.push(u));
  plain.on('update', (u: Uint8Array) => plainSeen.push(u));
  return { fast, plain, stop, fastSeen, plainSeen };
}

function expectEqual(a: Uint8Array[], b: Uint8Array[]): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Buffer.from(a[i]!).equals(Buffer.from(b[i]!)), `update ${i}`).toBe(true);
}

for (const declined of [false, true]) {
  describe(`useFastUpdates (large local transactions encoded once, in JavaScript)${declined ? ' (fast paths declined: public Yjs API)' : ''}`, () => {
    beforeAll(() => declineFastPathsForTesting(declined ? 'all' : []));
    afterAll(() => declineFastPathsForTesting([]));

    it("gives every 'update' listener Yjs's bytes once per transaction, large and small, with nested types", () => {
      const { fast, plain, stop, fastSeen, plainSeen } = twins();
      const second: Uint8Array[] = [];
      fast.on('update', (u: Uint8Array) => second.push(u));
      for (const doc of [fast, plain]) {
        const nodes = doc.getMap<unknown>('nodes');
        const fields = doc.getMap<unknown>('fields');
        doc.transact(() => {
          for (let i = 0; i < 100; i++) {
            nodes.set(`n${i}`, true);
            fields.set(`n${i}\u0000title`, `node ${i} ü`);
            fields.set(`n${i}\u0000n`, i);
          }
          const inner = new Y.Map<unknown>();
          nodes.set('inner', inner);
          inner.set('text', new Y.Text('hello'));
          inner.set('long', 'z'.repeat(300));
        }, 'batch');
        nodes.set('one', true); // small: Yjs's own path
        doc.transact(() => {
          for (let i = 0; i < 100; i++) fields.set(`n${i}\u0000title`, `renamed ${i}`);
          for (let i = 0; i < 50; i++) nodes.delete(`n${i}`);
        });
      }
      expect(plainSeen.length).toBe(3);
      expectEqual(fastSeen, plainSeen);
      expectEqual(second, plainSeen);
      stop();
      fast.getMap('nodes').set('after', 1);
      plain.getMap('nodes').set('after', 1);
      expectEqual(fastSeen, plainSeen);
    });

    it('a transaction an observer opens during a large one still reaches the listeners (and a listener added meanwhile stays)', () => {
      const { fast, plain, fastSeen, plainSeen } = twins();
      const late: Uint8Array[] = [];
      for (const doc of [fast, plain]) {
        const nodes = doc.getMap<unknown>('nodes');
        const echo = doc.getMap<unknown>('echo');
        nodes.observe((event) => {
          if (doc === fast && late.length === 0) doc.on('update', (u: Uint8Array) => late.push(u));
          // A write in response, in its own transaction (cleaned up after the large one).
          doc.transact(() => echo.set('seen', event.keysChanged.size));
        });
        doc.transact(() => {
          for (let i = 0; i < FAST_MIN_STRUCTS + 1; i++) nodes.set(`n${i}`, i);
        });
        nodes.set('x', 1);
      }
      expect(plainSeen.length).toBe(4);
      expectEqual(fastSeen, plainSeen);
      expect(late.length).toBeGreaterThanOrEqual(2);
      expect(fast.getMap('echo').get('seen')).toBe(1);
    });

    it('leaves remote transactions to Yjs, and a throwing listener keeps the registry whole', () => {
      const { fast, plain, fastSeen, plainSeen } = twins();
      const source = new Y.Doc();
      source.transact(() => {
        for (let i = 0; i < 200; i++) source.getMap('m').set(`k${i}`, i);
      });
      const update = Y.encodeStateAsUpdate(source);
      Y.applyUpdate(fast, update, 'peer');
      Y.applyUpdate(plain, update, 'peer');
      expectEqual(fastSeen, plainSeen);
      let throwOnce = true;
      fast.on('update', () => {
        if (throwOnce) {
          throwOnce = false;
          throw new Error('listener failed');
        }
      });
      expect(() =>
        fast.transact(() => {
          for (let i = 0; i < FAST_MIN_STRUCTS; i++) fast.getMap('m').set(`f${i}`, i);
        }),
      ).toThrow('listener failed');
      // (Yjs leaves a doc whose 'update' listener threw with its cleanup unfinished; what matters
      // here is that no listener went missing.)
      const registry = (fast as unknown as { _observers: Map<string, Set<unknown>> })._observers;
      expect(registry.get('update')?.size).toBe(2);
    });

    it('single puts in the node layout (setEntry), with remote writers between them: every update byte for byte, the same document', () => {
      for (const seed of [11, 12, 13, 14]) {
        const random = prng(seed);
        const { fast, plain, fastSeen, plainSeen } = twins();
        // Two remote writers, client ids below and above ours, that sometimes see our writes.
        const remotes = [new Y.Doc(), new Y.Doc()];
        remotes[0]!.clientID = fast.clientID - 1;
        remotes[1]!.clientID = fast.clientID + 1;
        const big = 'b'.repeat(3000);
        const huge = 'h'.repeat(70 * 1024);
        for (let step = 0; step < 150; step++) {
          const r = random();
          const id = `n${Math.floor(random() * 12)}`;
          if (r < 0.2) {
            const remote = remotes[Math.floor(random() * 2)]!;
            if (random() < 0.5) Y.applyUpdate(remote, Y.encodeStateAsUpdate(fast));
            remote.transact(() => {
              remote.getMap('nodes').set(id, true);
              remote.getMap('fields').set(`${id}\u0000title`, `remote ${step}`);
              if (random() < 0.3) remote.getMap('fields').delete(`${id}\u0000n`);
            });
            const update = Y.encodeStateAsUpdate(remote, Y.encodeStateVector(fast));
            Y.applyUpdate(fast, update, 'peer');
            Y.applyUpdate(plain, update, 'peer');
            continue;
          }
          const value = r < 0.25 ? big : r < 0.27 ? huge : random() < 0.5 ? pick(random, STRINGS) : { v: pick(random, STRINGS), n: Math.floor(random() * 1e9) };
          const withN = random() < 0.5;
          for (const doc of [fast, plain]) {
            const nodes = doc.getMap<unknown>('nodes');
            const fields = doc.getMap<unknown>('fields');
            if (r < 0.35) {
              // A delete: the marker and two fields (Yjs's own path inside the transaction).
              doc.transact(() => {
                nodes.delete(id);
                fields.delete(`${id}\u0000title`);
                fields.delete(`${id}\u0000n`);
              }, 'local');
            } else {
              doc.transact((tr) => {
                setEntry(tr, nodes, id, true);
                setEntry(tr, fields, `${id}\u0000title`, value as string);
                if (withN) setEntry(tr, fields, `${id}\u0000n`, step);
              }, 'local');
            }
          }
        }
        try {
          expectEqual(fastSeen, plainSeen);
          expect(Buffer.from(Y.encodeStateAsUpdate(fast)).equals(Buffer.from(Y.encodeStateAsUpdate(plain)))).toBe(true);
          // The updates rebuild the document.
          const copy = new Y.Doc();
          for (const u of fastSeen) Y.applyUpdate(copy, u);
          expect(copy.getMap('fields').toJSON()).toEqual(fast.getMap('fields').toJSON());
          expect(copy.getMap('nodes').toJSON()).toEqual(fast.getMap('nodes').toJSON());
        } catch (error) {
          throw new Error(`seed ${seed}: ${String(error)}`);
        }
      }
    });
  });
}

function pick<T>(random: () => number, xs: readonly T[]): T {
  return xs[Math.floor(random() * xs.length)]!;
}
