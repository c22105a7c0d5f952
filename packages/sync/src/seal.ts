import { randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { DecryptError, InvalidArgumentError, assertTopic } from '@rhizome/core';
import type { TopicHash } from '@rhizome/core';
import { defaultAead, hchacha20 } from './aead.js';
import { hkdfSha256 } from './kdf.js';
import type { ChaChaPolyAead } from './aead.js';

/** Wire version byte of a sealed frame. */
export const SEAL_VERSION = 1;
/** HKDF salt of the sealing key; distinct from the topic's derivation (unkeyed BLAKE2b of the id). */
export const SEAL_KEY_LABEL = 'rhizome/v1/seal';
/** Prefix of the associated data: binds every frame to one database topic and wire version. */
export const SEAL_AAD_LABEL = 'rhizome/v1/frame';
/** Bytes of the XChaCha20 nonce (a per-sealer random prefix and a frame counter). */
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

/** Bytes of the per-sealer nonce prefix (the HChaCha20 input). */
export const NONCE_PREFIX_LENGTH = 16;

/**
 * Seals and opens the frames of one database: XChaCha20-Poly1305 with a 256-bit key from
 * HKDF-SHA256(ikm = secret or database id, salt = `'rhizome/v1/seal'`, info = topic), and
 * associated data `'rhizome/v1/frame' || version || topic`.
 *
 * Nonces: each sealer draws a random 16-byte prefix once and counts frames in the last 8 bytes
 * (`nonce = prefix || counter`, big-endian), so no randomness is drawn per frame and a nonce
 * never repeats: not within a sealer (the counter), not across sealers that share the key (two
 * replicas, or two processes of one replica, draw the same 128-bit prefix with probability
 * 2^-128 per pair). Since the prefix is fixed, the XChaCha20 subkey `HChaCha20(key, prefix)` is
 * computed once and every frame is plain ChaCha20-Poly1305 under it (native in Node). Openers
 * cache the subkey per sender prefix. The bytes on the wire are exactly XChaCha20-Poly1305's, so
 * frames sealed by older versions (random nonces) open, and theirs open here.
 *
 * Whoever knows only the topic (relays, DHT nodes) can neither open nor forge frames, and a
 * frame sealed for one database does not open under another's topic even with the same secret.
 */
export class FrameSealer {
  /** Bytes a sealed frame adds to its plaintext (a getter: not a field of every sealer). */
  get overhead(): number {
    return SEAL_OVERHEAD;
  }
  /**
   * The sealer's bytes — key, nonce prefix, subkey, topic ({@link KEY_AT} ...) — as one flat string
   * of one char per byte: ~0.14 KiB of heap, where a `Uint8Array` of them is ~0.2 KiB of heap plus
   * its buffer's 0.13 KiB outside it (an idle database holds a sealer for its whole life). A frame
   * copies the subkey and the topic into the process's scratch buffers (see {@link SCRATCH}: the
   * key, nonces and associated data each call passes to the cipher): sealing and opening are
   * synchronous, so no two calls share them at once.
   */
  readonly #bytes: string;
  readonly #aead: ChaChaPolyAead;
  #counterHigh = 0;
  #counterLow = 0;
  /**
   * Opening: the subkey of the last other sender whose frame opened, as 48 chars of one char per
   * byte — its prefix (16) then its subkey (32) —, copied into the scratch key to use; null until
   * the first. One entry per database, not one per sender: an idle replica holds a sealer per
   * database and hears a ping and a pong from every peer every 5 s, and a frame from another
   * sender than the last derives its subkey again (HChaCha20, one ChaCha block: ~1–3 µs), while
   * a stream from one peer (a sync, a burst of updates) finds it every time. (Until Session 12 a
   * list of every sender's entry, 48 B per remote peer, and a Map past 16 senders.)
   */
  #lastSender: string | null = null;
  /** @internal Subkeys derived to open frames, by every sealer of the process (a frame from a sender other than the last): a counter of the class, not a field of each sealer. */
  static subkeysDerived = 0;
  constructor(material: Uint8Array, topic: TopicHash, aead: ChaChaPolyAead = defaultAead()) {
    assertTopic(topic);
    const bytes = new Uint8Array(BYTES_LENGTH);
    bytes.set(hkdfSha256(material, utf8ToBytes(SEAL_KEY_LABEL), topic, 32), KEY_AT);
    // Drawn from the CSPRNG directly, not through core's randomId pool: a pool copied by a startup
    // snapshot would give two processes one prefix under one key (keystream reuse).
    bytes.set(randomBytes(NONCE_PREFIX_LENGTH), PREFIX_AT);
    bytes.set(hchacha20(bytes.subarray(KEY_AT, KEY_AT + 32), bytes.subarray(PREFIX_AT, PREFIX_AT + NONCE_PREFIX_LENGTH)), SUBKEY_AT);
    bytes.set(topic, TOPIC_AT);
    this.#bytes = prefixKey(bytes, 0, BYTES_LENGTH);
    this.#aead = aead;
  }

  /** The database key, in the process's scratch (only a new sender's first frame needs it; copied unless this sealer's is there already). */
  private key(): Uint8Array {
    const bytes = this.#bytes;
    if (scratchDbKeyOf !== bytes) {
      charsToBytes(bytes, KEY_AT, 32, SCRATCH.dbKey, 0);
      scratchDbKeyOf = bytes;
    }
    return SCRATCH.dbKey;
  }

  /** A copy of the topic this sealer binds its frames to. */
  topicCopy(): TopicHash {
    return charsToBytes(this.#bytes, TOPIC_AT, 32, new Uint8Array(32), 0);
  }

  /** @internal Senders whose subkeys are remembered: 0 before the first other sender's frame opened, then 1. */
  get rememberedSenders(): number {
    return this.#lastSender === null ? 0 : 1;
  }

  /** Which ChaCha20-Poly1305 implementation seals (`'node'` or `'noble'`). */
  get implementation(): string {
    return this.#aead.name;
  }

  /** `version(1) || nonce(24) || ciphertext || tag(16)`, nonce = this sealer's prefix || counter. */
  seal(plaintext: Uint8Array): Uint8Array {
    // 2^64 frames are out of reach; the high word just carries.
    if (++this.#counterLow > 0xffffffff) {
      this.#counterLow = 0;
      this.#counterHigh++;
    }
    const nonce = SCRATCH.nonce;
    nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0;
    writeU32(nonce, 4, this.#counterHigh);
    writeU32(nonce, 8, this.#counterLow);
    const frame = new Uint8Array(SEAL_OVERHEAD + plaintext.length);
    frame[0] = SEAL_VERSION;
    const bytes = this.#bytes;
    charsToBytes(bytes, PREFIX_AT, NONCE_PREFIX_LENGTH, frame, 1);
    for (let i = 4; i < 12; i++) frame[1 + NONCE_PREFIX_LENGTH - 4 + i] = nonce[i]!;
    this.#aead.sealInto(scratchKey(bytes, SUBKEY_AT), nonce, this.aad(), plaintext, frame, 1 + NONCE_LENGTH);
    return frame;
  }

  /** The plaintext of a sealed frame; throws {@link DecryptError} if it does not open. */
  open(frame: Uint8Array): Uint8Array {
    if (frame.length < SEAL_OVERHEAD) throw new DecryptError(`frame of ${frame.length} bytes is shorter than the seal`);
    if (frame[0] !== SEAL_VERSION) throw new DecryptError(`unknown seal version ${frame[0]}`);
    const bytes = this.#bytes;
    let subkey: Uint8Array;
    let fresh: Uint8Array | null = null;
    // A sender's frame is matched by comparing its prefix bytes in place: no key string per frame.
    // Its own frames (back through a loop) open under its own subkey.
    if (startsWithPrefix(bytes, frame, PREFIX_AT)) subkey = scratchKey(bytes, SUBKEY_AT);
    else {
      const last = this.#lastSender;
      if (last !== null && startsWithPrefix(last, frame, 0)) subkey = scratchKey(last, NONCE_PREFIX_LENGTH);
      else {
        FrameSealer.subkeysDerived++;
        subkey = fresh = hchacha20(this.key(), frame.subarray(1, 1 + NONCE_PREFIX_LENGTH));
      }
    }
    const nonce = SCRATCH.openNonce;
    nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0;
    nonce.set(frame.subarray(1 + NONCE_PREFIX_LENGTH, 1 + NONCE_LENGTH), 4);
    const plain = this.#aead.open(subkey, nonce, this.aad(), frame.subarray(1 + NONCE_LENGTH));
    // Only a sender whose frame opened is remembered, so garbage cannot replace it.
    if (fresh !== null) this.remember(frame, fresh);
    return plain;
  }

  /**
   * The associated data, `'rhizome/v1/frame' || version || topic`, in the process's scratch (label
   * and version are there already; the topic is copied unless this sealer's is there from its
   * previous frame).
   */
  private aad(): Uint8Array {
    const bytes = this.#bytes;
    if (scratchTopicOf !== bytes) {
      charsToBytes(bytes, TOPIC_AT, 32, SCRATCH.aad, AAD_TOPIC_AT);
      scratchTopicOf = bytes;
    }
    return SCRATCH.aad;
  }

  /** Remembers the subkey of the sender of `frame` (in place of the last one). */
  private remember(frame: Uint8Array, subkey: Uint8Array): void {
    // Built in the process's scratch (synchronous, like seal and open): no buffer per new sender.
    const entry = SCRATCH.entry;
    for (let i = 0; i < NONCE_PREFIX_LENGTH; i++) entry[i] = frame[1 + i]!;
    for (let i = 0; i < 32; i++) entry[NONCE_PREFIX_LENGTH + i] = subkey[i]!;
    this.#lastSender = prefixKey(entry, 0, ENTRY_LENGTH);
  }
}

/** Offsets in a sealer's bytes: key, nonce prefix, subkey, topic. */
const KEY_AT = 0;
const PREFIX_AT = 32;
const SUBKEY_AT = PREFIX_AT + NONCE_PREFIX_LENGTH;
const TOPIC_AT = SUBKEY_AT + 32;
const BYTES_LENGTH = TOPIC_AT + 32;

/** The associated data's label and version, then (at {@link AAD_TOPIC_AT}) the topic. */
const AAD_HEAD = utf8ToBytes(SEAL_AAD_LABEL);
const AAD_TOPIC_AT = AAD_HEAD.length + 1;

/**
 * Per-frame scratch shared by every sealer of the process: the 12-byte ChaCha20 nonces (4 zero
 * bytes and the 8-byte frame counter, big-endian) for sealing and opening, the subkey a frame is
 * sealed or opened under, the associated data (label and version written once, the sealer's
 * topic per call), a new sender's entry (prefix then subkey) while its string is made, and the
 * database key a new sender's subkey is derived from. Only used inside one synchronous seal() or
 * open() call.
 */
const SCRATCH = (() => {
  const buffer = new Uint8Array(12 + 12 + 32 + NONCE_PREFIX_LENGTH + 32 + 32 + AAD_TOPIC_AT + 32);
  const aad = buffer.subarray(136);
  aad.set(AAD_HEAD, 0);
  aad[AAD_HEAD.length] = SEAL_VERSION;
  return { nonce: buffer.subarray(0, 12), openNonce: buffer.subarray(12, 24), key: buffer.subarray(24, 56), entry: buffer.subarray(56, 104), dbKey: buffer.subarray(104, 136), aad };
})();

/**
 * Whose key and topic the scratch holds (the string and offset they were copied from): a sealer
 * that seals again, or a sender whose frames keep coming, finds them there and copies nothing.
 * Only {@link scratchKey}, `FrameSealer.aad` and `FrameSealer.key` write these parts of the scratch.
 */
let scratchKeyOf: string | null = null;
let scratchKeyAt = -1;
let scratchTopicOf: string | null = null;
let scratchDbKeyOf: string | null = null;

/** The 32-byte key held as chars of `text` from `at`, in the scratch key buffer. */
function scratchKey(text: string, at: number): Uint8Array {
  if (scratchKeyOf !== text || scratchKeyAt !== at) {
    charsToBytes(text, at, 32, SCRATCH.key, 0);
    scratchKeyOf = text;
    scratchKeyAt = at;
  }
  return SCRATCH.key;
}

/** Writes `length` chars of `text` from `at` (one byte each) into `out` at `offset`; returns `out`. */
function charsToBytes(text: string, at: number, length: number, out: Uint8Array, offset: number): Uint8Array {
  for (let i = 0; i < length; i++) out[offset + i] = text.charCodeAt(at + i);
  return out;
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}

/** Chars of a remembered entry: the sender's prefix then its subkey. */
const ENTRY_LENGTH = NONCE_PREFIX_LENGTH + 32;

/** True if `text` (one char per byte) holds the nonce prefix of `frame` (its bytes 1..16) from `at`. */
function startsWithPrefix(text: string, frame: Uint8Array, at: number): boolean {
  for (let i = 0; i < NONCE_PREFIX_LENGTH; i++) if (text.charCodeAt(at + i) !== frame[1 + i]) return false;
  return true;
}

/** `length` bytes from `at` as one flat string of one char per byte (a `+=` loop would leave a rope). */
function prefixKey(bytes: Uint8Array, at: number, length = NONCE_PREFIX_LENGTH): string {
  return String.fromCharCode.apply(null, bytes.subarray(at, at + length) as unknown as number[]);
}
