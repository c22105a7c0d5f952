// A session's opening in one sealed frame (MSG_BATCH: REPLICA, sync step 1, awareness), and the
// peers that predate it: a peer speaking the old protocol by hand (separate opening messages, the
// batch skipped as an unknown type) still gets every opening message and syncs both ways. A
// malformed batch from a key holder closes the session with ERR_PROTOCOL; a batch frame altered
// on the way is dropped as ERR_DECRYPT. Real databases on a memory hub; the raw peer seals with
// the database key like any replica.
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { MemoryTransport, generateDatabaseId, type Connection } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { FrameSealer, encodeReplica, keyMaterial, openDatabase, type Database } from '@rhizome/sync';
import {
  MSG_AWARENESS,
  MSG_BATCH,
  MSG_SYNC_STEP1,
  MSG_SYNC_STEP2,
  decodeBatch,
  decodeMessage,
  encodeBatch,
  encodeProbe,
  encodeStep1,
  encodeStep2,
  encodeUpdates,
  toFrames,
  wholeFrame,
  MSG_PING,
  MSG_UPDATES,
} from '../packages/sync/src/wire.js';
import { MSG_REPLICA, decodeReplica } from '../packages/sync/src/replicas.js';
import { nextEvent, uniqueHub } from './sync-helpers.js';

const WAIT = 10_000;
const open: Database[] = [];
const transports: MemoryTransport[] = [];
afterEach(async () => {
  // The raw peer first: it never answers the delivery request a closing database sends.
  await Promise.all(transports.splice(0).map((t) => t.disconnect()));
  await Promise.all(open.splice(0).map((d) => d.close()));
});

/** A database `d` on a fresh hub and a raw peer's Connection to it, with the database key. */
async function rawPeer(): Promise<{ d: Database; conn: Connection; sealer: FrameSealer; read: () => Promise<Uint8Array> }> {
  const hub = uniqueHub('opening');
  const id = generateDatabaseId();
  const d = await openDatabase({ id, transport: { mode: 'memory', hub, peerId: 'd' } });
  open.push(d);
  const peer = new MemoryTransport({ hub, peerId: 'raw' });
  transports.push(peer);
  const conn = (await within(WAIT, 'a connection', (await peer.connect(d.topic))[Symbol.asyncIterator]().next())).value as Connection;
  const sealer = new FrameSealer(keyMaterial(id), d.topic);
  /** The next whole message `d` sent (every one fits in a frame here). */
  const read = async (): Promise<Uint8Array> => {
    const frame = await within(WAIT, 'a frame from the database', conn.receive());
    if (frame === null) throw new Error('connection closed');
    const whole = wholeFrame(sealer.open(frame), 1 << 20);
    if (whole?.kind !== 'message') throw new Error('not a whole frame');
    return whole.message;
  };
  return { d, conn, sealer, read };
}

const send = (conn: Connection, sealer: FrameSealer, message: Uint8Array): Promise<void> => conn.send(sealer.seal(toFrames(message, 1 << 20)[0]!));

describe('the opening batch', () => {
  it('a database opens with ONE frame (REPLICA, step 1, awareness); a peer that opens the old way gets them again separately and syncs both ways', async () => {
    const { d, conn, sealer, read } = await rawPeer();
    d.put('from-d', { title: 'hello' });

    // The first frame: one batch of the three opening messages.
    const first = await read();
    expect(first[0]).toBe(MSG_BATCH);
    const inner = decodeBatch(first);
    expect(inner.map((m) => m[0])).toEqual([MSG_REPLICA, MSG_SYNC_STEP1, MSG_AWARENESS]);
    expect(decodeReplica(inner[0]!)).toBe(d.replicaId);
    const batchedStep1 = decodeMessage(inner[1]!);

    // The old protocol: REPLICA, step 1, each in its own frame (an old peer skips the batch).
    const ownId = new Uint8Array(16).fill(0x42);
    await send(conn, sealer, encodeReplica(new Uint8Array(16).fill(7)));
    await send(conn, sealer, encodeStep1(ownId, Y.encodeStateVector(new Y.Doc())));

    // d sends its opening again, message by message, and answers our step 1.
    const seen: number[] = [];
    let step1: Uint8Array | null = null;
    let answer: Uint8Array | null = null;
    while (step1 === null || answer === null) {
      const m = await read();
      expect(m[0]).not.toBe(MSG_BATCH);
      if (m[0] === MSG_UPDATES) continue; // the live update of the put above
      seen.push(m[0]!);
      const msg = m[0] === MSG_REPLICA ? null : decodeMessage(m);
      if (msg?.type === MSG_SYNC_STEP1) step1 = msg.requestId;
      if (msg?.type === MSG_SYNC_STEP2) {
        expect([...msg.requestId]).toEqual([...ownId]);
        answer = msg.update;
      }
    }
    expect(seen.slice(0, 2)).toEqual([MSG_REPLICA, MSG_SYNC_STEP1]);
    expect(seen).toContain(MSG_AWARENESS);
    // The same request as in the batch (the old peer never saw that one).
    expect(batchedStep1.type === MSG_SYNC_STEP1 && [...batchedStep1.requestId]).toEqual([...step1]);
    // The answer holds d's node (applied to a fresh database's doc: it reads it back).
    const reader = await openDatabase({ id: 'reader ' + generateDatabaseId() });
    open.push(reader);
    Y.applyUpdate(reader.doc, answer);
    expect(reader.get('from-d')).toEqual({ title: 'hello' });

    // Our answer to its step 1 carries a node: d applies it and counts the exchange as done.
    const source = new Y.Doc();
    const other = await openDatabase({ id: 'scratch ' + generateDatabaseId() });
    open.push(other);
    other.put('from-raw', { n: 1 });
    Y.applyUpdate(source, Y.encodeStateAsUpdate(other.doc));
    const arrived = nextEvent(d, (e) => e.type === 'node-upsert' && e.id === 'from-raw', 'the raw peer\'s node');
    await send(conn, sealer, encodeStep2(step1, Y.encodeStateAsUpdate(source)));
    await arrived;
    expect(d.get('from-raw')).toEqual({ n: 1 });
    await within(WAIT, 'synced with the old-style peer', d.whenSynced({ minPeers: 1 }));
    expect(d.peers().map((p) => p.peerId)).toEqual(['raw']);
  });

  it('a peer that opens with a batch gets no second opening', async () => {
    const { d, conn, sealer, read } = await rawPeer();
    const first = await read();
    const step1 = decodeMessage(decodeBatch(first)[1]!);
    const ownId = new Uint8Array(16).fill(0x24);
    await send(conn, sealer, encodeBatch([encodeReplica(new Uint8Array(16).fill(8)), encodeStep1(ownId, new Uint8Array([0]))]));
    // The answer to our step 1 comes next, not a repeated opening.
    const next = decodeMessage(await read());
    expect(next.type).toBe(MSG_SYNC_STEP2);
    expect(next.type === MSG_SYNC_STEP2 && [...next.requestId]).toEqual([...ownId]);
    await send(conn, sealer, encodeStep2(step1.type === MSG_SYNC_STEP1 ? step1.requestId : new Uint8Array(16), new Uint8Array([0, 0])));
    await within(WAIT, 'synced with the batching peer', d.whenSynced({ minPeers: 1 }));
    // A ping in a later batch is answered: batches are handled message by message at any time.
    await send(conn, sealer, encodeBatch([encodeProbe(MSG_PING, 77)]));
    for (;;) {
      const m = await read();
      if (m[0] === 0x06) {
        expect(decodeMessage(m)).toEqual({ type: 0x06, id: 77 });
        break;
      }
    }
  });

  it('a batching peer whose live update arrives before its opening (a relay broadcast overtaking it) gets no second opening', async () => {
    // Over a relay, a peer's live updates go by the topic's BROADCAST, which reaches a newcomer as
    // soon as it joined, while that peer's opening to it leaves only once it heard of the
    // newcomer: a live update often comes first. It says nothing about the peer's protocol; taken
    // as an old-style opening, it made d send its opening again (and the peer answer a second
    // step 1 with a second whole-document diff).
    const { d, conn, sealer, read } = await rawPeer();
    const first = await read();
    const step1 = decodeMessage(decodeBatch(first)[1]!);
    const scratch = new Y.Doc();
    scratch.getMap('nodes').set('live', new Y.Map());
    await send(conn, sealer, encodeUpdates([Y.encodeStateAsUpdate(scratch)]));
    const ownId = new Uint8Array(16).fill(0x25);
    await send(conn, sealer, encodeBatch([encodeReplica(new Uint8Array(16).fill(10)), encodeStep1(ownId, new Uint8Array([0]))]));
    await send(conn, sealer, encodeStep2(step1.type === MSG_SYNC_STEP1 ? step1.requestId : new Uint8Array(16), new Uint8Array([0, 0])));
    await within(WAIT, 'synced with the batching peer', d.whenSynced({ minPeers: 1 }));
    await send(conn, sealer, encodeProbe(MSG_PING, 78));
    // Everything d sends up to the pong: the answer to our step 1, no opening message again.
    const seen: number[] = [];
    for (;;) {
      const m = await read();
      if (m[0] === 0x06) break;
      seen.push(m[0]!);
    }
    expect(seen).not.toContain(MSG_REPLICA);
    expect(seen).not.toContain(MSG_SYNC_STEP1);
    expect(seen.filter((t) => t === MSG_SYNC_STEP2)).toHaveLength(1);
  });

  it('a malformed batch from a key holder closes the session (ERR_PROTOCOL); an altered batch frame is dropped (ERR_DECRYPT) and the session carries on', async () => {
    const { d, conn, sealer, read } = await rawPeer();
    await read();
    const decrypt = nextEvent(d, (e) => e.type === 'error' && e.error.code === 'ERR_DECRYPT', 'ERR_DECRYPT');
    const altered = sealer.seal(toFrames(encodeBatch([encodeReplica(new Uint8Array(16).fill(9))]), 1 << 20)[0]!);
    altered[altered.length - 20]! ^= 1;
    await conn.send(altered);
    await decrypt;
    expect(d.peers().map((p) => p.peerId)).toEqual(['raw']);
    expect(d.stats().peers[0]!.replicaId).toBeNull();

    const gone = nextEvent(d, (e) => e.type === 'peer-disconnected' && e.peerId === 'raw', 'the raw peer dropped');
    const nested = new Uint8Array([MSG_BATCH, 1, 3, MSG_BATCH, 1, 0]);
    await send(conn, sealer, nested);
    expect(await gone).toMatchObject({ reason: expect.stringContaining('ERR_PROTOCOL') });
    d.put('still', {});
    expect(d.get('still')).toEqual({});
  });
});
