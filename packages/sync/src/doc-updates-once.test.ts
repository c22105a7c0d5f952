import * as Y from 'yjs';
import { describe, expect, it } from 'vitest';
import { openDatabase } from './index.js';
import { FAST_MIN_STRUCTS, useFastUpdates } from './doc-updates.js';

/** A local transaction large enough for the fast encoding. */
function large(doc: Y.Doc, tag: string): void {
  doc.transact(() => {
    const m = doc.getMap('m');
    for (let i = 0; i < FAST_MIN_STRUCTS + 10; i++) m.set(`${tag}${i}`, i);
  });
}

describe('useFastUpdates and update listeners that unsubscribe', () => {
  it('doc.once("update") fires once; a listener that removes itself is not called again', () => {
    const doc = new Y.Doc();
    useFastUpdates(doc);
    const all: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => all.push(u));
    let once = 0;
    doc.once('update', () => once++);
    let self = 0;
    const selfRemoving = (): void => {
      self++;
      doc.off('update', selfRemoving);
    };
    doc.on('update', selfRemoving);
    large(doc, 'a');
    doc.getMap('m').set('small', 1);
    large(doc, 'b');
    expect(once).toBe(1);
    expect(self).toBe(1);
    expect(all).toHaveLength(3);
    // Every update once, and they rebuild the document.
    const copy = new Y.Doc();
    for (const u of all) Y.applyUpdate(copy, u);
    expect(copy.getMap('m').toJSON()).toEqual(doc.getMap('m').toJSON());
  });

  it('an app listener on db.doc that stops itself after a batch of puts is not called again', async () => {
    const db = await openDatabase({ id: 'doc-updates-once' });
    try {
      let calls = 0;
      db.doc.once('update', () => calls++);
      db.putMany(Array.from({ length: 40 }, (_, i) => [`n${i}`, { a: i, b: 'x' }] as const));
      db.put('after', { a: 1 });
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(calls).toBe(1);
    } finally {
      await db.close();
    }
  });
});
