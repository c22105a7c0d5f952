// A session's opening and its step 2 answer leave in the task that made them, not on the
// scheduler's next turn (setImmediate in Node). Under a burst of connecting replicas the next turn
// comes only after every other ready socket was read, so queued handshake messages lived through
// scavenges and were promoted to die in the old generation (BENCHMARKS.md § Issue 12, Session 14
// (rss)). While handshaking, a session keeps its step-1 request id as the id itself, not a record
// around it; a chunked message in the middle needs the record, and the id must survive the trip
// into it and out. A probe transport with one connection records what the session hands it; the checks
// run in a microtask (before any macrotask) and synchronously after a delivered step 1.
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { AsyncQueue, generateDatabaseId } from '@rhizome/core';
import type { Connection, ConnectionListener, PeerInfo, TopicHash, Transport } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { FrameSealer, encodeReplica, keyMaterial, openDatabase, type Database } from '@rhizome/sync';
import { MSG_BATCH, MSG_SYNC_STEP1, MSG_SYNC_STEP2, decodeBatch, decodeMessage, encodeBatch, encodeStep1, encodeStep2, encodeUpdates, toFrames, wholeFrame } from '../packages/sync/src/wire.js';
import { MSG_REPLICA } from '../packages/sync/src/replicas.js';

/** One connection that takes every frame at once (`trySend`) and hands received ones to its listener. */
class ProbeConnection implements Connection {
  readonly peerId = 'probe';
  readonly transport = 'probe';
  readonly topic: TopicHash;
  readonly sent: Uint8Array[] = [];
  listener: ConnectionListener | null = null;
  /** Frames sent when the task that called `listen` (the session's start) had ended. */
  sentByEndOfStart = -1;
  readonly listening: Promise<void>;
  #listened!: () => void;
  #closed = false;

  constructor(topic: TopicHash) {
    this.topic = topic;
    this.listening = new Promise((resolve) => (this.#listened = resolve));
  }
  get closed(): boolean {
    return this.#closed;
  }
  trySend(data: Uint8Array): boolean {
    this.sent.push(data);
    return true;
  }
  send(data: Uint8Array): Promise<void> {
    this.sent.push(data);
    return Promise.resolve();
  }
  listen(listener: ConnectionListener): void {
    this.listener = listener;
    // A microtask runs when the current task's synchronous work is done, before any macrotask.
    queueMicrotask(() => {
      this.sentByEndOfStart = this.sent.length;
      this.#listened();
    });
  }
  receive(): Promise<Uint8Array | null> {
    return new Promise(() => undefined);
  }
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.listener?.onEnd(null);
    }
    return Promise.resolve();
  }
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    throw new Error('a listened-to connection is not iterated');
  }
}

/** A transport that yields one {@link ProbeConnection} per topic joined. */
class ProbeTransport implements Transport {
  readonly name = 'probe';
  readonly maxMessageSize = 1 << 20;
  readonly connections = new AsyncQueue<ProbeConnection>();
  readonly #streams: Array<AsyncQueue<Connection>> = [];
  announce(): Promise<void> {
    return Promise.resolve();
  }
  lookup(): Promise<PeerInfo[]> {
    return Promise.resolve([]);
  }
  connect(topic: TopicHash): Promise<AsyncIterable<Connection>> {
    const stream = new AsyncQueue<Connection>();
    this.#streams.push(stream);
    const conn = new ProbeConnection(topic);
    stream.push(conn);
    this.connections.push(conn);
    return Promise.resolve(stream);
  }
  disconnect(): Promise<void> {
    for (const s of this.#streams.splice(0)) s.end();
    return Promise.resolve();
  }
}

const open: Database[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

/**
 * A database on a {@link ProbeTransport} with its one connection listening; `sealer` seals and
 * opens frames under the database's key, `message` opens a whole sent frame to its message.
 */
async function openProbed(): Promise<{ d: Database; conn: ProbeConnection; sealer: FrameSealer; message: (frame: Uint8Array) => Uint8Array }> {
  const id = generateDatabaseId();
  const transport = new ProbeTransport();
  const d = await openDatabase({ id, transport });
  open.push(d);
  const conn = (await within(5000, 'a connection', transport.connections.shift()))!;
  await within(5000, 'the session listening', conn.listening);
  const sealer = new FrameSealer(keyMaterial(id), d.topic);
  const message = (frame: Uint8Array): Uint8Array => {
    const whole = wholeFrame(sealer.open(frame), 1 << 20);
    if (whole?.kind !== 'message') throw new Error('not a whole frame');
    return whole.message;
  };
  return { d, conn, sealer, message };
}

describe('handshake messages leave in the task that made them', () => {
  it('the opening is handed to the connection before the session start task ends, and the answer to a step 1 before its delivery returns', async () => {
    const { conn, message, sealer } = await openProbed();

    // The opening (one batch: REPLICA, step 1, awareness) left in the session's start task.
    expect(conn.sentByEndOfStart).toBe(1);
    expect(message(conn.sent[0]!)[0]).toBe(MSG_BATCH);

    // A peer's opening with its step 1: the answer (step 2) is sent before onMessage returns.
    const before = conn.sent.length;
    const opening = encodeBatch([encodeReplica(new Uint8Array(16).fill(7)), encodeStep1(new Uint8Array(16).fill(0x42), Y.encodeStateVector(new Y.Doc()))]);
    conn.listener!.onMessage(sealer.seal(toFrames(opening, 1 << 20)[0]!));
    const now = conn.sent.slice(before).map((f) => message(f));
    expect(now.map((m) => m[0])).toEqual([MSG_SYNC_STEP2]);
    expect(decodeMessage(now[0]!).type).toBe(MSG_SYNC_STEP2);
    expect(decodeBatch(message(conn.sent[0]!)).map((m) => m[0])[0]).toBe(MSG_REPLICA);
    // (The probe peer answers nothing a closing database asks: end the connection first.)
    await conn.close();
  });

  it('a chunked message during the handshake keeps the request id: the answer to our step 1 still makes the session synced', async () => {
    const { d, conn, message, sealer } = await openProbed();
    const deliver = (m: Uint8Array, maxPlaintext = 1 << 20): number => {
      const frames = toFrames(m, maxPlaintext);
      for (const f of frames) conn.listener!.onMessage(sealer.seal(f));
      return frames.length;
    };
    const ourStep1 = decodeMessage(decodeBatch(message(conn.sent[0]!))[1]!);
    if (ourStep1.type !== MSG_SYNC_STEP1) throw new Error('no step 1 in the opening');

    // The peer opens (we answer it), then sends a live update in several chunks (the session's
    // rare record is made for the reassembler), then answers our step 1.
    deliver(encodeBatch([encodeReplica(new Uint8Array(16).fill(7)), encodeStep1(new Uint8Array(16).fill(0x42), Y.encodeStateVector(new Y.Doc()))]));
    const peerDoc = new Y.Doc();
    peerDoc.getMap('nodes').set('n1', 'x'.repeat(400));
    expect(deliver(encodeUpdates([Y.encodeStateAsUpdate(peerDoc)]), 128)).toBeGreaterThan(1);
    deliver(encodeStep2(ourStep1.requestId, Y.encodeStateAsUpdate(peerDoc)));
    await within(5000, 'synced', d.whenSynced({ timeoutMs: 5000 }));
    expect(d.stats().peers[0]?.synced).toBe(true);
    await conn.close();
  });
});
