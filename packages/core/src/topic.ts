import { blake2b } from '@noble/hashes/blake2.js';
import { hexToBytes, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { InvalidArgumentError, InvalidTopicError } from './errors.js';
import type { TopicHash } from './types.js';

/** Length in bytes of a {@link TopicHash}. */
export const TOPIC_LENGTH = 32;

/**
 * The public rendezvous topic of a database: unkeyed BLAKE2b with a 32-byte digest over the
 * UTF-8 bytes of the id (or over the bytes themselves when given a Uint8Array).
 *
 * Relays and DHT nodes see topics, so a guessable id gives a guessable topic: use
 * {@link generateDatabaseId} when the topic must stay private.
 *
 * @example
 * ```ts
 * topicToHex(deriveTopic('abc'))
 * // 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319'
 * ```
 */
export function deriveTopic(databaseId: string | Uint8Array): TopicHash {
  if (typeof databaseId === 'string') return blake2b(utf8ToBytes(databaseId), { dkLen: TOPIC_LENGTH });
  if (databaseId instanceof Uint8Array) return blake2b(databaseId, { dkLen: TOPIC_LENGTH });
  throw new InvalidArgumentError('databaseId must be a string or a Uint8Array');
}

/** Throws {@link InvalidTopicError} unless `topic` is a 32-byte Uint8Array. */
export function assertTopic(topic: unknown): asserts topic is TopicHash {
  if (!(topic instanceof Uint8Array)) throw new InvalidTopicError('topic must be a Uint8Array');
  if (topic.length !== TOPIC_LENGTH) {
    throw new InvalidTopicError(`topic must be ${TOPIC_LENGTH} bytes, got ${topic.length}`);
  }
}

/** Lower-case hex of a topic (64 characters). */
export function topicToHex(topic: TopicHash): string {
  assertTopic(topic);
  return flatHex(topic);
}

const HEX_DIGITS = '0123456789abcdef';

/**
 * Lowercase hex as ONE flat string. `bytesToHex` of @noble/hashes (and any `+=` loop) leaves a
 * rope of one piece per byte in V8 (~2 KiB for 32 bytes), kept for as long as the string lives;
 * transports and sessions keep topic hex strings as map keys for their whole life.
 */
export function flatHex(bytes: Uint8Array): string {
  const codes = new Array<number>(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    codes[2 * i] = HEX_DIGITS.charCodeAt(b >> 4);
    codes[2 * i + 1] = HEX_DIGITS.charCodeAt(b & 15);
  }
  return String.fromCharCode(...codes);
}

/** Parses 64 hex digits (either case) into a topic; anything else is an {@link InvalidTopicError}. */
export function topicFromHex(hex: string): TopicHash {
  if (typeof hex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new InvalidTopicError('topic hex must be exactly 64 hex digits');
  }
  return hexToBytes(hex.toLowerCase());
}

/** Constant-time-enough equality for two topics (topics are public; no secret timing). */
export function topicEquals(a: TopicHash, b: TopicHash): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Random bytes in a database id: 144 bits, above the 128 the contract asks for. */
const DATABASE_ID_BYTES = 18;

/**
 * A fresh database id: 144 random bits as URL-safe base64 (24 characters, `[A-Za-z0-9_-]`), never
 * starting with `-` (so a command line never takes it for an option).
 *
 * @example
 * ```ts
 * const db = await openDatabase({ id: generateDatabaseId(), path: 'notes.db' });
 * ```
 */
export function generateDatabaseId(): string {
  for (;;) {
    // btoa exists in browsers and Node alike; 18 bytes encode to 24 characters with no padding.
    const b64 = btoa(String.fromCharCode(...randomBytes(DATABASE_ID_BYTES)));
    const id = b64.replace(/\+/g, '-').replace(/\//g, '_');
    // Never a leading '-', which command lines take for an option (`rhizome put -x...`); drawing
    // again costs under 0.03 of the 144 bits.
    if (!id.startsWith('-')) return id;
  }
}
