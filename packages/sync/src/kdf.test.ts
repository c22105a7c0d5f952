import { describe, expect, it } from 'vitest';
import { randomBytes } from '@noble/hashes/utils.js';
import { hkdfSha256 } from './kdf.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const from = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

describe('hkdfSha256', () => {
  it("matches RFC 5869's test case 1 with OpenSSL's and noble's implementation, and they agree on random inputs", () => {
    const ikm = new Uint8Array(22).fill(0x0b);
    const salt = from('000102030405060708090a0b0c');
    const info = from('f0f1f2f3f4f5f6f7f8f9');
    const okm = '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865';
    expect(hex(hkdfSha256(ikm, salt, info, 42, 'node'))).toBe(okm);
    expect(hex(hkdfSha256(ikm, salt, info, 42, 'noble'))).toBe(okm);
    expect(hex(hkdfSha256(ikm, salt, info, 42))).toBe(okm);
    for (let i = 0; i < 200; i++) {
      const [k, s, n] = [randomBytes(1 + (i % 70)), randomBytes(i % 40), randomBytes(32)];
      expect(hex(hkdfSha256(k, s, n, 32, 'node'))).toBe(hex(hkdfSha256(k, s, n, 32, 'noble')));
    }
  });
});
