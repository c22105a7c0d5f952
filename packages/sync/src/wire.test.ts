import { describe, expect, it } from 'vitest';
import * as encoding from 'lib0/encoding';
import { randomBytes } from '@noble/hashes/utils.js';
import { deriveTopic } from '@rhizome/core';
import { FrameSealer, SEAL_OVERHEAD, keyMaterial } from './seal.js';
import {
  CHUNK_HEADER_LENGTH,
  MSG_AWARENESS,
  MSG_PING,
  MSG_PONG,
  MSG_SYNC_STEP1,
  MSG_UPDATES,
  Reassembler,
  decodeMessage,
  encodeAwareness,
  encodeProbe,
  encodeStep1,
  encodeUpdates,
  toFrames,
} from './wire.js';

function reassembleAll(r: Reassembler, frames: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of frames) {
    const res = r.push(f);
    if (res.kind === 'message') out.push(res.message.slice());
    if (res.kind === 'dropped') throw res.error;
  }
  return out;
}

describe('framing', () => {
  it('sends small messages whole and splits large ones into chunks that reassemble', () => {
    const small = randomBytes(100);
    expect(toFrames(small, 1000)).toHaveLength(1);
    const big = randomBytes(10_000);
    const frames = toFrames(big, 1000);
    expect(frames.length).toBe(Math.ceil(10_000 / (1000 - CHUNK_HEADER_LENGTH)));
    for (const f of frames) expect(f.length).toBeLessThanOrEqual(1000);
    const r = new Reassembler(1 << 20);
    expect(reassembleAll(r, [...toFrames(small, 1000), ...frames])).toEqual([small, big]);
    expect(r.bufferedBytes).toBe(0);
  });

  it('bounds reassembly memory: a larger announced message is ERR_FRAME_TOO_LARGE', () => {
    const r = new Reassembler(5000);
    const frames = toFrames(randomBytes(6000), 1000);
    expect(() => r.push(frames[0]!)).toThrow(expect.objectContaining({ code: 'ERR_FRAME_TOO_LARGE' }));
    expect(() => new Reassembler(10).push(toFrames(randomBytes(50), 1000)[0]!)).toThrow(expect.objectContaining({ code: 'ERR_FRAME_TOO_LARGE' }));
  });

  it('drops replayed or out-of-order chunks without splicing them into the message', () => {
    const a = toFrames(randomBytes(3000), 1000);
    const b = toFrames(randomBytes(3000), 1000);
    const r = new Reassembler(1 << 20);
    expect(r.push(a[0]!).kind).toBe('pending');
    expect(r.push(a[1]!).kind).toBe('pending');
    // A replay of chunk 1 (index already taken): dropped, not appended twice.
    const replay = r.push(a[1]!);
    expect(replay.kind).toBe('dropped');
    // A chunk of another message in the middle: dropped.
    expect(r.push(b[1]!)).toMatchObject({ kind: 'dropped', error: { code: 'ERR_PROTOCOL' } });
    const rest = a.slice(2).map((f) => r.push(f));
    expect(rest.at(-1)!.kind).toBe('message');
  });

  it('rejects inconsistent chunk headers from a key holder as ERR_PROTOCOL', () => {
    const frames = toFrames(randomBytes(3000), 1000);
    const lying = frames[0]!.slice();
    new DataView(lying.buffer).setUint32(13, 1); // count 1
    expect(() => new Reassembler(1 << 20).push(lying)).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL' }));
    expect(() => new Reassembler(1 << 20).push(new Uint8Array([7, 1, 2]))).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL' }));
  });

  it('encodes and decodes every message type; malformed ones are ERR_PROTOCOL', () => {
    const id = randomBytes(16);
    expect(decodeMessage(encodeStep1(id, new Uint8Array([0])))).toMatchObject({ type: MSG_SYNC_STEP1, requestId: id });
    const ups = [randomBytes(10), randomBytes(300)];
    expect(decodeMessage(encodeUpdates(ups))).toEqual({ type: MSG_UPDATES, updates: ups });
    expect(decodeMessage(encodeAwareness(new Uint8Array([1, 2])))).toMatchObject({ type: MSG_AWARENESS });
    for (const id of [0, 1, 127, 128, 16383, 16384, 2 ** 28, 2 ** 31, 0xffffffff]) {
      expect(decodeMessage(encodeProbe(MSG_PING, id))).toEqual({ type: MSG_PING, id });
      // The bytes are lib0's (type byte, then writeVarUint): the wire did not change.
      const enc = encoding.createEncoder();
      encoding.writeUint8(enc, MSG_PONG);
      encoding.writeVarUint(enc, id);
      expect(encodeProbe(MSG_PONG, id)).toEqual(encoding.toUint8Array(enc));
      expect(decodeMessage(encodeProbe(MSG_PONG, id))).toEqual({ type: MSG_PONG, id });
    }
    const probes = [
      new Uint8Array([MSG_PING]), // no id
      new Uint8Array([MSG_PONG, 0x80]), // truncated varUint
      new Uint8Array([MSG_PING, 1, 2]), // trailing byte
      new Uint8Array([MSG_PING, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // above 2^32
      new Uint8Array([MSG_PING, 0xff, 0xff, 0xff, 0xff, 0x1f]), // 2^33 - 1 in 5 bytes
      new Uint8Array([MSG_PONG, 0x80, 0x80]), // truncated varUint, longer
    ];
    for (const bad of [new Uint8Array([]), new Uint8Array([9]), new Uint8Array([MSG_SYNC_STEP1, 1, 2]), new Uint8Array([MSG_UPDATES, 5, 1]), ...probes]) {
      expect(() => decodeMessage(bad)).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL' }));
    }
  });
});

describe('sealing', () => {
  const topic = deriveTopic('db-1');

  it('round-trips with random nonces and adds exactly SEAL_OVERHEAD bytes', () => {
    const s = new FrameSealer(keyMaterial('db-1'), topic);
    const msg = randomBytes(500);
    const f1 = s.seal(msg);
    const f2 = s.seal(msg);
    expect(f1.length).toBe(msg.length + SEAL_OVERHEAD);
    expect(f1).not.toEqual(f2);
    expect(s.open(f1)).toEqual(msg);
  });

  it('fails to open with ERR_DECRYPT: wrong secret, other topic, tampering, truncation', () => {
    const s = new FrameSealer(keyMaterial('db-1'), topic);
    const frame = s.seal(randomBytes(64));
    const wrongSecret = new FrameSealer(keyMaterial('db-1', 'other secret'), topic);
    // Same key material under another topic: the AAD and HKDF info differ.
    const otherTopic = new FrameSealer(keyMaterial('db-1'), deriveTopic('db-2'));
    const tampered = frame.slice();
    tampered[tampered.length - 20]! ^= 1;
    const badVersion = frame.slice();
    badVersion[0] = 2;
    for (const [sealer, f] of [[wrongSecret, frame], [otherTopic, frame], [s, tampered], [s, badVersion], [s, frame.subarray(0, 30)]] as const) {
      expect(() => sealer.open(f)).toThrow(expect.objectContaining({ code: 'ERR_DECRYPT' }));
    }
  });

  it('derives the key from the secret when given, else from the id', () => {
    const byId = new FrameSealer(keyMaterial('db-1'), topic);
    const bySecret = new FrameSealer(keyMaterial('db-1', 's3cret'), topic);
    const sameSecret = new FrameSealer(keyMaterial('another-id', 's3cret'), topic);
    const frame = bySecret.seal(new Uint8Array([1, 2, 3]));
    expect(sameSecret.open(frame)).toEqual(new Uint8Array([1, 2, 3]));
    expect(() => byId.open(frame)).toThrow(expect.objectContaining({ code: 'ERR_DECRYPT' }));
    expect(() => keyMaterial('x', new Uint8Array(0))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});

describe('batch messages (a session opening in one frame)', () => {
  it('round-trips: the inner messages come back byte for byte, in order, as views', async () => {
    const { MSG_BATCH, MAX_BATCH_MESSAGES, encodeBatch, decodeBatch } = await import('./wire.js');
    const inner = [encodeStep1(new Uint8Array(16).fill(3), new Uint8Array([0])), encodeAwareness(new Uint8Array(200).fill(9)), encodeProbe(MSG_PING, 7)];
    const batch = encodeBatch(inner);
    expect(batch[0]).toBe(MSG_BATCH);
    expect(decodeBatch(batch).map((m) => [...m])).toEqual(inner.map((m) => [...m]));
    // Byte layout: type, varUint count, then varUint length + bytes per message (the awareness one's length takes 2 bytes).
    expect([...batch.subarray(0, 3)]).toEqual([MSG_BATCH, 3, inner[0]!.length]);
    const many = Array.from({ length: MAX_BATCH_MESSAGES }, (_, i) => encodeProbe(MSG_PONG, i));
    expect(decodeBatch(encodeBatch(many))).toHaveLength(MAX_BATCH_MESSAGES);
  });

  it('malformed batches are typed protocol errors', async () => {
    const { MSG_BATCH, MAX_BATCH_MESSAGES, encodeBatch, decodeBatch } = await import('./wire.js');
    const ping = encodeProbe(MSG_PING, 1);
    const bad: Array<[string, Uint8Array]> = [
      ['empty batch', new Uint8Array([MSG_BATCH, 0])],
      ['no count', new Uint8Array([MSG_BATCH])],
      ['too many', encodeBatch(Array.from({ length: MAX_BATCH_MESSAGES + 1 }, () => ping))],
      ['length past the end', new Uint8Array([MSG_BATCH, 1, 9, MSG_PING, 1])],
      ['empty inner message', new Uint8Array([MSG_BATCH, 1, 0])],
      ['nested', encodeBatch([encodeBatch([ping])])],
      ['trailing bytes', Uint8Array.from([...encodeBatch([ping]), 0])],
      ['count past the end', new Uint8Array([MSG_BATCH, 2, ping.length, ...ping])],
      ['not a batch', ping],
    ];
    for (const [what, bytes] of bad) {
      expect(() => decodeBatch(bytes), what).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL' }));
    }
  });
});
