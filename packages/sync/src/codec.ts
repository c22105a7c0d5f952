/**
 * Yjs's v1 update encoding with short ASCII strings read and written in JavaScript.
 *
 * lib0 (0.2.x) reads every string of an update with one `TextDecoder.decode` call and writes it
 * with one `TextEncoder.encodeInto` call, however short. In Node such a call costs about 0.1 µs;
 * in Chromium each is a Blink binding call of about 0.5 µs. A 100,000-node document holds about
 * 500,000 strings (node ids, field names, short values), so a page spent about a quarter of a
 * second more than Node decoding the step 2 of a cold sync, and again encoding its compaction
 * snapshot (BENCHMARKS.md § Browser).
 *
 * Yjs takes the struct decoder and encoder as parameters (`applyUpdateV2(doc, update, origin,
 * Decoder)`, `encodeStateAsUpdateV2(doc, stateVector, encoder)`), so this module passes
 * subclasses of its v1 classes whose string methods handle strings of up to
 * {@link SHORT_STRING} ASCII characters byte by byte, and hand everything else to lib0 as before.
 * The bytes are exactly Yjs's v1 encoding (UTF-8 of ASCII is ASCII), so the wire, the stores and
 * older peers see no difference; `codec.test.ts` compares the output with Yjs's own byte for
 * byte. Malformed input fails as it does in Yjs (a non-ASCII string still goes through lib0's
 * fatal UTF-8 decoder).
 */
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { FastPath } from './yjs-guard.js';

/** Longest string (in bytes when reading, UTF-16 units when writing) handled without lib0's native call. */
export const SHORT_STRING = 64;

/** lib0's any-encoding type tags (see lib0/encoding `writeAny`). */
const ANY_STRING = 119;
const ANY_OBJECT = 118;
const ANY_ARRAY = 117;

/** Slots of a decoder's cache of recent short strings (a power of two). */
const RECENT_SLOTS = 1024;
/** Smallest update whose decoder keeps that cache (below, the cache costs more than it saves). */
const RECENT_MIN_BYTES = 16 * 1024;

/**
 * Reads a varString: short ASCII in JavaScript, anything else through lib0. Short strings are
 * looked up in `recent` (direct-mapped by a hash of their bytes) first: field names repeat once
 * per node, and a repeated name then costs no new string (less garbage, and the Map lookups Yjs
 * does with it reuse the string's cached hash).
 */
function readString(decoder: decoding.Decoder, recent: Array<string | undefined> | null): string {
  const start = decoder.pos;
  const length = decoding.readVarUint(decoder);
  const arr = decoder.arr;
  const from = decoder.pos;
  const end = from + length;
  if (length <= SHORT_STRING && end <= arr.length) {
    let hash = length;
    let i = from;
    for (; i < end; i++) {
      const b = arr[i]!;
      if (b > 0x7f) break;
      hash = (Math.imul(hash, 31) + b) | 0;
    }
    if (i === end) {
      decoder.pos = end;
      if (recent === null) return asciiString(arr, from, length);
      const slot = hash & (RECENT_SLOTS - 1);
      const hit = recent[slot];
      if (hit !== undefined && hit.length === length) {
        let k = 0;
        while (k < length && hit.charCodeAt(k) === arr[from + k]) k++;
        if (k === length) return hit;
      }
      const s = asciiString(arr, from, length);
      recent[slot] = s;
      return s;
    }
  }
  decoder.pos = start;
  return decoding.readVarString(decoder);
}

/**
 * The string of the `length` ASCII bytes of `arr` from `from`, made at once: one
 * `String.fromCharCode` call with the bytes as arguments for up to 8 (node ids, field names),
 * one per 8 bytes above. Adding one character at a time (`s += ...`) made a new string per byte
 * (short strings are flat copies): 200,000 keys of a 100,000-node step 2 left ~1.4 million
 * dead strings for the scavenger (BENCHMARKS.md § Issue 12, Session 11 (cold)).
 */
function asciiString(arr: Uint8Array, from: number, length: number): string {
  switch (length) {
    case 0:
      return '';
    case 1:
      return String.fromCharCode(arr[from]!);
    case 2:
      return String.fromCharCode(arr[from]!, arr[from + 1]!);
    case 3:
      return String.fromCharCode(arr[from]!, arr[from + 1]!, arr[from + 2]!);
    case 4:
      return String.fromCharCode(arr[from]!, arr[from + 1]!, arr[from + 2]!, arr[from + 3]!);
    case 5:
      return String.fromCharCode(arr[from]!, arr[from + 1]!, arr[from + 2]!, arr[from + 3]!, arr[from + 4]!);
    case 6:
      return String.fromCharCode(arr[from]!, arr[from + 1]!, arr[from + 2]!, arr[from + 3]!, arr[from + 4]!, arr[from + 5]!);
    case 7:
      return String.fromCharCode(arr[from]!, arr[from + 1]!, arr[from + 2]!, arr[from + 3]!, arr[from + 4]!, arr[from + 5]!, arr[from + 6]!);
    case 8:
      return String.fromCharCode(arr[from]!, arr[from + 1]!, arr[from + 2]!, arr[from + 3]!, arr[from + 4]!, arr[from + 5]!, arr[from + 6]!, arr[from + 7]!);
    default: {
      let s = asciiString(arr, from, 8);
      for (let at = from + 8, end = from + length; at < end; at += 8) s += asciiString(arr, at, Math.min(8, end - at));
      return s;
    }
  }
}

/** lib0's `readAny`, with strings and object keys read by {@link readString}. */
function readAny(decoder: decoding.Decoder, recent: Array<string | undefined> | null): unknown {
  const tag = decoder.arr[decoder.pos];
  if (tag === ANY_STRING) {
    decoder.pos++;
    return readString(decoder, recent);
  }
  if (tag === ANY_OBJECT) {
    decoder.pos++;
    const length = decoding.readVarUint(decoder);
    const obj: Record<string, unknown> = {};
    for (let i = 0; i < length; i++) {
      const key = readString(decoder, recent);
      obj[key] = readAny(decoder, recent);
    }
    return obj;
  }
  if (tag === ANY_ARRAY) {
    decoder.pos++;
    const length = decoding.readVarUint(decoder);
    const out: unknown[] = [];
    for (let i = 0; i < length; i++) out.push(readAny(decoder, recent));
    return out;
  }
  return decoding.readAny(decoder);
}

/** True if `s` is at most {@link SHORT_STRING} units, all ASCII. */
function isShortAscii(s: string): boolean {
  const n = s.length;
  if (n > SHORT_STRING) return false;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * Writes a varString: short ASCII byte by byte, anything else through lib0. When the encoder's
 * current buffer has room, the length byte (a var-uint below 128 is one byte) and the characters
 * go straight into it, and a non-ASCII character found on the way rewinds to lib0's path.
 */
function writeString(encoder: encoding.Encoder, s: string): void {
  const n = s.length;
  if (n <= SHORT_STRING) {
    const buf = encoder.cbuf;
    const at = encoder.cpos;
    if (buf.length - at > n) {
      buf[at] = n;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        buf[at + 1 + i] = c;
      }
      if (i === n) {
        encoder.cpos = at + 1 + n;
        return;
      }
    } else if (isShortAscii(s)) {
      encoding.writeVarUint(encoder, n);
      for (let i = 0; i < n; i++) encoding.write(encoder, s.charCodeAt(i));
      return;
    }
  }
  encoding.writeVarString(encoder, s);
}

/** lib0's `writeAny`, with strings and plain-object keys written by {@link writeString}. */
function writeAny(encoder: encoding.Encoder, data: unknown): void {
  if (typeof data === 'string') {
    encoding.write(encoder, ANY_STRING);
    writeString(encoder, data);
    return;
  }
  if (typeof data === 'object' && data !== null && !(data instanceof Uint8Array)) {
    if (Array.isArray(data)) {
      encoding.write(encoder, ANY_ARRAY);
      encoding.writeVarUint(encoder, data.length);
      for (let i = 0; i < data.length; i++) writeAny(encoder, data[i]);
      return;
    }
    const record = data as Record<string, unknown>;
    const keys = Object.keys(record);
    encoding.write(encoder, ANY_OBJECT);
    encoding.writeVarUint(encoder, keys.length);
    for (const key of keys) {
      writeString(encoder, key);
      writeAny(encoder, record[key]);
    }
    return;
  }
  encoding.writeAny(encoder, data as Parameters<typeof encoding.writeAny>[1]);
}

/**
 * Yjs's v1 classes, or stand-ins if the loaded yjs does not export them: importing this module must
 * not fail on another yjs; the codec's self-test then declines ({@link codecPath}).
 */
const DecoderV1 = (Y.UpdateDecoderV1 as typeof Y.UpdateDecoderV1 | undefined) ?? (class {} as unknown as typeof Y.UpdateDecoderV1);
const EncoderV1 = (Y.UpdateEncoderV1 as typeof Y.UpdateEncoderV1 | undefined) ?? (class {} as unknown as typeof Y.UpdateEncoderV1);

/** Yjs's v1 struct decoder with {@link readString} for strings, keys and `any` content. */
export class FastUpdateDecoderV1 extends DecoderV1 {
  /** Recent short strings of this update (see {@link readString}); small updates go without. */
  readonly #recent: Array<string | undefined> | null;

  constructor(decoder: decoding.Decoder) {
    super(decoder);
    this.#recent = decoder.arr.length >= RECENT_MIN_BYTES ? new Array<string | undefined>(RECENT_SLOTS) : null;
  }

  override readString(): string {
    return readString(this.restDecoder, this.#recent);
  }

  override readKey(): string {
    return readString(this.restDecoder, this.#recent);
  }

  override readAny(): unknown {
    return readAny(this.restDecoder, this.#recent);
  }
}

/** Yjs's v1 struct encoder with {@link writeString} for strings, keys and `any` content. */
export class FastUpdateEncoderV1 extends EncoderV1 {
  override writeString(s: string): void {
    writeString(this.restEncoder, s);
  }

  override writeKey(key: string): void {
    writeString(this.restEncoder, key);
  }

  override writeAny(any: unknown): void {
    writeAny(this.restEncoder, any);
  }
}

/**
 * `Y.applyUpdate(doc, update, origin)`, reading strings with {@link FastUpdateDecoderV1}; Yjs's own
 * when the {@link codecPath} declined.
 */
export function applyUpdate(doc: Y.Doc, update: Uint8Array, origin?: unknown): void {
  if (!codecPath.fast && !codecPath.check()) Y.applyUpdate(doc, update, origin);
  else Y.applyUpdateV2(doc, update, origin, FastUpdateDecoderV1);
}

/**
 * `Y.encodeStateAsUpdate(doc, stateVector)`, writing strings with {@link FastUpdateEncoderV1}.
 * Same bytes. A doc holding pending structs or deletes (updates waiting for a missing
 * dependency) takes Yjs's own path, which merges them in only for its own encoder classes; so
 * does every doc when the {@link codecPath} declined.
 */
export function encodeStateAsUpdate(doc: Y.Doc, stateVector?: Uint8Array): Uint8Array {
  if (doc.store.pendingStructs !== null || doc.store.pendingDs !== null || (!codecPath.fast && !codecPath.check())) return Y.encodeStateAsUpdate(doc, stateVector);
  return Y.encodeStateAsUpdateV2(doc, stateVector, new FastUpdateEncoderV1());
}

/**
 * What this module relies on, checked once on the loaded yjs and lib0 (yjs-guard.ts): Yjs's
 * `UpdateDecoderV1`/`UpdateEncoderV1` keep a lib0 decoder/encoder in `restDecoder`/`restEncoder`
 * and read and write every string, key and `any` value through the methods overridden here (or
 * produce the same bytes without them); lib0's decoder keeps `arr`/`pos` and its encoder
 * `cbuf`/`cpos`/`bufs`; lib0's any tags are the ones above. The self-test encodes a document with
 * short and long, ASCII and non-ASCII strings and keys, nested `any` values, text and a delete
 * both ways and compares the bytes, whole and against a state vector, and decodes it both ways
 * and compares the documents.
 */
function codecSelfTest(): string | null {
  if (DecoderV1 !== Y.UpdateDecoderV1 || EncoderV1 !== Y.UpdateEncoderV1) return 'this yjs exports no UpdateDecoderV1/UpdateEncoderV1';
  const probe = new Y.UpdateDecoderV1(decoding.createDecoder(new Uint8Array(1)));
  const rest = probe.restDecoder as Partial<decoding.Decoder> | undefined;
  if (!(rest?.arr instanceof Uint8Array) || typeof rest.pos !== 'number') return "Y.UpdateDecoderV1's restDecoder is not a lib0 decoder with arr and pos";
  const out = new Y.UpdateEncoderV1().restEncoder as Partial<encoding.Encoder> | undefined;
  if (!(out?.cbuf instanceof Uint8Array) || typeof out.cpos !== 'number' || !Array.isArray(out.bufs)) return "Y.UpdateEncoderV1's restEncoder is not a lib0 encoder with cbuf, cpos and bufs";
  const src = new Y.Doc();
  src.clientID = 1;
  const m = src.getMap('m');
  src.transact(() => {
    m.set('short', 'value');
    m.set('ünï', 'wörld 🌱');
    m.set('long', 'l'.repeat(SHORT_STRING + 5));
    m.set('e'.repeat(SHORT_STRING), 'e'.repeat(SHORT_STRING));
    m.set('any', { list: ['x', 'ÿ', 1.5, null, true, { k: 'v' }], 'ключ': -7 });
    m.set('gone', 'soon');
    src.getText('t').insert(0, 'text');
  });
  const sv = Y.encodeStateVector(src);
  src.transact(() => {
    m.delete('gone');
    m.set('later', ['a', 'é']);
  });
  const yjs = Y.encodeStateAsUpdate(src);
  if (!sameBytes(encodeStateAsUpdate(src), yjs)) return 'encodeStateAsUpdate wrote other bytes than Yjs';
  if (!sameBytes(encodeStateAsUpdate(src, sv), Y.encodeStateAsUpdate(src, sv))) return 'encodeStateAsUpdate against a state vector wrote other bytes than Yjs';
  const ours = new Y.Doc();
  applyUpdate(ours, yjs);
  const theirs = new Y.Doc();
  Y.applyUpdate(theirs, yjs);
  if (!sameBytes(Y.encodeStateAsUpdate(ours), Y.encodeStateAsUpdate(theirs))) return 'applyUpdate made another document than Yjs';
  if (JSON.stringify(ours.getMap('m').toJSON()) !== JSON.stringify(theirs.getMap('m').toJSON())) return 'applyUpdate read other values than Yjs';
  return null;
}

/** True if `a` and `b` hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The fast path of this module (yjs-guard.ts): {@link applyUpdate} and {@link encodeStateAsUpdate}
 * take Yjs's own functions when it declined, and integrate.ts and doc-updates.ts, which use its
 * classes, decline with it.
 */
export const codecPath = new FastPath('codec', codecSelfTest);
