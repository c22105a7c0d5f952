// What an idle synced replica no longer holds, and that what replaced it still delivers
// (BENCHMARKS.md § Issue 12, Session 8 (clisess)): the doc's 'beforeTransaction' listener exists
// only while puts are queued, no fast-update restore hooks at all (a flag on the registry since
// session 9),
// a database that owns its transport passes it no abort signal (it leaves by disconnecting).
// Two or three replicas over a real relay on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import type * as Y from 'yjs';
import { join } from 'node:path';
import { createTransport, deriveTopic, generateDatabaseId, mailboxOf } from '@rhizome/core';
import type { SyncEvent } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { createRelayServer } from '@rhizome/relay';
import type { RelayServer } from '@rhizome/relay';
import { within } from '@rhizome/core/testing';
import { RelayTransport } from '@rhizome/transport-relay';
import { nextEvent, tempDir, until } from './sync-helpers.js';

const cleanup: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

async function relay(): Promise<RelayServer> {
  const server = await createRelayServer({ port: 0, host: '127.0.0.1' });
  cleanup.push(() => server.close());
  return server;
}

async function replica(id: string, transport: NonNullable<Parameters<typeof openDatabase>[0]['transport']>): Promise<Database> {
  const db = await openDatabase({ id, transport });
  cleanup.push(() => db.close({ flushTimeoutMs: 0 }));
  return db;
}

/** Two replicas of a new database through a new relay, synced with each other. */
async function syncedPair(): Promise<[Database, Database]> {
  const server = await relay();
  const id = generateDatabaseId();
  const a = await replica(id, { mode: 'relay', relayUrl: server.url });
  const b = await replica(id, { mode: 'relay', relayUrl: server.url });
  await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 20_000 }), b.whenSynced({ minPeers: 1, timeoutMs: 20_000 })]);
  return [a, b];
}

/** The event names lib0's registry of `doc` holds listeners for. */
function listenedEvents(doc: Y.Doc): string[] {
  return [...(doc as unknown as { _observers: Map<string, Set<unknown>> })._observers.keys()].sort();
}

describe('an idle synced replica holds only the listeners it needs', () => {
  it('listens to beforeTransaction while puts are queued and to no restore hooks; updates keep flowing', async () => {
    const [a, b] = await syncedPair();
    const idle = listenedEvents(a.doc);
    expect(idle).not.toContain('beforeTransaction');
    expect(idle).not.toContain('beforeObserverCalls');
    expect(idle).not.toContain('afterAllTransactions');
    // The database's own 'update' listener and the fast-update hook are fields of the document's
    // registry and of the document, not listener sets; the awareness holds no registry at all.
    expect(idle).not.toContain('update');
    expect(idle).not.toContain('afterTransactionCleanup');
    expect((a.doc as unknown as { cleanupHook: unknown }).cleanupHook).toBeTypeOf('function');
    expect((a.doc as unknown as { _observers: { hook: unknown } })._observers.hook).not.toBeNull();
    expect((a.awareness as unknown as { _lazyObservers: unknown })._lazyObservers).toBeNull();
    // Awareness changes still reach the peer (the hook sends them), and an app's listener works.
    let onChange!: (changes: { added: number[]; updated: number[] }) => void;
    const heard = new Promise<void>((resolve) => {
      onChange = ({ added, updated }) => {
        const user = (b.awareness.getStates().get(a.awareness.clientID) as { user?: string } | undefined)?.user;
        if ([...added, ...updated].includes(a.awareness.clientID) && user === 'a') resolve();
      };
    });
    b.awareness.on('change', onChange);
    a.awareness.setLocalStateField('user', 'a');
    await within(20_000, "b to hear a's awareness", heard);
    b.awareness.off('change', onChange);
    expect((b.awareness as unknown as { _lazyObservers: unknown })._lazyObservers).toBeNull();

    // A queued put stays ahead of a transaction the app opens on the doc directly in the same
    // task (the listener made for the batch applies it first), and both reach the peer.
    const doc = a.doc;
    a.put('n1', { v: 1 });
    const order: string[] = [];
    doc.transact(() => {
      order.push(a.doc.getMap('nodes').has('n1') ? 'put applied first' : 'put still queued');
      doc.getMap('app').set('k', 'v');
    });
    expect(order).toEqual(['put applied first']);
    expect(listenedEvents(doc)).not.toContain('beforeTransaction');
    await until(b, () => b.get('n1')?.['v'] === 1 && b.doc.getMap('app').get('k') === 'v', 'b to get n1 and the app key');

    // A large local transaction (encoded by Rhizome, Yjs's encoding skipped): delivered, no
    // listener left behind, and small updates flow as before.
    a.putMany(Array.from({ length: 100 }, (_, i) => [`bulk-${i}`, { i, s: 'x'.repeat(8) }] as const));
    expect(listenedEvents(a.doc)).not.toContain('afterAllTransactions');
    expect(listenedEvents(a.doc)).not.toContain('beforeObserverCalls');
    expect(listenedEvents(a.doc)).not.toContain('update');
    await until(b, () => b.get('bulk-99')?.['i'] === 99, 'b to get the bulk write');
    a.put('after', { ok: true });
    await until(b, () => b.get('after')?.['ok'] === true, 'b to get the put after the bulk write');
    b.put('back', { ok: true });
    await until(a, () => a.get('back')?.['ok'] === true, 'a to get b\'s put');
  });

  it('makes the node maps at the first use of the node API: a replica that only received reads and hears everything after', async () => {
    const [a, b] = await syncedPair();
    // Neither has used the node API: no node maps (nor a write batch) yet.
    expect(a.doc.share.has('nodes') || a.doc.share.has('fields')).toBe(false);
    expect(b.doc.share.has('nodes') || b.doc.share.has('fields')).toBe(false);
    a.put('n1', { v: 1 });
    a.put('n2', { v: 2 });
    expect(await a.whenDelivered({ minPeers: 1, timeoutMs: 20_000 })).toBe(1);
    // b applied a's updates (Yjs made plain root types for them); its first subscription makes
    // the maps, and the next remote put arrives as an event with its data.
    const third = nextEvent(b, (e: SyncEvent) => e.type === 'node-upsert' && e.id === 'n3', 'the third put as an event');
    a.put('n3', { v: 3 });
    expect(await third).toMatchObject({ type: 'node-upsert', id: 'n3', origin: 'remote', data: { v: 3 } });
    expect(b.list()).toEqual([
      { id: 'n1', data: { v: 1 } },
      { id: 'n2', data: { v: 2 } },
      { id: 'n3', data: { v: 3 } },
    ]);
    // A third replica that only reads (no subscription) after everything arrived.
    const c = await replica(a.id, { mode: 'relay', relayUrl: (a.transport as RelayTransport).url });
    await c.whenSynced({ minPeers: 2, timeoutMs: 20_000 });
    expect(c.doc.share.has('nodes')).toBe(true); // made by the received updates
    expect(c.size).toBe(3);
    expect(c.get('n2')).toEqual({ v: 2 });
    c.delete('n2');
    await until(a, () => a.get('n2') === undefined, 'a to see c delete n2');
  });

  it('listens for node events from the first subscription on, stops when none is left, and starts again', async () => {
    const [a, b] = await syncedPair();
    expect(listenedEvents(a.doc)).not.toContain('afterTransaction');
    // A remote put and a local one while subscribed: both arrive as node events.
    const first = a.events.subscribe();
    expect(listenedEvents(a.doc)).toContain('afterTransaction');
    const remote = nextEvent(a, (e: SyncEvent) => e.type === 'node-upsert' && e.id === 'r1', 'the remote put as an event');
    b.put('r1', { v: 1 });
    expect(await remote).toMatchObject({ type: 'node-upsert', id: 'r1', origin: 'remote', data: { v: 1 } });
    const local = nextEvent(a, (e: SyncEvent) => e.type === 'node-delete' && e.id === 'r1', 'the local delete as an event');
    a.delete('r1');
    expect(await local).toMatchObject({ type: 'node-delete', id: 'r1', origin: 'local' });
    // No subscriber left: the next transaction lets the listener go.
    first.unsubscribe();
    a.put('quiet', { v: 1 });
    expect(a.get('quiet')).toEqual({ v: 1 });
    expect(listenedEvents(a.doc)).not.toContain('afterTransaction');
    // A new subscription starts it again.
    const again = nextEvent(a, (e: SyncEvent) => e.type === 'node-upsert' && e.id === 'r2', 'a remote put after resubscribing');
    b.put('r2', { v: 2 });
    expect(await again).toMatchObject({ type: 'node-upsert', id: 'r2', data: { v: 2 } });
  });

  it('a database that owns its transport leaves on close without an abort signal; one on an app transport leaves by its signal', async () => {
    const server = await relay();
    const id = generateDatabaseId();
    const watcher = await replica(id, { mode: 'relay', relayUrl: server.url });
    const owned = await replica(id, { mode: 'relay', relayUrl: server.url });
    const shared = createTransport({ mode: 'relay', relayUrl: server.url });
    cleanup.push(() => shared.disconnect());
    const onShared = await replica(id, shared);
    await Promise.all([watcher, owned, onShared].map((db) => db.whenSynced({ minPeers: 2, timeoutMs: 20_000 })));

    // The owned transport: close() resolves, the others see it leave, its socket is gone.
    let left: Promise<SyncEvent> = nextEvent(watcher, (e: SyncEvent) => e.type === 'peer-disconnected', 'the owned replica to leave');
    await owned.close();
    await left;
    expect(watcher.peers()).toHaveLength(1);
    await until(onShared, () => onShared.peers().length === 1, 'the shared-transport replica to see one peer');
    await until(watcher, () => server.stats().connections === 2, 'the relay to drop the owned replica\'s socket');

    // The app's transport: the database leaves the topic on close, the transport stays usable.
    const sharedPeer = watcher.peers()[0]!.peerId;
    left = nextEvent(watcher, (e: SyncEvent) => e.type === 'peer-disconnected' && e.peerId === sharedPeer, 'the shared-transport replica to leave');
    await onShared.close();
    await left;
    expect(watcher.peers()).toEqual([]);
    const again = await replica(id, shared);
    await again.whenSynced({ minPeers: 1, timeoutMs: 20_000 });
    again.put('x', { y: 1 });
    await until(watcher, () => watcher.get('x')?.['y'] === 1, 'the watcher to get a put over the reused transport');
  });

  it('an offer listener may be an object (handleOffer): one listener, two, then one again — each listening one hears the offer, a removed one does not', async () => {
    // The relay's mailbox access holds its only listener itself and an array from a second on.
    const dir = tempDir('rhizome-offer-obj-');
    cleanup.push(async () => dir.cleanup());
    const server = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: join(dir.dir, 'mailbox.db') });
    cleanup.push(() => server.close());
    const transport = new RelayTransport({ url: server.url });
    cleanup.push(() => transport.disconnect());
    const access = transport.mailbox!;
    const heard: string[] = [];
    let first!: () => void;
    const offered = new Promise<void>((resolve) => (first = resolve));
    const object = {
      handleOffer(offer: { maxMailboxBytes: number }): void {
        heard.push(`object ${offer.maxMailboxBytes > 0}`);
        first();
      },
    };
    const fn = (): void => void heard.push('function');
    access.onOffer(object);
    access.onOffer(object); // held once
    access.onOffer(fn);
    access.offOffer(fn); // back to one listener
    await transport.connect(deriveTopic(generateDatabaseId()));
    await within(10_000, 'the offer', offered);
    expect(heard).toEqual(['object true']);
    // Added while an offer is up: told of it (a microtask later), as a function listener is.
    let late!: () => void;
    const lateHeard = new Promise<void>((resolve) => (late = resolve));
    access.onOffer({ handleOffer: () => late() });
    await within(10_000, 'the current offer for a late listener', lateHeard);
    access.offOffer(object);
    expect(access.offer).not.toBeNull();
  });

  it('offer listeners added before the relay transport loads get offers, and ones removed by offOffer do not', async () => {
    const dir = tempDir('rhizome-offer-');
    cleanup.push(async () => dir.cleanup());
    const server = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: join(dir.dir, 'mailbox.db') });
    cleanup.push(() => server.close());
    const transport = createTransport({ mode: 'relay', relayUrl: server.url });
    cleanup.push(() => transport.disconnect());
    const access = mailboxOf(transport)!;
    expect(access.offOffer).toBeTypeOf('function');
    const heard: string[] = [];
    const kept = (): void => void heard.push('kept');
    const removed = (): void => void heard.push('removed');
    const stopped = (): void => void heard.push('stopped');
    access.onOffer(kept);
    access.onOffer(removed);
    const stop = access.onOffer(stopped);
    access.offOffer!(removed);
    stop();
    // Loads the implementation and opens a session, which brings the relay's offer.
    await transport.connect(deriveTopic(generateDatabaseId()));
    const deadline = Date.now() + 10_000;
    while (!heard.includes('kept') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(heard).toEqual(['kept']);
    expect(access.offer).not.toBeNull();
  });
});
