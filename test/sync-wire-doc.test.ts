// The sync layer's wire byte by byte as ARCHITECTURE.md writes it (§ Frames on the wire, § Keys and
// sealing, § The node model), checked from outside: a raw peer on a memory hub seals and opens
// frames with the documented derivation only (literal labels, @noble primitives: no Rhizome
// code), and writes and reads the documented bytes literally. A real database must open the
// documented session (one batch frame), answer a literal step 1, a ping, live updates and a
// chunked message, and send its own writes in the documented node model.
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeAwarenessUpdate } from 'y-protocols/awareness';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { MemoryTransport, generateDatabaseId, type Connection } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { openDatabase, type Database } from '@rhizome/sync';
import { uniqueHub, until } from './sync-helpers.js';

const WAIT = 10_000;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (...parts: Array<Uint8Array | number[]>): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));
/** lib0's varUint. */
const varUint = (n: number): number[] => {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push(0x80 | (n & 0x7f));
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

const open: Database[] = [];
const transports: MemoryTransport[] = [];
afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.disconnect()));
  await Promise.all(open.splice(0).map((d) => d.close()));
});

/** § Keys and sealing, from the document alone. */
function referenceSealer(id: string, topic: Uint8Array) {
  const key = hkdf(sha256, utf8(id), utf8('rhizome/v1/seal'), topic, 32);
  const aad = bytes(utf8('rhizome/v1/frame'), [0x01], topic);
  const prefix = new Uint8Array(16).fill(0x5a);
  let counter = 0;
  return {
    /** `0x01 ‖ nonce (prefix 16 ‖ counter u64 BE) ‖ ciphertext ‖ tag`. */
    seal(plaintext: Uint8Array): Uint8Array {
      counter++;
      const nonce = bytes(prefix, [0, 0, 0, 0], u32(counter));
      return bytes([0x01], nonce, xchacha20poly1305(key, nonce, aad).encrypt(plaintext));
    },
    open(frame: Uint8Array): { plaintext: Uint8Array; prefix: string; counter: bigint } {
      expect(frame[0]).toBe(0x01);
      const nonce = frame.subarray(1, 25);
      const plaintext = xchacha20poly1305(key, nonce, aad).decrypt(frame.subarray(25));
      expect(frame.length).toBe(plaintext.length + 41);
      return { plaintext, prefix: hex(nonce.subarray(0, 16)), counter: Buffer.from(nonce.subarray(16)).readBigUInt64BE() };
    },
  };
}

async function rawPeer() {
  const hub = uniqueHub('wire-doc');
  const id = generateDatabaseId();
  const d = await openDatabase({ id, transport: { mode: 'memory', hub, peerId: 'd' } });
  open.push(d);
  const peer = new MemoryTransport({ hub, peerId: 'raw' });
  transports.push(peer);
  const conn = (await within(WAIT, 'a connection', (await peer.connect(d.topic))[Symbol.asyncIterator]().next())).value as Connection;
  const ref = referenceSealer(id, d.topic);
  const seen: Array<{ prefix: string; counter: bigint }> = [];
  /** The next plaintext `d` sent (opened by the reference) that `match` accepts; others are skipped. */
  const next = async (what: string, match: (p: Uint8Array) => boolean = () => true): Promise<Uint8Array> => {
    for (;;) {
      const frame = await within(WAIT, what, conn.receive());
      if (frame === null) throw new Error(`connection closed waiting for ${what}`);
      const { plaintext, prefix, counter } = ref.open(frame);
      seen.push({ prefix, counter });
      if (match(plaintext)) return plaintext;
    }
  };
  const send = (plaintext: Uint8Array): Promise<void> => conn.send(ref.seal(plaintext));
  return { d, next, send, seen };
}

describe('the sync wire as ARCHITECTURE.md writes it', () => {
  it('a fresh database opens with one batch frame: 00 08 03 | 12 07 01 replicaId | 12 01 requestId 00 | len 04 awareness', async () => {
    const { d, next } = await rawPeer();
    const p = await next('the opening');
    const awareness = encodeAwarenessUpdate(d.awareness, [d.doc.clientID]);
    const requestId = p.subarray(24, 40); // after `00 08 03`, `12 07 01 <16>`, `12 01`
    const expected = bytes(
      [0x00, 0x08, 0x03],
      [0x12, 0x07, 0x01], Buffer.from(d.replicaId, 'hex'),
      [0x12, 0x01], requestId, [0x00],
      varUint(1 + awareness.length), [0x04], awareness,
    );
    expect(hex(p)).toBe(hex(expected));
  });

  it('answers a literal step 1, ping, updates and a chunked message; sends its writes in the node model; one nonce prefix, the counter +1 per frame', async () => {
    const { d, next, send, seen } = await rawPeer();
    await next('the opening');

    // Our opening, the old way (no batch): REPLICA `07 01 id`, then step 1 `01 requestId stateVector` with an empty state vector.
    const requestId = new Uint8Array(16).fill(0x33);
    await send(bytes([0x00, 0x07, 0x01], new Uint8Array(16).fill(7)));
    await send(bytes([0x00, 0x01], requestId, [0x00]));
    // Step 2 echoes the request id; a fresh document's whole state is the empty update `00 00`.
    expect(hex(await next('step 2', (p) => p[1] === 0x02))).toBe(hex(bytes([0x00, 0x02], requestId, [0x00, 0x00])));

    // Ping `05 varUint id` → pong `06 varUint id`.
    await send(bytes([0x00, 0x05], varUint(300)));
    expect(hex(await next('pong', (p) => p[1] === 0x06))).toBe(hex(bytes([0x00, 0x06], varUint(300))));

    // § The node model: `nodes` holds id → true, `fields` holds `id U+0000 field` → value.
    const writer = new Y.Doc();
    const updates: Uint8Array[] = [];
    writer.on('update', (u: Uint8Array) => updates.push(u));
    writer.transact(() => {
      writer.getMap('nodes').set('n1', true);
      writer.getMap('fields').set('n1\u0000title', 'from the raw peer');
    });
    // Updates `03 varUint n (varUint length ‖ update)×n`.
    await send(bytes([0x00, 0x03], varUint(1), varUint(updates[0]!.length), updates[0]!));
    await until(d, () => d.get('n1') !== undefined, 'n1');
    expect(d.get('n1')).toEqual({ title: 'from the raw peer' });

    // A chunked message: `01 messageId(8) index(u32) count(u32) total(u32) bytes`, 21-byte header.
    writer.transact(() => {
      writer.getMap('nodes').set('n2', true);
      writer.getMap('fields').set('n2\u0000body', 'x'.repeat(500));
    });
    const message = bytes([0x03], varUint(1), varUint(updates[1]!.length), updates[1]!);
    const messageId = [1, 2, 3, 4, 5, 6, 7, 8];
    const half = Math.ceil(message.length / 2);
    await send(bytes([0x01], messageId, u32(0), u32(2), u32(message.length), message.subarray(0, half)));
    await send(bytes([0x01], messageId, u32(1), u32(2), u32(message.length), message.subarray(half)));
    await until(d, () => d.get('n2') !== undefined, 'n2');
    expect(d.get('n2')).toEqual({ body: 'x'.repeat(500) });

    // The database's own write leaves as an updates message in the same node model.
    d.put('n3', { done: true });
    const p = await next('the put', (m) => m[1] === 0x03);
    const reader = new Y.Doc();
    const dec = { at: 3 };
    expect(p.subarray(0, 3)).toEqual(Uint8Array.of(0x00, 0x03, 0x01));
    let length = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = p[dec.at++]!;
      length += (b & 0x7f) * shift;
      if (b < 0x80) break;
    }
    expect(dec.at + length).toBe(p.length);
    Y.applyUpdate(reader, p.subarray(dec.at));
    expect(reader.getMap('nodes').get('n3')).toBe(true);
    expect(reader.getMap('fields').get('n3\u0000done')).toBe(true);

    // § Keys and sealing: one random prefix per sealer, the counter 1, 2, 3, … per frame.
    expect(new Set(seen.map((s) => s.prefix)).size).toBe(1);
    expect(seen.map((s) => s.counter)).toEqual(seen.map((_, i) => BigInt(i + 1)));
  });
});
