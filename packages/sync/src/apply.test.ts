import * as Y from 'yjs';
import { describe, expect, it } from 'vitest';
import { REENCODE_SKIP_BYTES, applyRemoteUpdates } from './apply.js';
import { setUpdateHook, useFastUpdates } from './doc-updates.js';
import { DatabaseDoc } from './database-doc.js';

/** An update of a doc with `n` map entries, each a ~40-byte string. */
function bigUpdate(n: number): { doc: Y.Doc; update: Uint8Array } {
  const doc = new Y.Doc();
  doc.transact(() => {
    const m = doc.getMap('m');
    for (let i = 0; i < n; i++) m.set(`k${i}`, `value ${i} ${'x'.repeat(30)}`);
  });
  return { doc, update: Y.encodeStateAsUpdate(doc) };
}

type Call = { update: Uint8Array; origin: unknown; doc: Y.Doc; tr: Y.Transaction };

function listen(doc: Y.Doc): Call[] {
  const calls: Call[] = [];
  doc.on('update', (update: Uint8Array, origin: unknown, d: Y.Doc, tr: Y.Transaction) => calls.push({ update, origin, doc: d, tr }));
  return calls;
}

describe('applyRemoteUpdates', () => {
  it('hands a large received update to the update listeners as is, once, with origin, doc and transaction', () => {
    const { update } = bigUpdate(5000);
    expect(update.length).toBeGreaterThanOrEqual(REENCODE_SKIP_BYTES);
    const doc = new Y.Doc();
    const calls = listen(doc);
    const second = listen(doc);
    const origin = { peer: 'p' };
    let observed = 0;
    doc.getMap('m').observe(() => observed++);
    applyRemoteUpdates(doc, [update], origin);
    expect(doc.getMap('m').size).toBe(5000);
    expect(observed).toBe(1);
    expect(calls).toHaveLength(1);
    expect(second).toHaveLength(1);
    expect(calls[0]!.update === update).toBe(true); // the received bytes, not a re-encoding
    expect(calls[0]!.origin).toBe(origin);
    expect(calls[0]!.doc).toBe(doc);
    expect(calls[0]!.tr.origin).toBe(origin);
    expect(calls[0]!.tr.local).toBe(false);
    // The listeners are registered as before: a local change reaches them through Yjs.
    doc.getMap('m').set('local', 1);
    expect(calls).toHaveLength(2);
    // What the listeners got rebuilds the same document.
    const copy = new Y.Doc();
    for (const c of calls) Y.applyUpdate(copy, c.update);
    expect(copy.getMap('m').toJSON()).toEqual(doc.getMap('m').toJSON());
  });

  it('a transaction an observer opens during a large one reaches the listeners too, right after it (plain doc and useFastUpdates)', () => {
    const { update } = bigUpdate(5000);
    for (const fast of [false, true]) {
      const doc = new Y.Doc();
      if (fast) useFastUpdates(doc);
      const calls = listen(doc);
      // An app that writes on a remote change: its transaction is cleaned up in the same chain.
      doc.getMap('m').observe((event) => {
        if (!event.transaction.local) doc.getMap('echo').set('seen', doc.getMap('m').size);
      });
      applyRemoteUpdates(doc, [update], 'peer');
      expect(calls.map((c) => c.tr.local), `fast: ${fast}`).toEqual([false, true]);
      expect(calls[0]!.update === update).toBe(true);
      const copy = new Y.Doc();
      for (const c of calls) Y.applyUpdate(copy, c.update);
      expect(copy.getMap('echo').toJSON()).toEqual({ seen: 5000 });
      // Nothing stays muted: later changes reach the listeners once each.
      doc.getMap('m').set('local', 1);
      applyRemoteUpdates(doc, [bigUpdate(4000).update], 'peer-2');
      expect(calls.map((c) => c.tr.local)).toEqual([false, true, true, false, true]);
    }
  });

  it('emits nothing for a large update that changes nothing, and stays ordinary for small or nested ones', () => {
    const { update } = bigUpdate(5000);
    const doc = new Y.Doc();
    Y.applyUpdate(doc, update);
    const calls = listen(doc);
    applyRemoteUpdates(doc, [update], 'again');
    expect(calls).toHaveLength(0);

    // Small: Yjs encodes the transaction (not the same bytes object).
    const small = new Y.Doc();
    small.getMap('m').set('a', 1);
    const smallUpdate = Y.encodeStateAsUpdate(small);
    applyRemoteUpdates(doc, [smallUpdate], 'peer');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.update === smallUpdate).toBe(false);

    // Nested in a transaction: Yjs emits once for the outer transaction.
    const other = bigUpdate(4000).update;
    const fresh = new Y.Doc();
    const freshCalls = listen(fresh);
    fresh.transact(() => {
      fresh.getMap('z').set('outer', true);
      applyRemoteUpdates(fresh, [other], 'peer');
    });
    expect(freshCalls).toHaveLength(1);
    expect(freshCalls[0]!.update === other).toBe(false);
    expect(fresh.getMap('m').size).toBe(4000);
  });

  it('applies several updates in one transaction with one update event, as Yjs does (a coalesced frame of live writes)', () => {
    const parts = [bigUpdate(1500).update, bigUpdate(1500).update];
    const doc = new Y.Doc();
    const calls = listen(doc);
    let transactions = 0;
    doc.on('afterTransaction', () => transactions++);
    applyRemoteUpdates(doc, parts, 'peer');
    expect(transactions).toBe(1);
    // One event for the one transaction (not one per received update).
    expect(calls).toHaveLength(1);
    expect(calls[0]!.update === parts[0] || calls[0]!.update === parts[1]).toBe(false);
    expect(calls[0]!.origin).toBe('peer');
    expect(doc.getMap('m').size).toBe(1500);
    const copy = new Y.Doc();
    Y.applyUpdate(copy, calls[0]!.update);
    expect(copy.getMap('m').toJSON()).toEqual(doc.getMap('m').toJSON());
  });

  it('many small updates received in one frame give the listeners one event, not one per update', () => {
    const source = new Y.Doc();
    const parts: Uint8Array[] = [];
    source.on('update', (u: Uint8Array) => parts.push(u));
    for (let i = 0; i < 2000; i++) source.getMap('m').set(`k${i}`, `value number ${i} with some padding to pass 64 KiB`);
    let total = 0;
    for (const p of parts) total += p.length;
    expect(total).toBeGreaterThanOrEqual(REENCODE_SKIP_BYTES);
    const doc = new Y.Doc();
    const calls = listen(doc);
    applyRemoteUpdates(doc, parts, 'peer');
    expect(calls).toHaveLength(1);
    expect(doc.getMap('m').size).toBe(2000);
  });
});

describe('applyRemoteUpdates of empty updates', () => {
  it('changes nothing and opens no transaction; with structs pending, an empty update keeps them pending and the missing one lets them in', () => {
    const doc = new Y.Doc();
    const calls = listen(doc);
    let transactions = 0;
    doc.on('afterTransaction', () => transactions++);
    applyRemoteUpdates(doc, [new Uint8Array([0, 0])], 'peer');
    applyRemoteUpdates(doc, [new Uint8Array([0, 0]), new Uint8Array([0, 0])], 'peer');
    expect(transactions).toBe(0);
    expect(calls).toEqual([]);
    expect(doc.getMap('m').size).toBe(0);

    // Pending structs (their dependency missing): empty updates go the ordinary way and change nothing.
    const source = new Y.Doc();
    source.getMap('m').set('a', 1);
    const first = Y.encodeStateAsUpdate(source);
    const sv = Y.encodeStateVector(source);
    source.getMap('m').set('b', 2);
    const second = Y.encodeStateAsUpdate(source, sv);
    applyRemoteUpdates(doc, [second], 'peer');
    expect(doc.store.pendingStructs).not.toBeNull();
    applyRemoteUpdates(doc, [new Uint8Array([0, 0])], 'peer');
    expect(doc.store.pendingStructs).not.toBeNull();
    expect(doc.getMap('m').size).toBe(0);
    applyRemoteUpdates(doc, [first], 'peer');
    expect(doc.store.pendingStructs).toBeNull();
    expect(doc.getMap('m').toJSON()).toEqual({ a: 1, b: 2 });
  });

  it('a non-empty update in the batch takes the ordinary path', () => {
    const source = new Y.Doc();
    source.getMap('m').set('a', 1);
    const doc = new Y.Doc();
    const calls = listen(doc);
    applyRemoteUpdates(doc, [new Uint8Array([0, 0]), Y.encodeStateAsUpdate(source)], 'peer');
    expect(doc.getMap('m').get('a')).toBe(1);
    expect(calls.length).toBe(1);
  });
  it("a database document's update hook gets every update first (large received, small received, local), then the on('update') listeners", () => {
    const { update } = bigUpdate(5000);
    const doc = new DatabaseDoc();
    useFastUpdates(doc);
    const order: string[] = [];
    const hooked: Uint8Array[] = [];
    setUpdateHook(doc, { onDocUpdate: (u, origin, d, tr) => (hooked.push(u), order.push(`hook ${String(origin)} ${d === doc} ${tr.local}`)) });
    doc.on('update', (_u: Uint8Array, origin: unknown) => order.push(`listener ${String(origin)}`));
    applyRemoteUpdates(doc, [update], 'big');
    expect(hooked[0] === update).toBe(true); // the received bytes, once
    const other = new Y.Doc();
    other.getMap('m').set('small', 1);
    applyRemoteUpdates(doc, [Y.encodeStateAsUpdate(other)], 'small');
    doc.getMap('m').set('local', 1);
    expect(order).toEqual(['hook big true false', 'listener big', 'hook small true false', 'listener small', 'hook null true true', 'listener null']);
    const copy = new Y.Doc();
    for (const u of hooked) Y.applyUpdate(copy, u);
    expect(copy.getMap('m').toJSON()).toEqual(doc.getMap('m').toJSON());
    // Without the hook and listeners Yjs encodes nothing for it; with the hook removed only the listener hears.
    setUpdateHook(doc, null);
    doc.getMap('m').set('after', 1);
    expect(order.at(-1)).toBe('listener null');
    expect(hooked).toHaveLength(3);
  });
});
