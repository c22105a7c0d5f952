import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { DecryptError, MAILBOX_HEADER_BYTES, MAILBOX_SIGNED_BYTES, assertTopic, decodeMailboxHeader, encodeMailboxUnsigned, mailboxSigningBytes } from '@rhizome/core';
import type { MailboxHeader, MailboxOpCode, TopicHash } from '@rhizome/core';
import { NONCE_LENGTH, SEAL_OVERHEAD, SEAL_VERSION } from './seal.js';

/** HKDF salt of the mailbox signing key (Ed25519 seed); distinct from the sealing key's and the topic's. */
export const MAILBOX_SIGN_KEY_LABEL = 'rhizome/v1/mailbox-sign';
/** HKDF salt of the key that seals mailbox payloads. */
export const MAILBOX_SEAL_KEY_LABEL = 'rhizome/v1/mailbox-seal';
/** Prefix of the associated data of a sealed mailbox payload. */
export const MAILBOX_AAD_LABEL = 'rhizome/v1/mailbox';

/**
 * The keys of a database's mailbox, all derived from its key material (the secret, or the id):
 *
 * - signing seed = HKDF-SHA256(ikm = material, salt = `'rhizome/v1/mailbox-sign'`, info = topic, 32)
 *   — an Ed25519 key pair; the public key is the mailbox's address on a relay;
 * - sealing key = HKDF-SHA256(ikm = material, salt = `'rhizome/v1/mailbox-seal'`, info = topic, 32)
 *   — XChaCha20-Poly1305, AAD `'rhizome/v1/mailbox' ‖ 0x01 ‖ topic`.
 *
 * Whoever knows only the topic or the public key can neither derive the seed nor open payloads;
 * a payload sealed for the mailbox does not open as a live frame (other key, other AAD).
 */
export class MailboxKeys {
  readonly #material: Uint8Array;
  readonly #topic: TopicHash;
  #derived: { seed: Uint8Array; publicKey: Uint8Array; sealKey: Uint8Array; aad: Uint8Array } | null = null;

  /**
   * Keys are derived on first use (an Ed25519 key pair costs a scalar multiplication, and the
   * first one in a process builds noble's tables): a replica whose relay never offers a
   * mailbox never pays for them.
   */
  constructor(material: Uint8Array, topic: TopicHash) {
    assertTopic(topic);
    this.#material = material.slice();
    this.#topic = topic.slice();
  }

  /** The mailbox address: the Ed25519 public key. */
  get publicKey(): Uint8Array {
    return this.#keys().publicKey;
  }

  get #seed(): Uint8Array {
    return this.#keys().seed;
  }

  get #sealKey(): Uint8Array {
    return this.#keys().sealKey;
  }

  get #aad(): Uint8Array {
    return this.#keys().aad;
  }

  #keys(): { seed: Uint8Array; publicKey: Uint8Array; sealKey: Uint8Array; aad: Uint8Array } {
    if (this.#derived) return this.#derived;
    const material = this.#material;
    const topic = this.#topic;
    const seed = hkdf(sha256, material, utf8ToBytes(MAILBOX_SIGN_KEY_LABEL), topic, 32);
    const label = utf8ToBytes(MAILBOX_AAD_LABEL);
    const aad = new Uint8Array(label.length + 1 + topic.length);
    aad.set(label, 0);
    aad[label.length] = SEAL_VERSION;
    aad.set(topic, label.length + 1);
    this.#derived = { seed, publicKey: ed25519.getPublicKey(seed), sealKey: hkdf(sha256, material, utf8ToBytes(MAILBOX_SEAL_KEY_LABEL), topic, 32), aad };
    return this.#derived;
  }

  /** A signed 117-byte header for a sealed payload. */
  header(op: MailboxOpCode, counter: number, prev: number, payload: Uint8Array): Uint8Array {
    const unsigned = encodeMailboxUnsigned(op, counter, prev, payload);
    const signature = ed25519.sign(mailboxSigningBytes(this.publicKey, unsigned), this.#seed);
    const header = new Uint8Array(MAILBOX_HEADER_BYTES);
    header.set(unsigned, 0);
    header.set(signature, MAILBOX_SIGNED_BYTES);
    return header;
  }

  /** The decoded header if its signature verifies under this mailbox's key, else null. */
  verify(header: Uint8Array): MailboxHeader | null {
    const h = decodeMailboxHeader(header);
    if (h === null) return null;
    try {
      return ed25519.verify(h.signature, mailboxSigningBytes(this.publicKey, header), this.publicKey) ? h : null;
    } catch {
      return null;
    }
  }

  /** `version(1) ‖ nonce(24) ‖ ciphertext ‖ tag(16)` under the mailbox sealing key. */
  seal(plaintext: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_LENGTH);
    const sealed = xchacha20poly1305(this.#sealKey, nonce, this.#aad).encrypt(plaintext);
    const out = new Uint8Array(1 + NONCE_LENGTH + sealed.length);
    out[0] = SEAL_VERSION;
    out.set(nonce, 1);
    out.set(sealed, 1 + NONCE_LENGTH);
    return out;
  }

  /** Opens a sealed payload; throws {@link DecryptError}. */
  open(sealed: Uint8Array): Uint8Array {
    if (sealed.length < SEAL_OVERHEAD || sealed[0] !== SEAL_VERSION) throw new DecryptError('mailbox payload is not sealed');
    try {
      return xchacha20poly1305(this.#sealKey, sealed.subarray(1, 1 + NONCE_LENGTH), this.#aad).decrypt(sealed.subarray(1 + NONCE_LENGTH));
    } catch {
      throw new DecryptError('mailbox payload does not open');
    }
  }
}

/** SHA-256 of bytes (to check a payload against its header's digest). */
export function digestOf(bytes: Uint8Array): Uint8Array {
  return sha256(bytes);
}
