/**
 * The AEAD under the seal: ChaCha20-Poly1305 (RFC 8439, 12-byte nonce) and HChaCha20 (the
 * subkey step of XChaCha20, draft-irtf-cfrg-xchacha §2.2).
 *
 * XChaCha20-Poly1305 with nonce `n` (24 bytes) is ChaCha20-Poly1305 under the subkey
 * `HChaCha20(key, n[0..16])` with the nonce `0x00000000 || n[16..24]`. A sealer that keeps
 * `n[0..16]` fixed computes the subkey once and then runs plain ChaCha20-Poly1305 per frame,
 * which Node has natively (OpenSSL): about 4 µs for a small frame against 20 µs for the
 * JavaScript cipher plus a random nonce. Elsewhere (browsers) `@noble/ciphers` does the same
 * computation; both produce identical bytes (a test checks them against each other and against
 * `xchacha20poly1305`).
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { DecryptError } from '@rhizome/core';

/** ChaCha20-Poly1305 with a 32-byte key and a 12-byte nonce; the tag is 16 bytes. */
export interface ChaChaPolyAead {
  /** Which implementation: `'node'` (OpenSSL) or `'noble'` (JavaScript). */
  readonly name: string;
  /** Writes `ciphertext || tag` of `plaintext` into `out` at `offset` (room: plaintext + 16). */
  sealInto(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void;
  /** The plaintext of `ciphertext || tag`; throws {@link DecryptError} when the tag does not verify. */
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array;
}

const TAG = 16;

/** `@noble/ciphers`: works everywhere. */
export const nobleAead: ChaChaPolyAead = {
  name: 'noble',
  sealInto(key, nonce, aad, plaintext, out, offset) {
    chacha20poly1305(key, nonce, aad).encrypt(plaintext, out.subarray(offset, offset + plaintext.length + TAG));
  },
  open(key, nonce, aad, sealed) {
    if (sealed.length < TAG) throw new DecryptError();
    try {
      return chacha20poly1305(key, nonce, aad).decrypt(sealed);
    } catch {
      throw new DecryptError();
    }
  },
};

/** The parts of `node:crypto` used here (typed locally: this module must load in browsers). */
interface NodeCipher {
  setAAD(aad: Uint8Array): unknown;
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
  getAuthTag(): Uint8Array;
}
interface NodeDecipher {
  setAAD(aad: Uint8Array): unknown;
  setAuthTag(tag: Uint8Array): unknown;
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
}
interface NodeCrypto {
  createCipheriv(algorithm: string, key: Uint8Array, iv: Uint8Array, options: { authTagLength: number }): NodeCipher;
  createDecipheriv(algorithm: string, key: Uint8Array, iv: Uint8Array, options: { authTagLength: number }): NodeDecipher;
  getCiphers(): string[];
}

/** A plain Uint8Array view of a Node Buffer (Buffer#slice does not copy; callers expect it to). */
function plain(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** OpenSSL's ChaCha20-Poly1305 through `node:crypto`. */
export function nodeAead(crypto: NodeCrypto): ChaChaPolyAead {
  const options = { authTagLength: TAG };
  return {
    name: 'node',
    sealInto(key, nonce, aad, plaintext, out, offset) {
      const cipher = crypto.createCipheriv('chacha20-poly1305', key, nonce, options);
      cipher.setAAD(aad);
      const body = cipher.update(plaintext);
      out.set(body, offset);
      const rest = cipher.final();
      if (rest.length > 0) out.set(rest, offset + body.length);
      out.set(cipher.getAuthTag(), offset + plaintext.length);
    },
    open(key, nonce, aad, sealed) {
      if (sealed.length < TAG) throw new DecryptError();
      const n = sealed.length - TAG;
      try {
        const decipher = crypto.createDecipheriv('chacha20-poly1305', key, nonce, options);
        decipher.setAAD(aad);
        decipher.setAuthTag(sealed.subarray(n));
        const body = decipher.update(sealed.subarray(0, n));
        const rest = decipher.final();
        return plain(rest.length === 0 ? body : concat(body, rest));
      } catch {
        throw new DecryptError();
      }
    },
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

let detected: ChaChaPolyAead | undefined;

/**
 * The fastest ChaCha20-Poly1305 this platform has: OpenSSL's in Node (found with
 * `process.getBuiltinModule`, so bundlers never see a `node:` import), else `@noble/ciphers`.
 */
export function defaultAead(): ChaChaPolyAead {
  if (detected) return detected;
  detected = nobleAead;
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    const crypto = proc?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
    if (crypto && crypto.getCiphers().includes('chacha20-poly1305')) detected = nodeAead(crypto);
  } catch {
    // No usable node:crypto (a browser, or a Node built without ChaCha20): stay with noble.
  }
  return detected;
}

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574];

function readLE(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/**
 * HChaCha20: a 32-byte subkey from a 32-byte key and a 16-byte input (the first 16 bytes of an
 * XChaCha20 nonce). 20 ChaCha rounds without the final addition; output words 0–3 and 12–15.
 */
export function hchacha20(key: Uint8Array, input: Uint8Array): Uint8Array {
  if (key.length !== 32 || input.length !== 16) throw new RangeError('hchacha20 needs a 32-byte key and a 16-byte input');
  // One state array per process (the function is synchronous), no closures per call.
  const x = HCHACHA_STATE;
  for (let i = 0; i < 4; i++) x[i] = SIGMA[i]!;
  for (let i = 0; i < 8; i++) x[4 + i] = readLE(key, 4 * i);
  for (let i = 0; i < 4; i++) x[12 + i] = readLE(input, 4 * i);
  for (let round = 0; round < 10; round++) {
    qr(x, 0, 4, 8, 12);
    qr(x, 1, 5, 9, 13);
    qr(x, 2, 6, 10, 14);
    qr(x, 3, 7, 11, 15);
    qr(x, 0, 5, 10, 15);
    qr(x, 1, 6, 11, 12);
    qr(x, 2, 7, 8, 13);
    qr(x, 3, 4, 9, 14);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const w = x[i < 4 ? i : i + 8]!;
    out[4 * i] = w & 0xff;
    out[4 * i + 1] = (w >>> 8) & 0xff;
    out[4 * i + 2] = (w >>> 16) & 0xff;
    out[4 * i + 3] = (w >>> 24) & 0xff;
  }
  x.fill(0);
  return out;
}

const HCHACHA_STATE = new Uint32Array(16);

function rotl(v: number, c: number): number {
  return (v << c) | (v >>> (32 - c));
}

/** The ChaCha quarter round on words a, b, c, d of `x`. */
function qr(x: Uint32Array, a: number, b: number, c: number, d: number): void {
  x[a] = (x[a]! + x[b]!) | 0;
  x[d] = rotl(x[d]! ^ x[a]!, 16);
  x[c] = (x[c]! + x[d]!) | 0;
  x[b] = rotl(x[b]! ^ x[c]!, 12);
  x[a] = (x[a]! + x[b]!) | 0;
  x[d] = rotl(x[d]! ^ x[a]!, 8);
  x[c] = (x[c]! + x[d]!) | 0;
  x[b] = rotl(x[b]! ^ x[c]!, 7);
}
