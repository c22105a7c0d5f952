import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { DecryptError, InvalidArgumentError, assertTopic } from '@rhizome/core';
import type { TopicHash } from '@rhizome/core';

/** Wire version byte of a sealed frame. */
export const SEAL_VERSION = 1;
/** HKDF salt of the sealing key; distinct from the topic's derivation (unkeyed BLAKE2b of the id). */
export const SEAL_KEY_LABEL = 'rhizome/v1/seal';
/** Prefix of the associated data: binds every frame to one database topic and wire version. */
export const SEAL_AAD_LABEL = 'rhizome/v1/frame';
/** Bytes of the random XChaCha20 nonce. */
export const NONCE_LENGTH = 24;
/** Bytes of the Poly1305 tag. */
export const TAG_LENGTH = 16;
/** Bytes a sealed frame adds to its plaintext: version, nonce, tag. */
export const SEAL_OVERHEAD = 1 + NONCE_LENGTH + TAG_LENGTH;

/** The bytes a database's sealing key is derived from: the secret if given, else the database id. */
export function keyMaterial(databaseId: string, secret?: string | Uint8Array): Uint8Array {
  if (secret === undefined) return utf8ToBytes(databaseId);
  if (typeof secret === 'string') {
    if (secret.length === 0) throw new InvalidArgumentError('secret must not be empty');
    return utf8ToBytes(secret);
  }
  if (secret instanceof Uint8Array) {
    if (secret.length === 0) throw new InvalidArgumentError('secret must not be empty');
    return secret.slice();
  }
  throw new InvalidArgumentError('secret must be a string or a Uint8Array');
}

/**
 * Seals and opens the frames of one database: XChaCha20-Poly1305 with a 256-bit key from
 * HKDF-SHA256(ikm = secret or database id, salt = `'rhizome/v1/seal'`, info = topic), a random
 * 24-byte nonce per frame, and associated data `'rhizome/v1/frame' || version || topic`.
 *
 * Whoever knows only the topic (relays, DHT nodes) can neither open nor forge frames, and a
 * frame sealed for one database does not open under another's topic even with the same secret.
 */
export class FrameSealer {
  /** Bytes a sealed frame adds to its plaintext. */
  readonly overhead = SEAL_OVERHEAD;
  readonly #key: Uint8Array;
  readonly #aad: Uint8Array;

  constructor(material: Uint8Array, topic: TopicHash) {
    assertTopic(topic);
    this.#key = hkdf(sha256, material, utf8ToBytes(SEAL_KEY_LABEL), topic, 32);
    const label = utf8ToBytes(SEAL_AAD_LABEL);
    this.#aad = new Uint8Array(label.length + 1 + topic.length);
    this.#aad.set(label, 0);
    this.#aad[label.length] = SEAL_VERSION;
    this.#aad.set(topic, label.length + 1);
  }

  /** `version(1) || nonce(24) || ciphertext || tag(16)`. */
  seal(plaintext: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_LENGTH);
    const sealed = xchacha20poly1305(this.#key, nonce, this.#aad).encrypt(plaintext);
    const frame = new Uint8Array(1 + NONCE_LENGTH + sealed.length);
    frame[0] = SEAL_VERSION;
    frame.set(nonce, 1);
    frame.set(sealed, 1 + NONCE_LENGTH);
    return frame;
  }

  /** The plaintext of a sealed frame; throws {@link DecryptError} if it does not open. */
  open(frame: Uint8Array): Uint8Array {
    if (frame.length < SEAL_OVERHEAD) throw new DecryptError(`frame of ${frame.length} bytes is shorter than the seal`);
    if (frame[0] !== SEAL_VERSION) throw new DecryptError(`unknown seal version ${frame[0]}`);
    const nonce = frame.subarray(1, 1 + NONCE_LENGTH);
    try {
      return xchacha20poly1305(this.#key, nonce, this.#aad).decrypt(frame.subarray(1 + NONCE_LENGTH));
    } catch {
      throw new DecryptError();
    }
  }
}
