// A session keeps the awareness client ids its peer told about (to remove their states when the
// peer leaves) as small integers since Session 12 (peerrec): a uint32 id of 2^31 and above as the
// int32 of the same bits (a boxed number otherwise, 16 B per session), any other id as it is. A
// hand-written peer on a memory hub announces clients with ids below 2^31, above it, and beyond
// uint32 (y-protocols draws uint32s, a varuint can carry more); when it leaves, the database
// removes exactly their states, and a client it later says went away is not removed twice.
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { MemoryHub, MemoryTransport, deriveTopic, type Connection } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import { FrameSealer, keyMaterial } from '../packages/sync/src/seal.js';
import { clientIdOf, smallClientId } from '../packages/sync/src/session.js';
import { encodeAwareness, toFrames } from '../packages/sync/src/wire.js';
import { idleFixture } from './idle-helpers.js';
import { connectionTo } from './sync-helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

// The idle tests' bounded poll; its relay and replicas are not used here.
const { poll } = idleFixture();

/** An awareness update of one client `id` with `state` (null: it went away). */
function awarenessOf(id: number, state: Record<string, string> | null): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = id;
  const awareness = new awarenessProtocol.Awareness(doc);
  awareness.setLocalState(state === null ? { gone: 'soon' } : state);
  if (state === null) awareness.setLocalState(null);
  const update = awarenessProtocol.encodeAwarenessUpdate(awareness, [id]);
  awareness.destroy();
  return encodeAwareness(update);
}

describe('a session keeps its peer awareness client ids as small integers', () => {
  it('maps uint32 ids to int32 and back, and leaves any other id as it is', () => {
    for (const id of [0, 1, 2 ** 31 - 1, 2 ** 31, 0xfffffff0, 2 ** 32 - 1, 2 ** 32, 2 ** 40, 2 ** 53 - 1]) {
      const kept = smallClientId(id);
      expect(clientIdOf(kept)).toBe(id);
      if (id < 2 ** 32) expect(kept | 0).toBe(kept); // an int32: a small integer in a field
    }
  });

  it("removes exactly the leaving peer's clients, ids below and above 2^31 and beyond uint32", async () => {
    const id = 'idle-peer-awareness';
    const hub = new MemoryHub();
    const db = await openDatabase({ id, transport: new MemoryTransport({ hub, peerId: 'db' }) });
    cleanups.push(() => db.close());
    const topic = deriveTopic(id);
    const sealer = new FrameSealer(keyMaterial(id), topic);
    const transport = new MemoryTransport({ hub, peerId: 'hand' });
    const abort = new AbortController();
    cleanups.push(async () => {
      abort.abort();
      await transport.disconnect();
    });
    const conn: Connection = await connectionTo(transport, topic, 'db', abort.signal);
    const send = async (message: Uint8Array): Promise<void> => {
      for (const plain of toFrames(message, 1 << 20)) await conn.send(sealer.seal(plain));
    };
    const ids = [7, 0xfffffff0, 2 ** 31, 2 ** 40];
    for (const client of ids) await send(awarenessOf(client, { name: `c${client}` }));
    const states = (): Map<number, unknown> => db.awareness.getStates();
    await poll(() => ids.every((c) => states().has(c)), 'the four clients known', 20_000);
    for (const client of ids) expect(states().get(client)).toEqual({ name: `c${client}` });
    // One of them goes away while the peer stays: removed now, and not again when the peer leaves.
    await send(awarenessOf(2 ** 31, null));
    await poll(() => !states().has(2 ** 31), 'client 2^31 removed', 20_000);
    // A local client of the database itself is never the peer's.
    db.awareness.setLocalState({ me: true });
    const own = db.awareness.clientID;
    await conn.close();
    await poll(() => ids.every((c) => !states().has(c)), "the peer's clients removed when it left", 20_000);
    expect(states().get(own)).toEqual({ me: true });
  });
});
