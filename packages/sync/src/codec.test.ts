import * as Y from 'yjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declineFastPathsForTesting } from './yjs-guard.js';
import { SHORT_STRING, applyUpdate, encodeStateAsUpdate } from './codec.js';

/** A document with every kind of string Yjs writes: keys, map values, text, formats, embeds, nested any. */
function richDoc(): Y.Doc {
  const doc = new Y.Doc();
  const nodes = doc.getMap('nodes');
  doc.transact(() => {
    for (let i = 0; i < 50; i++) {
      const node = new Y.Map<unknown>();
      nodes.set(`n${i}`, node);
      node.set('title', `node ${i}`);
      node.set('n', i);
      node.set('done', i % 2 === 0);
    }
    const odd = new Y.Map<unknown>();
    nodes.set('ünïcödé-kéy', odd);
    odd.set('emoji 🌱', 'rhizome 🌱 grows');
    odd.set('long', 'a'.repeat(SHORT_STRING + 1));
    odd.set('edge', 'b'.repeat(SHORT_STRING));
    odd.set('empty', '');
    odd.set('control', '\u0000\u007f');
    odd.set('latin1', '\u00ff\u0080');
    odd.set('nested', { list: ['x', 'ÿ', 1, null, true, { deep: 'é', k: 'v' }], 'ключ': 'значение', bytes: new Uint8Array([1, 2, 3]) });
    odd.set('numbers', [1.5, -7, 2 ** 40, 0]);
    odd.set('binary', new Uint8Array([0, 255]));
    const text = doc.getText('note');
    text.insert(0, 'Hello wörld, ');
    text.insert(13, 'bold', { bold: true, colour: 'rød' });
    text.insertEmbed(5, { image: 'ü.png' });
    const arr = doc.getArray<unknown>('list');
    arr.push(['a', 'ä', { k: 'v' }]);
  });
  nodes.delete('n3');
  (nodes.get('n4') as Y.Map<unknown>).set('title', 'renamed');
  return doc;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

for (const declined of [false, true]) {
  describe(`codec (v1 with short ASCII strings in JavaScript)${declined ? ' (fast paths declined: public Yjs API)' : ''}`, () => {
    beforeAll(() => declineFastPathsForTesting(declined ? 'all' : []));
    afterAll(() => declineFastPathsForTesting([]));

    it('encodes exactly the bytes Yjs encodes, whole and against a state vector', () => {
      const doc = richDoc();
      expect(sameBytes(encodeStateAsUpdate(doc), Y.encodeStateAsUpdate(doc))).toBe(true);
      const older = new Y.Doc();
      older.getMap('nodes').set('x', 'y');
      Y.applyUpdate(older, Y.encodeStateAsUpdate(doc));
      older.getMap('nodes').set('later', 'ö');
      const sv = Y.encodeStateVector(doc);
      expect(sameBytes(encodeStateAsUpdate(older, sv), Y.encodeStateAsUpdate(older, sv))).toBe(true);
    });

    it('decodes into the same document as Yjs', () => {
      const update = Y.encodeStateAsUpdate(richDoc());
      const ours = new Y.Doc();
      applyUpdate(ours, update, 'peer');
      const theirs = new Y.Doc();
      Y.applyUpdate(theirs, update);
      expect(sameBytes(Y.encodeStateAsUpdate(ours), Y.encodeStateAsUpdate(theirs))).toBe(true);
      expect(ours.getMap('nodes').toJSON()).toEqual(theirs.getMap('nodes').toJSON());
      expect(ours.getText('note').toDelta()).toEqual(theirs.getText('note').toDelta());
      const odd = ours.getMap('nodes').get('ünïcödé-kéy') as Y.Map<unknown>;
      expect(odd.get('emoji 🌱')).toBe('rhizome 🌱 grows');
      expect(odd.get('nested')).toEqual({ list: ['x', 'ÿ', 1, null, true, { deep: 'é', k: 'v' }], 'ключ': 'значение', bytes: new Uint8Array([1, 2, 3]) });
    });

    it('tells apart short strings that share a slot of the recent-strings cache', () => {
      // 5,000 distinct keys and values of one length in 1,024 slots: many collide.
      const doc = new Y.Doc();
      const m = doc.getMap('m');
      doc.transact(() => {
        for (let i = 0; i < 5000; i++) m.set(`k${String(i).padStart(5, '0')}`, `v${String(4999 - i).padStart(5, '0')}`);
      });
      const ours = new Y.Doc();
      applyUpdate(ours, Y.encodeStateAsUpdate(doc));
      expect(ours.getMap('m').toJSON()).toEqual(m.toJSON());
    });

    it('reads ASCII keys and values of every length from 0 to past SHORT_STRING as Yjs does, small update and large', () => {
      // Each length once as a key and once as a value (every case of the string builder, and the
      // 8-byte pieces above 8), with all 128 ASCII codes among them; then the same inside an update
      // large enough for the recent-strings cache.
      const text = (n: number, seed: number): string => Array.from({ length: n }, (_, i) => String.fromCharCode((seed * 7 + i * 13) % 128)).join('');
      for (const padding of [0, 20_000]) {
        const doc = new Y.Doc();
        const m = doc.getMap('m');
        doc.transact(() => {
          for (let n = 0; n <= SHORT_STRING + 9; n++) {
            m.set(`${n}:${text(n, n)}`, text(n, n + 1));
            m.set(text(n, n + 2) + `|${n}`, { [text(n, n + 3)]: [text(n, n + 4)] });
          }
          if (padding > 0) m.set('padding', 'p'.repeat(padding));
        });
        const update = Y.encodeStateAsUpdate(doc);
        expect(update.length >= 16 * 1024).toBe(padding > 0);
        const ours = new Y.Doc();
        applyUpdate(ours, update);
        expect(ours.getMap('m').toJSON()).toEqual(m.toJSON());
        expect(sameBytes(Y.encodeStateAsUpdate(ours), update)).toBe(true);
      }
    });

    it('passes the transaction origin and emits the update event as Yjs does', () => {
      const update = Y.encodeStateAsUpdate(richDoc());
      const doc = new Y.Doc();
      const seen: unknown[] = [];
      doc.on('update', (_u: Uint8Array, origin: unknown) => seen.push(origin));
      applyUpdate(doc, update, 'peer-a');
      expect(seen).toEqual(['peer-a']);
    });

    it('keeps pending structs in an encoding of a doc that waits for a missing dependency', () => {
      const source = new Y.Doc();
      const m = source.getMap('m');
      m.set('a', 'first');
      const first = Y.encodeStateAsUpdate(source);
      m.set('b', 'second');
      const afterFirst = new Y.Doc();
      Y.applyUpdate(afterFirst, first);
      const second = Y.encodeStateAsUpdate(source, Y.encodeStateVector(afterFirst));
      const waiting = new Y.Doc();
      applyUpdate(waiting, second); // lacks `first`: pending
      expect(waiting.store.pendingStructs).not.toBeNull();
      const encoded = encodeStateAsUpdate(waiting);
      expect(sameBytes(encoded, Y.encodeStateAsUpdate(waiting))).toBe(true);
      const done = new Y.Doc();
      applyUpdate(done, encoded);
      applyUpdate(done, first);
      expect(done.getMap('m').toJSON()).toEqual({ a: 'first', b: 'second' });
    });

    it('fails on malformed bytes where Yjs fails (truncated, invalid UTF-8)', () => {
      const update = Y.encodeStateAsUpdate(richDoc());
      const small = new Y.Doc();
      small.getMap('m').set('kq', 'vw');
      const invalid = Y.encodeStateAsUpdate(small).slice();
      const at = invalid.findIndex((b, i) => b === 0x6b && invalid[i + 1] === 0x71); // 'kq'
      invalid[at] = 0xff;
      invalid[at + 1] = 0xfe;
      for (const bad of [update.subarray(0, update.length >> 1), invalid]) {
        const outcome = (apply: () => void): string => {
          try {
            apply();
            return 'applied';
          } catch {
            return 'threw';
          }
        };
        const yjs = outcome(() => Y.applyUpdate(new Y.Doc(), bad));
        expect(outcome(() => applyUpdate(new Y.Doc(), bad))).toBe(yjs);
      }
      expect(() => Y.applyUpdate(new Y.Doc(), invalid)).toThrow();
    });
  });
}
