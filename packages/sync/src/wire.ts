/**
 * The sync wire format inside a sealed frame (see ARCHITECTURE.md § Sync and sealing).
 *
 * A sealed frame's plaintext is either a whole message or one chunk of a larger one:
 *
 * - `FRAME_WHOLE (0x00) || message`
 * - `FRAME_CHUNK (0x01) || messageId(8) || index(u32 BE) || count(u32 BE) || total(u32 BE) || bytes`
 *
 * A message is `type(1) || body`:
 *
 * - `MSG_SYNC_STEP1 (0x01) || requestId(16) || stateVector`
 * - `MSG_SYNC_STEP2 (0x02) || requestId(16) || update` (answers the step 1 with that requestId)
 * - `MSG_UPDATES   (0x03) || varUint(n) || n * varUint8Array(update)` (lib0 encoding)
 * - `MSG_AWARENESS (0x04) || awarenessUpdate` (y-protocols awareness encoding)
 * - `MSG_PING      (0x05) || varUint(id)` (answered at once by a pong echoing the id)
 * - `MSG_PONG      (0x06) || varUint(id)` (acknowledges everything the peer sent before that ping)
 * - `MSG_REPLICA   (0x07) || version(1) || replicaId(16)` (sent first; handled by replicas.ts)
 * - `MSG_BATCH     (0x08) || varUint(n) || n * varUint8Array(message)` (a session's opening
 *   messages in one frame; never nested)
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { FrameTooLargeError, ProtocolError, randomId } from '@rhizome/core';

/** Frame kind: the frame carries one whole message. */
export const FRAME_WHOLE = 0x00;
/** Frame kind: the frame carries one chunk of a message split across frames. */
export const FRAME_CHUNK = 0x01;
/** Bytes of a chunk frame's header (kind, message id, index, count, total). */
export const CHUNK_HEADER_LENGTH = 1 + 8 + 4 + 4 + 4;

/** Sync step 1: the sender's state vector, asking for what it lacks. */
export const MSG_SYNC_STEP1 = 0x01;
/** Sync step 2: the update the step-1 sender lacks, echoing its request id. */
export const MSG_SYNC_STEP2 = 0x02;
/** One or more live Yjs updates, applied in one transaction. */
export const MSG_UPDATES = 0x03;
/** A y-protocols awareness update. */
export const MSG_AWARENESS = 0x04;

/** A health probe: the peer answers with {@link MSG_PONG} echoing the id. */
export const MSG_PING = 0x05;
/** The answer to a {@link MSG_PING}. Messages are processed in order, so it also acknowledges everything sent before the ping. */
export const MSG_PONG = 0x06;
/** A replica's sealed identity, sent first in every session (see replicas.ts). */
export const MSG_REPLICA = 0x07;

/**
 * Several messages in one: a session's opening (REPLICA, sync step 1, awareness) as one sealed
 * frame instead of three. The receiver handles the inner messages in order, as if each had come
 * in its own frame. A peer that predates it skips it as an unknown type (reported), and a
 * session that hears such a peer open without a batch sends its opening again as separate
 * messages (see `PeerSession`).
 */
export const MSG_BATCH = 0x08;

/** Most messages in one {@link MSG_BATCH}. */
export const MAX_BATCH_MESSAGES = 16;

/** Bytes of a sync request id. */
export const REQUEST_ID_LENGTH = 16;

/** A decoded message. */
export type Message =
  | { type: typeof MSG_SYNC_STEP1; requestId: Uint8Array; stateVector: Uint8Array }
  | { type: typeof MSG_SYNC_STEP2; requestId: Uint8Array; update: Uint8Array }
  | { type: typeof MSG_UPDATES; updates: Uint8Array[] }
  | { type: typeof MSG_AWARENESS; update: Uint8Array }
  | { type: typeof MSG_PING; id: number }
  | { type: typeof MSG_PONG; id: number };

function withPrefix(type: number, head: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + head.length + body.length);
  out[0] = type;
  out.set(head, 1);
  out.set(body, 1 + head.length);
  return out;
}

/** Encodes a sync step 1. */
export function encodeStep1(requestId: Uint8Array, stateVector: Uint8Array): Uint8Array {
  return withPrefix(MSG_SYNC_STEP1, requestId, stateVector);
}

/** Encodes a sync step 2. */
export function encodeStep2(requestId: Uint8Array, update: Uint8Array): Uint8Array {
  return withPrefix(MSG_SYNC_STEP2, requestId, update);
}

/** Encodes a batch of live updates. */
export function encodeUpdates(updates: readonly Uint8Array[]): Uint8Array {
  const enc = encoding.createEncoder();
  encoding.writeUint8(enc, MSG_UPDATES);
  encoding.writeVarUint(enc, updates.length);
  for (const u of updates) encoding.writeVarUint8Array(enc, u);
  return encoding.toUint8Array(enc);
}

/** Encodes several messages as one {@link MSG_BATCH} message. */
export function encodeBatch(messages: readonly Uint8Array[]): Uint8Array {
  let length = 1 + varUintLength(messages.length);
  for (const m of messages) length += varUintLength(m.length) + m.length;
  const out = new Uint8Array(length);
  out[0] = MSG_BATCH;
  let at = writeVarUint(out, 1, messages.length);
  for (const m of messages) {
    at = writeVarUint(out, at, m.length);
    out.set(m, at);
    at += m.length;
  }
  return out;
}

/**
 * The messages of a {@link MSG_BATCH} message (views into `bytes`). A malformed batch — a count
 * above {@link MAX_BATCH_MESSAGES}, an empty or nested message, a length past the end, trailing
 * bytes — is a {@link ProtocolError}.
 */
export function decodeBatch(bytes: Uint8Array): Uint8Array[] {
  if (bytes[0] !== MSG_BATCH) throw new ProtocolError('not a batch message');
  try {
    const dec = decoding.createDecoder(bytes.subarray(1));
    const n = decoding.readVarUint(dec);
    if (n < 1 || n > MAX_BATCH_MESSAGES) throw new ProtocolError(`a batch of ${n} messages`);
    const messages: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const length = decoding.readVarUint(dec);
      if (length < 1 || length > dec.arr.length - dec.pos) throw new ProtocolError('malformed batch message');
      const m = decoding.readUint8Array(dec, length);
      if (m[0] === MSG_BATCH) throw new ProtocolError('a batch inside a batch');
      messages.push(m);
    }
    if (decoding.hasContent(dec)) throw new ProtocolError('trailing bytes after a batch');
    return messages;
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    throw new ProtocolError('malformed batch message');
  }
}

function varUintLength(n: number): number {
  let length = 1;
  while (n > 0x7f) {
    n = Math.floor(n / 128);
    length++;
  }
  return length;
}

/** Writes `n` as a lib0 varUint at `at`; returns the offset after it. */
function writeVarUint(out: Uint8Array, at: number, n: number): number {
  while (n > 0x7f) {
    out[at++] = 0x80 | (n & 0x7f);
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/** Encodes an awareness update. */
export function encodeAwareness(update: Uint8Array): Uint8Array {
  return withPrefix(MSG_AWARENESS, new Uint8Array(0), update);
}

/**
 * Encodes a ping or a pong carrying `id` (a non-negative integer below 2^32): the type byte and
 * the id as a varUint, written straight into an exact-size array (at most 6 bytes, so V8 keeps it
 * on its heap: no encoder and no 100-byte off-heap buffer per probe, every peer every 5 s).
 */
export function encodeProbe(type: typeof MSG_PING | typeof MSG_PONG, id: number): Uint8Array {
  let n = 2;
  for (let v = id; v > 0x7f; v = Math.floor(v / 128)) n++;
  const out = new Uint8Array(n);
  out[0] = type;
  let v = id;
  let i = 1;
  while (v > 0x7f) {
    out[i++] = 0x80 | v % 128;
    v = Math.floor(v / 128);
  }
  out[i] = v;
  return out;
}

/** Decodes a message; a malformed one is a {@link ProtocolError}. */
export function decodeMessage(bytes: Uint8Array): Message {
  if (bytes.length < 1) throw new ProtocolError('empty message');
  const type = bytes[0];
  switch (type) {
    case MSG_SYNC_STEP1:
    case MSG_SYNC_STEP2: {
      if (bytes.length < 1 + REQUEST_ID_LENGTH) throw new ProtocolError('truncated sync message');
      const requestId = bytes.slice(1, 1 + REQUEST_ID_LENGTH);
      const rest = bytes.subarray(1 + REQUEST_ID_LENGTH);
      return type === MSG_SYNC_STEP1
        ? { type, requestId, stateVector: rest }
        : { type, requestId, update: rest };
    }
    case MSG_UPDATES: {
      try {
        const dec = decoding.createDecoder(bytes.subarray(1));
        const n = decoding.readVarUint(dec);
        if (n > bytes.length) throw new ProtocolError('update count exceeds message size');
        const updates: Uint8Array[] = [];
        for (let i = 0; i < n; i++) updates.push(decoding.readVarUint8Array(dec));
        if (decoding.hasContent(dec)) throw new ProtocolError('trailing bytes after updates');
        return { type, updates };
      } catch (error) {
        if (error instanceof ProtocolError) throw error;
        throw new ProtocolError('malformed updates message');
      }
    }
    case MSG_AWARENESS:
      return { type, update: bytes.subarray(1) };
    case MSG_PING:
    case MSG_PONG: {
      // A probe id is a varUint below 2^32 (at most 5 bytes) and nothing else.
      if (bytes.length < 2 || bytes.length > 6) throw new ProtocolError('malformed probe message');
      // The varUint read in place (no decoder per probe); it must end exactly at the last byte.
      let id = 0;
      let scale = 1;
      for (let i = 1; ; i++) {
        if (i >= bytes.length) throw new ProtocolError('malformed probe message');
        const b = bytes[i] as number;
        id += (b & 0x7f) * scale;
        if (b < 0x80) {
          if (i !== bytes.length - 1 || id > 0xffffffff) throw new ProtocolError('malformed probe message');
          return { type, id };
        }
        scale *= 128;
      }
    }
    default:
      throw new ProtocolError(`unknown message type ${String(type)}`);
  }
}

/** A fresh random sync request id. */
export function newRequestId(): Uint8Array {
  return randomId(REQUEST_ID_LENGTH);
}

/**
 * Splits a message into frame plaintexts of at most `maxPlaintext` bytes each: one
 * `FRAME_WHOLE` frame when it fits, else `FRAME_CHUNK` frames under a random message id.
 */
export function toFrames(message: Uint8Array, maxPlaintext: number): Uint8Array[] {
  if (1 + message.length <= maxPlaintext) {
    const frame = new Uint8Array(1 + message.length);
    frame[0] = FRAME_WHOLE;
    frame.set(message, 1);
    return [frame];
  }
  const room = maxPlaintext - CHUNK_HEADER_LENGTH;
  if (room < 1) throw new FrameTooLargeError(CHUNK_HEADER_LENGTH + 1, maxPlaintext);
  const count = Math.ceil(message.length / room);
  if (message.length > 0xffffffff) throw new FrameTooLargeError(message.length, 0xffffffff);
  const id = randomId(8);
  const frames: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const part = message.subarray(index * room, Math.min(message.length, (index + 1) * room));
    const frame = new Uint8Array(CHUNK_HEADER_LENGTH + part.length);
    const view = new DataView(frame.buffer);
    frame[0] = FRAME_CHUNK;
    frame.set(id, 1);
    view.setUint32(9, index);
    view.setUint32(13, count);
    view.setUint32(17, message.length);
    frame.set(part, CHUNK_HEADER_LENGTH);
    frames.push(frame);
  }
  return frames;
}

/** What {@link Reassembler.push} made of a frame. */
export type ReassemblyResult =
  | { kind: 'message'; message: Uint8Array }
  | { kind: 'pending' }
  /** A chunk out of sequence (a replay or a lost frame): dropped; the error says why. */
  | { kind: 'dropped'; error: ProtocolError };

/**
 * The message of a `FRAME_WHOLE` frame, or null for any other frame kind: what {@link Reassembler}
 * does for whole frames, without its state (a session makes a Reassembler only for chunks).
 */
export function wholeFrame(frame: Uint8Array, maxMessageBytes: number): ReassemblyResult | null {
  if (frame.length < 1) throw new ProtocolError('empty frame');
  if (frame[0] !== FRAME_WHOLE) return null;
  const message = frame.subarray(1);
  if (message.length > maxMessageBytes) throw new FrameTooLargeError(message.length, maxMessageBytes);
  return { kind: 'message', message };
}

/**
 * Puts chunked messages back together, one at a time (a sender never interleaves the chunks of
 * two messages). Memory is bounded by `maxMessageBytes`: a chunk announcing a larger total
 * throws {@link FrameTooLargeError}, and the caller closes the connection.
 *
 * A chunk that does not continue the message in progress is dropped, except an index-0 chunk,
 * which starts a new message. So a replayed frame can at worst cost the message in progress
 * (which a relay could drop anyway); it can never splice foreign bytes into a message.
 */
export class Reassembler {
  readonly maxMessageBytes: number;
  #id: Uint8Array | null = null;
  #next = 0;
  #count = 0;
  #total = 0;
  #received = 0;
  #parts: Uint8Array[] = [];

  constructor(maxMessageBytes: number) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /** Bytes held for the message in progress. */
  get bufferedBytes(): number {
    return this.#received;
  }

  push(frame: Uint8Array): ReassemblyResult {
    const whole = wholeFrame(frame, this.maxMessageBytes);
    if (whole !== null) return whole;
    if (frame[0] !== FRAME_CHUNK) throw new ProtocolError(`unknown frame kind ${String(frame[0])}`);
    if (frame.length < CHUNK_HEADER_LENGTH) throw new ProtocolError('truncated chunk header');
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const id = frame.subarray(1, 9);
    const index = view.getUint32(9);
    const count = view.getUint32(13);
    const total = view.getUint32(17);
    const part = frame.subarray(CHUNK_HEADER_LENGTH);
    if (index === 0) {
      if (total > this.maxMessageBytes) throw new FrameTooLargeError(total, this.maxMessageBytes);
      if (count < 2 || count > total || part.length === 0) throw new ProtocolError('inconsistent chunk header');
      const abandoned = this.#id !== null;
      this.#id = id.slice();
      this.#next = 0;
      this.#count = count;
      this.#total = total;
      this.#received = 0;
      this.#parts = [];
      const result = this.#accept(part);
      if (abandoned && result.kind === 'pending') {
        return { kind: 'dropped', error: new ProtocolError('a new chunked message began before the previous one ended') };
      }
      return result;
    }
    if (this.#id === null || !sameBytes(id, this.#id) || index !== this.#next || count !== this.#count || total !== this.#total) {
      return { kind: 'dropped', error: new ProtocolError(`unexpected chunk ${index}/${count}: dropped`) };
    }
    return this.#accept(part);
  }

  #accept(part: Uint8Array): ReassemblyResult {
    if (this.#received + part.length > this.#total) {
      this.#reset();
      throw new ProtocolError('chunks exceed the announced message size');
    }
    this.#parts.push(part.slice());
    this.#received += part.length;
    this.#next++;
    if (this.#next < this.#count) return { kind: 'pending' };
    if (this.#received !== this.#total) {
      this.#reset();
      throw new ProtocolError('chunks fall short of the announced message size');
    }
    const message = new Uint8Array(this.#total);
    let at = 0;
    for (const p of this.#parts) {
      message.set(p, at);
      at += p.length;
    }
    this.#reset();
    return { kind: 'message', message };
  }

  #reset(): void {
    this.#id = null;
    this.#next = 0;
    this.#count = 0;
    this.#total = 0;
    this.#received = 0;
    this.#parts = [];
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
