// What a synced idle peer session keeps since Session 10 (clipeer) (BENCHMARKS.md § Issue 12): its
// step-1 request id is dropped once synced, the count of step 2 answers not yet sent and "a frame
// of this peer opened" are bits of its flags, the frame limit learnt from the transport lives in
// its rarely used part, and its meter has no channel count or last-send time of its own. A hand-written
// peer on a memory hub drives one database through what those fields were for: the opening, step 1s
// answered one by one after sync (each echoing its own request id), a replay of the step 2 that
// answered the original request (applied, nothing reported), a frame that fails to open after
// frames that opened (reported, the peer stays a regular peer), pings answered with their id,
// updates both ways, its health state (the monitor's shared record as a bit of the session's
// flags while it is responding, a record of its own once degraded, and back), and a clean close.
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { MemoryHub, MemoryTransport, deriveTopic, type Connection, type SyncEvent } from '@rhizome/core';
import { openDatabase, type Database } from '@rhizome/sync';
import { FrameSealer, keyMaterial } from '../packages/sync/src/seal.js';
import {
  MSG_BATCH,
  MSG_PONG,
  MSG_SYNC_STEP1,
  MSG_SYNC_STEP2,
  MSG_UPDATES,
  MSG_PING,
  decodeBatch,
  decodeMessage,
  encodeBatch,
  encodeProbe,
  encodeStep1,
  encodeStep2,
  encodeUpdates,
  toFrames,
  wholeFrame,
  type Message,
} from '../packages/sync/src/wire.js';
import { connectionTo } from './sync-helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A hand-written peer: reads the database's messages into a list, sends sealed messages. */
async function handPeer(id: string, hub: MemoryHub, peerId: string) {
  const topic = deriveTopic(id);
  const sealer = new FrameSealer(keyMaterial(id), topic);
  const transport = new MemoryTransport({ hub, peerId });
  const abort = new AbortController();
  cleanups.push(async () => {
    abort.abort();
    await transport.disconnect();
  });
  const conn: Connection = await connectionTo(transport, topic, 'db', abort.signal);
  const received: Message[] = [];
  const reading = (async () => {
    for (;;) {
      const frame = await conn.receive();
      if (frame === null) return;
      const whole = wholeFrame(sealer.open(frame), 1 << 22);
      if (whole === null || whole.kind !== 'message') throw new Error('expected whole frames');
      const bytes = whole.message;
      for (const m of bytes[0] === MSG_BATCH ? decodeBatch(bytes) : [bytes]) {
        if (m[0] === MSG_SYNC_STEP1 || m[0] === MSG_SYNC_STEP2 || m[0] === MSG_UPDATES || m[0] === MSG_PONG || m[0] === MSG_PING) received.push(decodeMessage(m));
      }
    }
  })();
  cleanups.push(() => reading.catch(() => undefined));
  const send = async (message: Uint8Array): Promise<void> => {
    for (const plain of toFrames(message, 1 << 20)) await conn.send(sealer.seal(plain));
  };
  return { conn, received, send };
}

async function poll(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function updateWith(key: string, value: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getMap('x').set(key, value);
  return Y.encodeStateAsUpdate(doc);
}

describe('a synced idle peer session (request id dropped, counters in flags)', () => {
  it('answers later step 1s, applies a replayed step 2, stays a regular peer after a bad frame, answers pings, and closes cleanly', async () => {
    const id = `idle-peer-${process.pid}-${Date.now()}`;
    const hub = new MemoryHub(id);
    // Fast health checks, so the peer's health state moves within the test (no timing asserted).
    const health = { checkIntervalMs: 50, pingIntervalMs: 100, degradedSilenceMs: 800, unreachableSilenceMs: 60_000 };
    const db: Database = await openDatabase({ id, transport: new MemoryTransport({ hub, peerId: 'db' }), health });
    cleanups.push(() => db.close());
    const errors: SyncEvent[] = [];
    const events = db.events.subscribe({ capacity: 10_000 });
    const watching = (async () => {
      for await (const e of events as AsyncIterable<SyncEvent>) if (e.type === 'error') errors.push(e);
    })();
    cleanups.push(async () => {
      events.unsubscribe();
      await watching;
    });

    const x = await handPeer(id, hub, 'x');
    // The database opens with its step 1; the peer opens too and answers with an update.
    await poll(() => x.received.some((m) => m.type === MSG_SYNC_STEP1), "the database's step 1");
    const ask = x.received.find((m) => m.type === MSG_SYNC_STEP1) as Extract<Message, { type: typeof MSG_SYNC_STEP1 }>;
    const first = updateWith('a', 'from x');
    await x.send(encodeBatch([encodeStep1(new Uint8Array(16).fill(1), new Uint8Array([0])), encodeStep2(ask.requestId, first)]));
    await db.whenSynced({ minPeers: 1, timeoutMs: 20_000 });
    expect(db.stats().peers[0]?.synced).toBe(true);
    expect(db.doc.getMap('x').get('a')).toBe('from x');
    await poll(() => x.received.some((m) => m.type === MSG_SYNC_STEP2), 'the answer to our step 1');

    // After sync: three more step 1s, each answered with a step 2 echoing its own request id.
    const ids = [2, 3, 4].map((b) => new Uint8Array(16).fill(b));
    for (const r of ids) await x.send(encodeStep1(r, Y.encodeStateVector(new Y.Doc())));
    const answers = () => x.received.filter((m): m is Extract<Message, { type: typeof MSG_SYNC_STEP2 }> => m.type === MSG_SYNC_STEP2);
    await poll(() => answers().length >= 4, 'three more answers');
    expect(answers().slice(1).map((m) => m.requestId[0])).toEqual([2, 3, 4]);

    // A replay of the step 2 answering the database's original request: applied, nothing reported.
    await x.send(encodeStep2(ask.requestId, updateWith('b', 'replayed')));
    await poll(() => db.doc.getMap('x').get('b') === 'replayed', 'the replayed step 2 applied');

    // A frame that does not open: reported and counted, and the peer (whose frames opened) stays a
    // regular peer: whenSynced still counts it.
    await x.conn.send(new FrameSealer(keyMaterial('another database'), deriveTopic(id)).seal(new Uint8Array([MSG_UPDATES, 0])));
    await poll(() => (db.stats().peers[0]?.decryptErrors ?? 0) === 1, 'the bad frame counted');
    await db.whenSynced({ minPeers: 1, timeoutMs: 5_000 });
    expect(errors.map((e) => (e as { error: { code?: string } }).error.code)).toEqual(['ERR_DECRYPT']);

    // Pings are answered with their id; updates flow both ways.
    await x.send(encodeProbe(MSG_PING, 77));
    await poll(() => x.received.some((m) => m.type === MSG_PONG && m.id === 77), 'the pong');
    db.put('n', { from: 'db' });
    await poll(() => x.received.some((m) => m.type === MSG_UPDATES), 'the database update');
    await x.send(encodeUpdates([updateWith('c', 'live')]));
    await poll(() => db.doc.getMap('x').get('c') === 'live', 'a live update applied');
    expect(db.peers().map((p) => p.peerId)).toEqual(['x']);

    // Health: a peer that keeps talking is healthy and 'responding' (the monitor's shared record,
    // a bit of the session's flags); silent, it turns degraded (a record of its own), and talking
    // again brings it back.
    await poll(() => db.stats().peers[0]?.healthReason === 'responding', 'responding');
    expect(db.stats().peers[0]?.health).toBe('healthy');
    await poll(() => db.stats().peers[0]?.health === 'degraded', 'degraded once silent');
    for (let i = 0; db.stats().peers[0]?.health !== 'healthy' && i < 400; i++) {
      await x.send(encodeProbe(MSG_PONG, 1));
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(db.stats().peers[0]?.health).toBe('healthy');
    expect(db.stats().peers[0]?.healthReason).toBe('responding');

    // The peer leaves: the database sees it go; close is clean and idempotent.
    await x.conn.close();
    await poll(() => db.peers().length === 0, 'the peer gone');
    await db.close();
    await db.close();
    expect(errors).toHaveLength(1);
  });
});
