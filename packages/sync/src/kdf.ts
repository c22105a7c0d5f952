/**
 * HKDF-SHA256 (RFC 5869) for the sealing key: OpenSSL's through `node:crypto` where it exists
 * (found with `process.getBuiltinModule`, so bundlers never see a `node:` import), else
 * `@noble/hashes`. Same bytes either way (`kdf.test.ts`); the native one makes a database's key
 * without the ~7 KiB of JavaScript hashing state per derivation.
 */
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';

interface NodeHkdf {
  hkdfSync(digest: string, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, keylen: number): ArrayBuffer;
}

let native: NodeHkdf | null | undefined;

function nodeHkdf(): NodeHkdf | null {
  if (native !== undefined) return native;
  native = null;
  try {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const crypto = proc?.getBuiltinModule?.('node:crypto') as Partial<NodeHkdf> | undefined;
    if (typeof crypto?.hkdfSync === 'function') native = crypto as NodeHkdf;
  } catch {
    // No usable node:crypto (a browser): noble.
  }
  return native;
}

/** HKDF-SHA256 of `ikm` with `salt` and `info`, `length` bytes. `implementation` picks one (tests). */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number, implementation?: 'node' | 'noble'): Uint8Array {
  const node = implementation === 'noble' ? null : nodeHkdf();
  if (implementation === 'node' && node === null) throw new Error('node:crypto hkdfSync is not available');
  // Node refuses an empty key (ikm); noble derives from it. Keys here are never empty, but keep one answer.
  if (node !== null && ikm.length > 0) return new Uint8Array(node.hkdfSync('sha256', ikm, salt, info, length));
  return hkdf(sha256, ikm, salt, info, length);
}
