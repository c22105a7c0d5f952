import { readFileSync } from 'node:fs';
import { deriveTopic } from '@rhizome/core';
import { describe, expect, it } from 'vitest';
import { topicToCid } from './cid.js';
import { ByteQueue, decodeHello, encodeFrame, encodeHello, HandshakeStatus, HELLO_LENGTH, statusName, WIRE_VERSION } from './wire.js';

describe('wire', () => {
  it('HELLO is the version byte and the 32 topic bytes', () => {
    const topic = deriveTopic('abc');
    const hello = encodeHello(topic);
    expect(hello.length).toBe(HELLO_LENGTH);
    expect(hello[0]).toBe(WIRE_VERSION);
    expect(Buffer.from(hello.subarray(1)).toString('hex')).toBe('bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319');
    expect(decodeHello(hello)).toEqual({ version: 1, topic });
    expect(() => decodeHello(hello.subarray(1))).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL' }));
  });

  it('a frame is a u32 big-endian length and a copy of the payload', () => {
    const payload = new Uint8Array([9, 8, 7]);
    const frame = encodeFrame(payload);
    expect([...frame]).toEqual([0, 0, 0, 3, 9, 8, 7]);
    payload[0] = 0;
    expect(frame[4]).toBe(9);
    expect([...encodeFrame(new Uint8Array(0))]).toEqual([0, 0, 0, 0]);
  });

  it('ByteQueue reassembles frames split at every byte boundary', () => {
    const frames = [new Uint8Array(0), new Uint8Array([1]), new Uint8Array(300).fill(5), new Uint8Array([2, 3])];
    const wire = Buffer.concat(frames.map((f) => encodeFrame(f)));
    for (let split = 1; split <= wire.length; split++) {
      const q = new ByteQueue();
      const got: Uint8Array[] = [];
      for (let i = 0; i < wire.length; i += split) {
        q.push(wire.subarray(i, Math.min(wire.length, i + split)));
        for (let f = q.readFrame(1024); f !== null; f = q.readFrame(1024)) got.push(f);
      }
      expect(got).toEqual(frames);
      expect(q.length).toBe(0);
      // Payloads are plain Uint8Arrays that own their memory (not Buffer views of the input).
      for (const f of got) expect(Object.getPrototypeOf(f)).toBe(Uint8Array.prototype);
    }
  });

  it('an oversized header fails before its payload arrives', () => {
    const q = new ByteQueue();
    q.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    expect(() => q.readFrame(1024 * 1024)).toThrow(expect.objectContaining({ code: 'ERR_FRAME_TOO_LARGE', size: 0xffff_ffff }));
    const r = new ByteQueue();
    r.push(encodeFrame(new Uint8Array(1025)).subarray(0, 4));
    expect(() => r.readFrame(1024)).toThrow(expect.objectContaining({ code: 'ERR_FRAME_TOO_LARGE', size: 1025, limit: 1024 }));
  });

  it('reads exact byte counts across chunks', () => {
    const q = new ByteQueue();
    q.push(new Uint8Array([1, 2]));
    expect(q.read(3)).toBeNull();
    q.push(new Uint8Array([3, 4, 5]));
    expect([...q.read(3)!]).toEqual([1, 2, 3]);
    expect([...q.read(2)!]).toEqual([4, 5]);
    expect(q.length).toBe(0);
  });

  it('status bytes are the ones ARCHITECTURE.md § The sync stream, byte by byte lists', () => {
    const doc = readFileSync(new URL('../../../ARCHITECTURE.md', import.meta.url), 'utf8');
    const at = doc.indexOf('### The sync stream, byte by byte');
    const text = doc.slice(at, doc.indexOf('\n### ', at + 1));
    const documented = [...text.matchAll(/^\| `0x([0-9a-f]{2})` \| (\w+) \|/gm)].map((m) => [m[2], Number.parseInt(m[1]!, 16)]);
    expect(Object.fromEntries(documented)).toEqual(HandshakeStatus);
    // HELLO `[version:1 = 0x01][topic:32]` (33), frame `[length:4][payload:length]`.
    expect(text).toContain('`[version:1 = 0x01][topic:32]` (33)');
    expect(text).toContain('`[length:4][payload:length]`');
    expect(WIRE_VERSION).toBe(0x01);
  });

  it('names status bytes', () => {
    expect(statusName(0)).toBe('OK');
    expect(statusName(1)).toBe('UNKNOWN_TOPIC');
    expect(statusName(0x7f)).toBe('0x7f');
  });
});

describe('topicToCid', () => {
  it('is CID v1, raw codec, sha2-256 of the topic bytes, the same everywhere', () => {
    const cid = topicToCid(deriveTopic('abc'));
    expect(cid.version).toBe(1);
    expect(cid.code).toBe(0x55);
    expect(cid.multihash.code).toBe(0x12);
    // sha256(bddd81…2319), computed independently with `printf … | xxd -r -p | sha256sum`.
    expect(Buffer.from(cid.multihash.digest).toString('hex')).toBe('1ce43a7ff97ae291cb5b8e47e1fbb9a271de90f2b28d719c8724780ea01ea597');
    // The example ARCHITECTURE.md § Topic → CID gives.
    expect(cid.toString()).toBe('bafkreia44q5h76l24ki4ww4oi7q7xoncohpjb4vsrvyzzbzepahkahvfs4');
    expect(topicToCid(deriveTopic('abc')).equals(cid)).toBe(true);
    expect(topicToCid(deriveTopic('abd')).equals(cid)).toBe(false);
    expect(() => topicToCid(new Uint8Array(31))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_TOPIC' }));
  });
});
