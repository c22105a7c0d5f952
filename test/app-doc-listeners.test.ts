// An app's own listeners on a database's doc and awareness (review3, session 12): the database's
// 'update' listener became a field of the doc's registry (45d27aa), the awareness's registry is made
// at its first on(), the node maps at the first node-API use (9d72d0f). What an app registers
// with Yjs's and lib0's own API must still hear every update, stop when removed, and leave the
// database's own sync untouched. Two replicas over a real relay on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { generateDatabaseId } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { createRelayServer } from '@rhizome/relay';
import { until } from './sync-helpers.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

async function syncedPair(): Promise<[Database, Database]> {
  const server = await createRelayServer({ port: 0, host: '127.0.0.1' });
  cleanup.push(() => server.close());
  const id = generateDatabaseId();
  const open = async (): Promise<Database> => {
    const db = await openDatabase({ id, transport: { mode: 'relay', relayUrl: server.url } });
    cleanup.push(() => db.close({ flushTimeoutMs: 0 }));
    return db;
  };
  const a = await open();
  const b = await open();
  await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 20_000 }), b.whenSynced({ minPeers: 1, timeoutMs: 20_000 })]);
  return [a, b];
}

/** Resolves once `check()` holds (polled every 5 ms), or rejects after `ms`. */
async function eventually(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("an app's listeners on a database's doc and awareness", () => {
  it("doc.on('update') hears local and remote updates, a listener added during an emission hears the next, doc.off stops it, and the database keeps syncing", async () => {
    const [a, b] = await syncedPair();
    const heard: Array<{ origin: 'local' | 'remote'; bytes: number }> = [];
    const late: number[] = [];
    const lateListener = (u: Uint8Array): void => void late.push(u.length);
    let added = false;
    const listener = (update: Uint8Array, _origin: unknown, _doc: Y.Doc, tr: Y.Transaction): void => {
      heard.push({ origin: tr.local ? 'local' : 'remote', bytes: update.length });
      if (!added) {
        added = true;
        b.doc.on('update', lateListener);
      }
    };
    b.doc.on('update', listener);
    // A local put: the app's listener gets an update that rebuilds the node elsewhere.
    b.put('local-1', { v: 1 });
    await b.flush();
    expect(heard.filter((h) => h.origin === 'local').length).toBeGreaterThan(0);
    expect(late).toEqual([]); // added during that emission: not called by it
    // A remote put: both listeners hear it.
    a.put('remote-1', { v: 2 });
    await eventually(() => heard.some((h) => h.origin === 'remote'), "b's app listener to hear a's put");
    await eventually(() => late.length > 0, 'the listener added during an emission to hear the next update');
    // The app removes both: no more calls, and the database still syncs both ways.
    b.doc.off('update', listener);
    b.doc.off('update', lateListener);
    const count = heard.length;
    const lateCount = late.length;
    a.put('remote-2', { v: 3 });
    await until(b, () => b.get('remote-2')?.['v'] === 3, "b to get a's second put");
    b.put('local-2', { v: 4 });
    await until(a, () => a.get('local-2')?.['v'] === 4, "a to get b's put after the app's listeners left");
    expect(heard.length).toBe(count);
    expect(late.length).toBe(lateCount);
    // The app's updates rebuild b's state in a plain Y.Doc (what a provider of its own would do).
    const mirror = new Y.Doc();
    Y.applyUpdate(mirror, Y.encodeStateAsUpdate(b.doc));
    expect(mirror.getMap('nodes').size).toBe(4);
  });

  it("a map the app observes before the node API is used (its root type made by a peer's update first) hears every later remote put; events start with the first subscription", async () => {
    const [a, b] = await syncedPair();
    a.put('early', { v: 0 });
    await until(b, () => b.doc.share.has('nodes'), "b to apply a's first put");
    // b has not used the node API: the app takes the map itself and observes it deeply.
    const keys: string[] = [];
    b.doc.getMap('nodes').observeDeep((events) => {
      for (const e of events) if (e.target === b.doc.getMap('nodes')) for (const k of (e as Y.YMapEvent<unknown>).keysChanged) keys.push(k);
    });
    a.put('later', { v: 1 });
    await eventually(() => keys.includes('later'), "the app's observer to hear a's later put");
    // Now the node API (its first use makes the model over the same map) and events.
    expect(b.get('early')).toEqual({ v: 0 });
    const upserts: string[] = [];
    const sub = b.events.subscribe();
    void (async () => {
      for await (const e of sub) if (e.type === 'node-upsert') upserts.push(e.id);
    })();
    a.put('last', { v: 2 });
    await eventually(() => keys.includes('last') && upserts.includes('last'), "both the app's observer and b's events to hear a's last put");
  });

  it("awareness.on('change') hears a peer's state, and off() stops it", async () => {
    const [a, b] = await syncedPair();
    const changes: number[][] = [];
    const onChange = ({ added, updated }: { added: number[]; updated: number[] }): void => void changes.push([...added, ...updated]);
    b.awareness.on('change', onChange);
    a.awareness.setLocalStateField('user', 'ann');
    await eventually(() => changes.some((c) => c.includes(a.awareness.clientID)), "b's app to hear a's awareness state");
    expect((b.awareness.getStates().get(a.awareness.clientID) as { user?: string } | undefined)?.user).toBe('ann');
    b.awareness.off('change', onChange);
    const n = changes.length;
    a.awareness.setLocalStateField('user', 'bob');
    await eventually(() => (b.awareness.getStates().get(a.awareness.clientID) as { user?: string } | undefined)?.user === 'bob', "b's awareness to get a's new state");
    expect(changes.length).toBe(n);
  });
});
