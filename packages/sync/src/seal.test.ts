import { describe, expect, it } from 'vitest';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hexToBytes, bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { DecryptError, deriveTopic } from '@rhizome/core';
import { defaultAead, hchacha20, nobleAead } from './aead.js';
import { FrameSealer, NONCE_LENGTH, SEAL_AAD_LABEL, SEAL_KEY_LABEL, SEAL_OVERHEAD, SEAL_VERSION, keyMaterial } from './seal.js';

const topic = deriveTopic('seal-test');
const material = keyMaterial('seal-test');

/** The frame as version 1 defines it, computed independently with noble's XChaCha20-Poly1305. */
function referenceOpen(frame: Uint8Array, ofMaterial = material, ofTopic = topic): Uint8Array {
  const key = hkdf(sha256, ofMaterial, utf8ToBytes(SEAL_KEY_LABEL), ofTopic, 32);
  const label = utf8ToBytes(SEAL_AAD_LABEL);
  const aad = new Uint8Array([...label, SEAL_VERSION, ...ofTopic]);
  return xchacha20poly1305(key, frame.subarray(1, 1 + NONCE_LENGTH), aad).decrypt(frame.subarray(1 + NONCE_LENGTH));
}

function referenceSeal(plaintext: Uint8Array, nonce: Uint8Array): Uint8Array {
  const key = hkdf(sha256, material, utf8ToBytes(SEAL_KEY_LABEL), topic, 32);
  const aad = new Uint8Array([...utf8ToBytes(SEAL_AAD_LABEL), SEAL_VERSION, ...topic]);
  return new Uint8Array([SEAL_VERSION, ...nonce, ...xchacha20poly1305(key, nonce, aad).encrypt(plaintext)]);
}

describe('hchacha20', () => {
  it('matches the test vector of draft-irtf-cfrg-xchacha §2.2.1', () => {
    const key = hexToBytes('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const input = hexToBytes('000000090000004a0000000031415927');
    expect(bytesToHex(hchacha20(key, input))).toBe('82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
  });
});

describe('FrameSealer', () => {
  for (const aead of [defaultAead(), nobleAead]) {
    it(`(${aead.name}) seals exactly what XChaCha20-Poly1305 version 1 defines, and opens frames of older sealers`, () => {
      const sealer = new FrameSealer(material, topic, aead);
      for (const size of [0, 1, 63, 64, 65, 1000, 70_000]) {
        const plaintext = new Uint8Array(size).map((_, i) => (i * 31 + size) & 0xff);
        const frame = sealer.seal(plaintext);
        expect(frame.length).toBe(size + SEAL_OVERHEAD);
        expect(frame[0]).toBe(SEAL_VERSION);
        expect(referenceOpen(frame)).toEqual(plaintext);
        // An older sealer (random 24-byte nonce per frame) is opened too.
        const old = referenceSeal(plaintext, crypto.getRandomValues(new Uint8Array(NONCE_LENGTH)));
        expect(sealer.open(old)).toEqual(plaintext);
      }
    });
  }

  it('never repeats a nonce: one prefix per sealer, a counter per frame', () => {
    const a = new FrameSealer(material, topic);
    const b = new FrameSealer(material, topic);
    const seen = new Set<string>();
    for (const sealer of [a, b]) {
      for (let i = 0; i < 1000; i++) seen.add(bytesToHex(sealer.seal(new Uint8Array(4)).subarray(1, 1 + NONCE_LENGTH)));
    }
    expect(seen.size).toBe(2000);
    const fa = a.seal(new Uint8Array(1));
    const fb = b.seal(new Uint8Array(1));
    expect(bytesToHex(fa.subarray(1, 17))).not.toBe(bytesToHex(fb.subarray(1, 17)));
  });

  it('node and noble produce identical frames under one prefix, and open each other', () => {
    const node = new FrameSealer(material, topic, defaultAead());
    const noble = new FrameSealer(material, topic, nobleAead);
    const plaintext = utf8ToBytes('hello, sealed world');
    expect(noble.open(node.seal(plaintext))).toEqual(plaintext);
    expect(node.open(noble.seal(plaintext))).toEqual(plaintext);
  });

  it('opens the frames of many senders, each again later, remembering the last other sender only (a stream from one derives its subkey once)', () => {
    const receiver = new FrameSealer(material, topic);
    const senders = Array.from({ length: 40 }, () => new FrameSealer(material, topic));
    const body = (i: number, round: number): Uint8Array => new Uint8Array([i, round, 7, 9]);
    const start = FrameSealer.subkeysDerived;
    const derivedSince = (): number => FrameSealer.subkeysDerived - start;
    // Senders in turn: every frame is from another sender than the last, so each derives its subkey.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < senders.length; i++) {
        expect(receiver.open(senders[i]!.seal(body(i, round)))).toEqual(body(i, round));
        expect(derivedSince()).toBe(round * senders.length + i + 1);
        expect(receiver.rememberedSenders).toBe(1);
      }
    }
    // One sender's frames back to back: derived once, then found (fails if the entry is not kept or misread).
    const derived = derivedSince();
    for (let n = 0; n < 10; n++) expect(receiver.open(senders[7]!.seal(body(7, n)))).toEqual(body(7, n));
    expect(derivedSince()).toBe(derived + 1);
    // A frame that does not open (another key) derives a subkey but does not replace the remembered sender.
    const other = new FrameSealer(keyMaterial('another database'), topic);
    expect(() => receiver.open(other.seal(body(0, 0)))).toThrow(DecryptError);
    expect(derivedSince()).toBe(derived + 2);
    expect(receiver.open(senders[7]!.seal(body(7, 99)))).toEqual(body(7, 99));
    expect(derivedSince()).toBe(derived + 2);
    // The remembered sender's frame with one flipped byte still fails: the subkey is its own.
    const frame = senders[7]!.seal(body(7, 9));
    frame[frame.length - 1]! ^= 1;
    expect(() => receiver.open(frame)).toThrow(DecryptError);
    // Its own frames (a loop) open under its own subkey, without deriving one.
    expect(receiver.open(receiver.seal(body(1, 1)))).toEqual(body(1, 1));
    expect(derivedSince()).toBe(derived + 2);
    expect(receiver.open(senders[7]!.seal(body(7, 100)))).toEqual(body(7, 100));
    expect(derivedSince()).toBe(derived + 2);
    // A sealer under another key opens none of them.
    expect(() => other.open(senders[0]!.seal(body(0, 0)))).toThrow(DecryptError);
  });

  it('refuses tampered, truncated, foreign and unknown-version frames with ERR_DECRYPT', () => {
    const sealer = new FrameSealer(material, topic);
    const other = new FrameSealer(keyMaterial('another id'), topic);
    const otherTopic = new FrameSealer(material, deriveTopic('another topic'));
    const frame = sealer.seal(utf8ToBytes('payload'));
    const cases: Uint8Array[] = [frame.slice(0, SEAL_OVERHEAD - 1), other.seal(utf8ToBytes('x')), otherTopic.seal(utf8ToBytes('x'))];
    for (const at of [0, 1, 20, 30, frame.length - 1]) {
      const bad = frame.slice();
      bad[at]! ^= 1;
      cases.push(bad);
    }
    for (const bad of cases) {
      let caught: unknown;
      try {
        sealer.open(bad);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(DecryptError);
      expect((caught as DecryptError).code).toBe('ERR_DECRYPT');
    }
    // The good frame still opens after the failures (a failed prefix is not cached).
    expect(new TextDecoder().decode(sealer.open(frame))).toBe('payload');
  });
});

describe('sealers of several databases in one process (the per-frame scratch they share)', () => {
  it('interleaved, each seals and opens under its own key and topic, for either AEAD; the reference opens them', () => {
    for (const aead of [nobleAead, defaultAead()]) {
      const t2 = deriveTopic('seal-test-2');
      const m2 = keyMaterial('seal-test-2');
      const a1 = new FrameSealer(material, topic, aead);
      const b1 = new FrameSealer(material, topic, aead);
      const c1 = new FrameSealer(material, topic, aead);
      const a2 = new FrameSealer(m2, t2, aead);
      const b2 = new FrameSealer(m2, t2, aead);
      expect(a1.topicCopy()).toEqual(topic);
      expect(a2.topicCopy()).toEqual(t2);
      for (let i = 0; i < 4; i++) {
        const f1 = a1.seal(Uint8Array.of(1, i));
        const f2 = a2.seal(Uint8Array.of(2, i));
        expect([...referenceOpen(f1)]).toEqual([1, i]);
        expect([...referenceOpen(f2, m2, t2)]).toEqual([2, i]);
        expect([...b2.open(f2)]).toEqual([2, i]);
        expect([...b1.open(f1)]).toEqual([1, i]);
        expect(() => b2.open(f1)).toThrow(DecryptError); // another database's frame
        expect([...a1.open(f1)]).toEqual([1, i]); // its own, back through a loop
        // Two senders alternating at one receiver (each frame derives its sender's subkey again).
        const g1 = c1.seal(Uint8Array.of(3, i));
        expect([...b1.open(g1)]).toEqual([3, i]);
        expect([...b1.open(a1.seal(Uint8Array.of(4, i)))]).toEqual([4, i]);
        const h2 = b2.seal(Uint8Array.of(5, i));
        expect([...referenceOpen(h2, m2, t2)]).toEqual([5, i]);
        expect([...a2.open(h2)]).toEqual([5, i]);
      }
    }
  });
});
