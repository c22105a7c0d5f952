// Awareness over a relay topic (Session 13, rssconn): a peer sends its awareness changes to every
// member of the topic itself (the relay pairs each member with every other), so a receiver does
// not pass them on to the other members of that topic — as with updates (UpdateRouter.route). It
// still passes them on to peers it reaches another way (a replica bridging a relay and a memory
// hub), so presence crosses the bridge.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTransport, generateDatabaseId } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';
import { uniqueHub, until } from './sync-helpers.js';

const WAIT = 20_000;
let relay: RelayServer;
const open: Database[] = [];

beforeAll(async () => {
  relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await Promise.all(open.splice(0).map((db) => db.close().catch(() => undefined)));
  await relay.close();
});

async function replica(id: string, transport: NonNullable<Parameters<typeof openDatabase>[0]['transport']>): Promise<Database> {
  // Health off: no pings, so every frame counted below is an awareness or sync message.
  const db = await openDatabase({ id, transport, health: { enabled: false } });
  open.push(db);
  return db;
}

const relayConfig = (): { mode: 'relay'; relayUrl: string } => ({ mode: 'relay', relayUrl: `ws://127.0.0.1:${relay.port}` });

/** Frames `db` received from the peer whose replica id is `from`'s. */
function framesFrom(db: Database, from: Database): number {
  const peer = db.stats().peers.find((p) => p.replicaId === from.replicaId);
  if (peer === undefined) throw new Error('no session with that replica');
  return peer.framesReceived;
}

/** Resolves once `check()` holds, re-checked at every awareness update `db` applies; bounded in time. */
function whenAware(db: Database, check: () => boolean, what: string): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onUpdate = (): void => {
      if (!check()) return;
      clearTimeout(timer);
      db.awareness.off('update', onUpdate);
      resolve();
    };
    const timer = setTimeout(() => {
      db.awareness.off('update', onUpdate);
      reject(new Error(`timed out after ${WAIT} ms waiting for ${what}`));
    }, WAIT);
    db.awareness.on('update', onUpdate);
  });
}

/**
 * Counts the awareness updates `db` applies from its session with `from` that carry only `from`'s
 * own state: its changes, and the renewal y-protocols makes of a local state unchanged for 15 s
 * (a slow run has some). Every frame `from` sends `db` for its own state is one of them; a frame
 * that passes on another member's state is not (applied or ignored as already known).
 */
function ownUpdatesFrom(db: Database, from: Database): { readonly count: number; stop(): void } {
  let count = 0;
  const onUpdate = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown): void => {
    if ((origin as { replicaId?: unknown } | null)?.replicaId !== from.replicaId) return;
    const clients = [...added, ...updated, ...removed];
    if (clients.length > 0 && clients.every((client) => client === from.awareness.clientID)) count++;
  };
  db.awareness.on('update', onUpdate);
  return {
    get count() {
      return count;
    },
    stop: () => db.awareness.off('update', onUpdate),
  };
}

const hasState = (db: Database, of: Database, key: string, value: string): boolean =>
  (db.awareness.getStates().get(of.awareness.clientID) as Record<string, unknown> | undefined)?.[key] === value;

describe('awareness over a relay topic', () => {
  it('reaches every member from its sender, and no member passes it on to the others', async () => {
    const id = generateDatabaseId();
    const [a, b, c] = [await replica(id, relayConfig()), await replica(id, relayConfig()), await replica(id, relayConfig())];
    for (const db of [a, b, c]) await db.whenSynced({ timeoutMs: WAIT, minPeers: 2 });
    for (const db of [a, b, c]) db.awareness.setLocalStateField('name', 'start');
    for (const db of [a, b, c]) await whenAware(db, () => [a, b, c].every((o) => hasState(db, o, 'name', 'start')), 'every start state');
    // Every forward of the start states is in by now: B's own change below is queued behind them.
    b.awareness.setLocalStateField('name', 'b-settled');
    await whenAware(c, () => hasState(c, b, 'name', 'b-settled'), "c sees b's settle state");
    const fromB = framesFrom(c, b);
    const fromA = framesFrom(c, a);
    // (Counted from the same point: a frame is counted and applied in one step.)
    const ownB = ownUpdatesFrom(c, b);
    const ownA = ownUpdatesFrom(c, a);

    a.awareness.setLocalStateField('name', 'a-moved');
    await whenAware(b, () => hasState(b, a, 'name', 'a-moved'), "b sees a's change");
    await whenAware(c, () => hasState(c, a, 'name', 'a-moved'), "c sees a's change");
    // Settle point: B's next change leaves on its session with C behind anything B queued for C
    // when A's change reached it (one FIFO queue per session).
    b.awareness.setLocalStateField('name', 'b-after');
    await whenAware(c, () => hasState(c, b, 'name', 'b-after'), "c sees b's second change");
    // C got A's change from A, and from B only B's own states: a frame passing A's change on (or
    // B's on from A) would be one more than the sender's own updates. A renewal is one of those.
    ownA.stop();
    ownB.stop();
    expect(ownA.count).toBeGreaterThanOrEqual(1);
    expect(ownB.count).toBeGreaterThanOrEqual(1);
    expect(framesFrom(c, a) - fromA).toBe(ownA.count);
    expect(framesFrom(c, b) - fromB).toBe(ownB.count);
  });

  it('is passed on to a peer on another transport by a replica bridging the two', async () => {
    const id = generateDatabaseId();
    const hub = uniqueHub('awareness-bridge');
    const a = await replica(id, relayConfig());
    const bridge = await replica(id, [new MemoryTransport({ hub, peerId: 'bridge' }), relayConfig()]);
    const d = await replica(id, new MemoryTransport({ hub, peerId: 'd' }));
    await until(bridge, () => bridge.stats().peers.length === 2, 'the bridge with both peers', WAIT);
    await until(a, () => a.stats().peers.length === 1, 'a with the bridge', WAIT);
    await until(d, () => d.stats().peers.length === 1, 'd with the bridge', WAIT);
    a.awareness.setLocalStateField('name', 'over-the-relay');
    await whenAware(d, () => hasState(d, a, 'name', 'over-the-relay'), "d sees a's state through the bridge");
    d.awareness.setLocalStateField('name', 'over-memory');
    await whenAware(a, () => hasState(a, d, 'name', 'over-memory'), "a sees d's state through the bridge");
  });
});
