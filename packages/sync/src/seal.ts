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
  /** Bytes a sealed frame adds to its plaintext. */
  readonly overhead = SEAL_OVERHEAD;
  // One buffer per sealer (key, nonce prefix, subkey, associated data) and no views of it kept:
  // an idle database holds a sealer, and each Uint8Array view is ~100 B of heap. The views a
  // frame needs are made per call (a sealed frame costs a cipher object anyway), and the
  // per-frame scratch (nonces, an opening subkey) is one buffer per process (see SCRATCH):
  // sealing and opening are synchronous, so no two calls share it at once.
  readonly #slab: Uint8Array;
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
  /** This sealer's own prefix as a cache key (its frames may come back through a loop). */
  readonly #ownPrefix: string;

  constructor(material: Uint8Array, topic: TopicHash, aead: ChaChaPolyAead = defaultAead()) {
    assertTopic(topic);
    const label = utf8ToBytes(SEAL_AAD_LABEL);
    const slab = (this.#slab = new Uint8Array(AAD_AT + label.length + 1 + topic.length));
    slab.set(hkdfSha256(material, utf8ToBytes(SEAL_KEY_LABEL), topic, 32), KEY_AT);
    // Drawn from the CSPRNG directly, not through core's randomId pool: a pool copied by a startup
    // snapshot would give two processes one prefix under one key (keystream reuse).
    slab.set(randomBytes(NONCE_PREFIX_LENGTH), PREFIX_AT);
    slab.set(hchacha20(this.#key(), slab.subarray(PREFIX_AT, PREFIX_AT + NONCE_PREFIX_LENGTH)), SUBKEY_AT);
    slab.set(label, AAD_AT);
    slab[AAD_AT + label.length] = SEAL_VERSION;
    slab.set(topic, AAD_AT + label.length + 1);
    this.#aead = aead;
    this.#ownPrefix = prefixKey(slab, PREFIX_AT);
  }

  /** The database key (a view made when needed: only a new sender's first frame needs it). */
  #key(): Uint8Array {
    return this.#slab.subarray(KEY_AT, KEY_AT + 32);
  }

  /** A copy of the topic this sealer binds its frames to. */
  topicCopy(): TopicHash {
    return this.#slab.slice(this.#slab.length - 32);
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
    const slab = this.#slab;
    for (let i = 0; i < NONCE_PREFIX_LENGTH; i++) frame[1 + i] = slab[PREFIX_AT + i]!;
    for (let i = 4; i < 12; i++) frame[1 + NONCE_PREFIX_LENGTH - 4 + i] = nonce[i]!;
    this.#aead.sealInto(slab.subarray(SUBKEY_AT, SUBKEY_AT + 32), nonce, slab.subarray(AAD_AT), plaintext, frame, 1 + NONCE_LENGTH);
    return frame;
  }

  /** The plaintext of a sealed frame; throws {@link DecryptError} if it does not open. */
  open(frame: Uint8Array): Uint8Array {
    if (frame.length < SEAL_OVERHEAD) throw new DecryptError(`frame of ${frame.length} bytes is shorter than the seal`);
    if (frame[0] !== SEAL_VERSION) throw new DecryptError(`unknown seal version ${frame[0]}`);
    const slab = this.#slab;
    let subkey: Uint8Array;
    let fresh: Uint8Array | null = null;
    // The remembered sender's frame is matched by comparing its prefix bytes in place: no key
    // string per frame.
    if (startsWithPrefix(this.#ownPrefix, frame)) subkey = slab.subarray(SUBKEY_AT, SUBKEY_AT + 32);
    else {
      const last = this.#lastSender;
      if (last !== null && startsWithPrefix(last, frame)) {
        subkey = SCRATCH.openKey;
        for (let i = 0; i < 32; i++) subkey[i] = last.charCodeAt(NONCE_PREFIX_LENGTH + i);
      } else {
        FrameSealer.subkeysDerived++;
        subkey = fresh = hchacha20(this.#key(), frame.subarray(1, 1 + NONCE_PREFIX_LENGTH));
      }
    }
    const nonce = SCRATCH.openNonce;
    nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0;
    nonce.set(frame.subarray(1 + NONCE_PREFIX_LENGTH, 1 + NONCE_LENGTH), 4);
    const plain = this.#aead.open(subkey, nonce, slab.subarray(AAD_AT), frame.subarray(1 + NONCE_LENGTH));
    // Only a sender whose frame opened is remembered, so garbage cannot replace it.
    if (fresh !== null) this.#remember(frame, fresh);
    return plain;
  }

  /** Remembers the subkey of the sender of `frame` (in place of the last one). */
  #remember(frame: Uint8Array, subkey: Uint8Array): void {
    // Built in the process's scratch (synchronous, like seal and open): no buffer per new sender.
    const entry = SCRATCH.entry;
    for (let i = 0; i < NONCE_PREFIX_LENGTH; i++) entry[i] = frame[1 + i]!;
    for (let i = 0; i < 32; i++) entry[NONCE_PREFIX_LENGTH + i] = subkey[i]!;
    this.#lastSender = prefixKey(entry, 0, ENTRY_LENGTH);
  }
}

/**
 * Per-frame scratch shared by every sealer of the process: the 12-byte ChaCha20 nonces (4 zero
 * bytes and the 8-byte frame counter, big-endian) for sealing and opening, the subkey of a
 * cached sender, and a new sender's entry (prefix then subkey) while its string is made. Only used inside one synchronous seal() or open() call.
 */
const SCRATCH = (() => {
  const buffer = new Uint8Array(12 + 12 + 32 + NONCE_PREFIX_LENGTH + 32);
  return { nonce: buffer.subarray(0, 12), openNonce: buffer.subarray(12, 24), openKey: buffer.subarray(24, 56), entry: buffer.subarray(56) };
})();

/** Offsets in a sealer's slab: key, nonce prefix, subkey, then the associated data to the end. */
const KEY_AT = 0;
const PREFIX_AT = 32;
const SUBKEY_AT = PREFIX_AT + NONCE_PREFIX_LENGTH;
const AAD_AT = SUBKEY_AT + 32;

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}

/** Chars of a remembered entry: the sender's prefix then its subkey. */
const ENTRY_LENGTH = NONCE_PREFIX_LENGTH + 32;

/** True if `text` (one char per byte) starts with the nonce prefix of `frame` (its bytes 1..16). */
function startsWithPrefix(text: string, frame: Uint8Array): boolean {
  for (let i = 0; i < NONCE_PREFIX_LENGTH; i++) if (text.charCodeAt(i) !== frame[1 + i]) return false;
  return true;
}

/** `length` bytes from `at` as one flat string of one char per byte (a `+=` loop would leave a rope). */
function prefixKey(bytes: Uint8Array, at: number, length = NONCE_PREFIX_LENGTH): string {
  return String.fromCharCode.apply(null, bytes.subarray(at, at + length) as unknown as number[]);
}
