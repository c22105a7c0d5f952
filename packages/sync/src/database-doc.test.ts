import * as Y from 'yjs';
import { describe, expect, it } from 'vitest';
import { DatabaseDoc } from './database-doc.js';
import { openDatabase } from './index.js';

/** Runs the same listener script on a plain Y.Doc and a DatabaseDoc; returns both call logs. */
function both(script: (doc: Y.Doc, log: string[]) => void): [string[], string[]] {
  const logs: [string[], string[]] = [[], []];
  const docs = [new Y.Doc(), new DatabaseDoc()];
  docs.forEach((doc, i) => {
    docs[i]!.clientID = 1;
    script(doc, logs[i]!);
  });
  return logs;
}

describe('DatabaseDoc (the database Y.Doc with a cheaper emit)', () => {
  it("emits as lib0 does: every event, listeners in order with Yjs's arguments, once each", () => {
    const [plain, ours] = both((doc, log) => {
      for (const name of ['beforeAllTransactions', 'beforeTransaction', 'beforeObserverCalls', 'afterTransaction', 'afterTransactionCleanup', 'afterAllTransactions', 'update'] as const) {
        doc.on(name, (...args: unknown[]) => log.push(`${name} 1 ${args.length} ${args.includes(doc)}`));
        doc.on(name, (...args: unknown[]) => log.push(`${name} 2 ${args.length}`));
      }
      doc.getMap('m').set('a', 1);
      doc.transact(() => doc.getMap('m').set('b', 2), 'origin');
    });
    expect(ours).toEqual(plain);
    expect(ours.length).toBeGreaterThan(20);
  });

  it('a listener added or removed during an emission changes the next one, not this one; once, and a throw stops the rest', () => {
    const [plain, ours] = both((doc, log) => {
      const late = (): void => {
        log.push('late');
      };
      const second = (): void => {
        log.push('second');
      };
      // One listener that adds another: not called in this emission (the single-listener path).
      doc.on('afterTransaction', function first() {
        log.push('first');
        doc.on('afterTransaction', late);
        doc.off('afterTransaction', first);
      });
      doc.getMap('m').set('a', 1);
      doc.getMap('m').set('b', 1);
      // Two listeners, the first removes the second: still called this time.
      doc.on('beforeTransaction', () => {
        log.push('remover');
        doc.off('beforeTransaction', second);
      });
      doc.on('beforeTransaction', second);
      doc.once('update', () => log.push('once'));
      doc.getMap('m').set('c', 1);
      doc.getMap('m').set('d', 1);
      doc.on('afterAllTransactions', () => {
        log.push('thrower');
        throw new Error('listener failed');
      });
      doc.on('afterAllTransactions', () => log.push('after thrower'));
      expect(() => doc.getMap('m').set('e', 1)).toThrow('listener failed');
    });
    expect(ours).toEqual(plain);
    expect(ours).toContain('late');
    expect(ours.filter((l) => l === 'second')).toHaveLength(1);
    expect(ours.filter((l) => l === 'once')).toHaveLength(1);
    expect(ours).not.toContain('after thrower');
  });

  it("is the database's doc, a Y.Doc that apps bind to and that syncs as before", async () => {
    const db = await openDatabase({ id: 'database-doc' });
    try {
      expect(db.doc).toBeInstanceOf(Y.Doc);
      const updates: Uint8Array[] = [];
      db.doc.on('update', (u: Uint8Array) => updates.push(u));
      let observed = 0;
      db.doc.getMap('app').observe(() => observed++);
      db.doc.getMap('app').set('k', 'v');
      db.put('n', { a: 1 });
      expect(db.get('n')).toEqual({ a: 1 });
      expect(observed).toBe(1);
      const copy = new Y.Doc();
      for (const u of updates) Y.applyUpdate(copy, u);
      expect(copy.getMap('app').get('k')).toBe('v');
      expect(copy.getMap('fields').size).toBe(1);
    } finally {
      await db.close();
    }
  });
});

describe('DatabaseDoc starts loaded and synced', () => {
  it('holds no load/sync listeners; a sync event moves isSynced and whenSynced as on a plain Y.Doc', async () => {
    const doc = new DatabaseDoc();
    const registry = doc._observers as unknown as Map<string, Set<unknown>>;
    expect(registry.has('load')).toBe(false);
    expect(registry.has('sync')).toBe(false);
    expect(doc.isLoaded).toBe(true);
    expect(doc.isSynced).toBe(true);
    expect(await doc.whenLoaded).toBe(doc);
    await doc.whenSynced;

    const seen: boolean[] = [];
    doc.on('sync', (s: boolean) => seen.push(s));
    doc.emit('sync', [false, doc]);
    expect(doc.isSynced).toBe(false);
    let resolved = false;
    void doc.whenSynced.then(() => (resolved = true));
    await Promise.resolve();
    expect(resolved).toBe(false);
    doc.emit('sync', [true, doc]);
    expect(doc.isSynced).toBe(true);
    await doc.whenSynced;
    expect(resolved).toBe(true);
    expect(seen).toEqual([false, true]);
    // The pending promise's listener is gone once it resolved; the app's stays.
    expect(registry.get('sync')!.size).toBe(1);
  });
});

describe('DatabaseDoc subdocuments', () => {
  it('keeps no subdocs set until one is needed; subdocuments come and go as on a plain Y.Doc', () => {
    const doc = new DatabaseDoc();
    expect((doc as unknown as { _subdocs: unknown })._subdocs).toBeNull();
    expect(doc.getSubdocs().size).toBe(0);
    const sub = new Y.Doc();
    const added: string[] = [];
    doc.on('subdocs', ({ added: a }: { added: Set<Y.Doc> }) => a.forEach((d) => added.push(d.guid)));
    doc.getMap('m').set('sub', sub);
    expect([...doc.getSubdocs()]).toEqual([sub]);
    expect(added).toEqual([sub.guid]);
    doc.getMap('m').delete('sub');
    expect(doc.getSubdocs().size).toBe(0);
    doc.destroy();
  });
});
