// What a database keeps once per database, made lean in session 10 (BENCHMARKS.md § Issue 12,
// Session 10 (clidb)): its Y.Doc starts loaded and synced, its awareness is checked by a shared
// timer, `topic` is a copy per read, it holds the loaded relay transport itself, and its rarely set
// state (waiters, delivery hooks) lives in one record made on first use and dropped once empty.
// Two replicas over a real relay on 127.0.0.1: each part works after the replicas synced and idled.
import { describe, expect, it } from 'vitest';
import { deriveTopic, generateDatabaseId } from '@rhizome/core';
import { RelayTransport } from '@rhizome/transport-relay';
import { until } from './sync-helpers.js';
import { idleFixture } from './idle-helpers.js';

const { poll, relay, replica } = idleFixture();

describe('the per-database parts of an idle replica', () => {
  it('topic, doc, awareness, transport, waiters and delivery work after the replicas synced and idled', async () => {
    const server = await relay();
    const id = generateDatabaseId();
    const a = await replica(id, server.url);
    const b = await replica(id, server.url);
    await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 20_000 }), b.whenSynced({ minPeers: 1, timeoutMs: 20_000 })]);

    // topic: the derived bytes, a fresh copy each read (mutating one changes nothing).
    const topic = a.topic;
    expect(topic).toEqual(deriveTopic(id));
    topic.fill(0);
    expect(a.topic).toEqual(deriveTopic(id));

    // The document is loaded and synced in Yjs's sense, with no load/sync listeners.
    expect(a.doc.isLoaded && a.doc.isSynced).toBe(true);
    expect(await a.doc.whenLoaded).toBe(a.doc);
    await a.doc.whenSynced;

    // The database holds the relay implementation itself (made from its configuration).
    expect(a.transport).toBeInstanceOf(RelayTransport);

    // Awareness crosses both ways after idling (the check timer is shared; presence.test.ts).
    a.awareness.setLocalStateField('user', 'A');
    b.awareness.setLocalStateField('user', 'B');
    await poll(() => b.awareness.getStates().get(a.awareness.clientID)?.['user'] === 'A', 'b to see A');
    await poll(() => a.awareness.getStates().get(b.awareness.clientID)?.['user'] === 'B', 'a to see B');

    // whenSynced waiters come and go (the rare record is made and dropped), several times over.
    for (let round = 0; round < 3; round++) {
      await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 5_000 }), a.whenSynced({ minPeers: 1, timeoutMs: 5_000 })]);
    }
    // A waiter that cannot be satisfied times out and leaves the others working.
    await expect(a.whenSynced({ minPeers: 2, timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    await a.whenSynced({ minPeers: 1, timeoutMs: 5_000 });

    // Delivery acknowledgements (hooks in the same record) after idling.
    a.put('n1', { v: 1 });
    expect(await a.whenDelivered({ minPeers: 1, timeoutMs: 10_000 })).toBeGreaterThanOrEqual(1);
    await until(b, () => b.get('n1')?.['v'] === 1, 'b to get n1');
    b.put('n2', { v: 2 });
    await until(a, () => a.get('n2')?.['v'] === 2, 'a to get n2');

    // Close is clean and idempotent; the other side sees the peer go; a closed database refuses waiters.
    const gone = new Promise<void>((resolve) => {
      const sub = b.events.subscribe();
      void (async () => {
        for await (const e of sub) if (e.type === 'peer-disconnected') return resolve();
      })();
    });
    await a.close();
    await a.close();
    await gone;
    await expect(a.whenSynced({ timeoutMs: 100 })).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    expect(b.get('n1')).toEqual({ v: 1 });
  });
});
