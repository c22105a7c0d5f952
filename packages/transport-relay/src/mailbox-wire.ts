/**
 * Relay frames of the sealed mailbox (ARCHITECTURE.md § Mailbox has the byte tables). Shared by
 * the relay and the client; no runtime dependencies. Client→relay types are 0x10–0x17,
 * relay→client types 0x90–0x97.
 *
 * @packageDocumentation
 */
import { MAILBOX_HEADER_BYTES, MAILBOX_KEY_BYTES, readU64, writeU64, type MailboxOffer, type MailboxRecord } from '@rhizome/core';

/** Mailbox frame type bytes. */
export const MailboxFrameType = {
  /** c→s `[0x10][requestId u32][mailbox 32][after u64]` (45): records above `after`; answered by MB_DATA frames. */
  MB_READ: 0x10,
  /** c→s `[0x11][requestId u32][offset u32][bytes]`: a piece of the payload of the next MB_WRITE with this request id. */
  MB_PUT: 0x11,
  /** c→s `[0x12][requestId u32][mailbox 32][header 117][payload tail]`: store one record; answered by MB_RESULT. */
  MB_WRITE: 0x12,
  /** s→c `[0x90][requestId u32][last u8][bytes]`: a piece of a read reply stream. */
  MB_DATA: 0x90,
  /** s→c `[0x91][requestId u32][status u8][head u64][usedBytes u64][usedEntries u32]` (26): reply to MB_WRITE. */
  MB_RESULT: 0x91,
  /** s→c `[0x94][version u8][maxMailboxBytes u64][maxEntries u32][maxEntryBytes u32][ttlSeconds u32][writesPerMinute u32]` (26): sent right after WELCOME by a relay with a mailbox. */
  MB_OFFER: 0x94,
} as const;

/** Version of the mailbox frames, carried in MB_OFFER. */
export const MAILBOX_PROTOCOL_VERSION = 1;
/** Bytes of MB_READ. */
export const MB_READ_BYTES = 1 + 4 + MAILBOX_KEY_BYTES + 8;
/** Header bytes of MB_PUT before the payload piece. */
export const MB_PUT_HEADER_BYTES = 9;
/** Header bytes of MB_WRITE before the payload tail. */
export const MB_WRITE_HEADER_BYTES = 1 + 4 + MAILBOX_KEY_BYTES + MAILBOX_HEADER_BYTES;
/** Header bytes of MB_DATA before the stream bytes. */
export const MB_DATA_HEADER_BYTES = 6;
/** Bytes of MB_RESULT. */
export const MB_RESULT_BYTES = 26;
/** Bytes of MB_OFFER. */
export const MB_OFFER_BYTES = 26;

function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** Request id of any mailbox frame (bytes 1..5). */
export function mailboxRequestId(b: Uint8Array): number {
  return u32(b, 1);
}

// ---- guards ----------------------------------------------------------------------------------

/** MB_READ: exactly 45 bytes. */
export function isMailboxReadFrame(b: Uint8Array): boolean {
  return b.length === MB_READ_BYTES && b[0] === MailboxFrameType.MB_READ;
}

/** MB_PUT: at least its 9-byte header and one payload byte. */
export function isMailboxPutFrame(b: Uint8Array): boolean {
  return b.length > MB_PUT_HEADER_BYTES && b[0] === MailboxFrameType.MB_PUT;
}

/** MB_WRITE: at least its 154-byte header. */
export function isMailboxWriteFrame(b: Uint8Array): boolean {
  return b.length >= MB_WRITE_HEADER_BYTES && b[0] === MailboxFrameType.MB_WRITE;
}

/** MB_DATA: at least its 6-byte header; `last` is 0 or 1. */
export function isMailboxDataFrame(b: Uint8Array): boolean {
  return b.length >= MB_DATA_HEADER_BYTES && b[0] === MailboxFrameType.MB_DATA && b[5]! <= 1;
}

/** MB_RESULT: exactly 26 bytes. */
export function isMailboxResultFrame(b: Uint8Array): boolean {
  return b.length === MB_RESULT_BYTES && b[0] === MailboxFrameType.MB_RESULT;
}

/** MB_OFFER: exactly 26 bytes. */
export function isMailboxOfferFrame(b: Uint8Array): boolean {
  return b.length === MB_OFFER_BYTES && b[0] === MailboxFrameType.MB_OFFER;
}

// ---- encoders and decoders -------------------------------------------------------------------

/** MB_READ of `mailbox` for records above `after`. */
export function encodeMailboxRead(requestId: number, mailbox: Uint8Array, after: number): Uint8Array {
  const b = new Uint8Array(MB_READ_BYTES);
  b[0] = MailboxFrameType.MB_READ;
  putU32(b, 1, requestId);
  b.set(mailbox, 5);
  writeU64(b, 5 + MAILBOX_KEY_BYTES, after);
  return b;
}

/** Decodes MB_READ (after {@link isMailboxReadFrame}); `after` is NaN above 2^53. */
export function decodeMailboxRead(b: Uint8Array): { requestId: number; mailbox: Uint8Array; after: number } {
  return { requestId: u32(b, 1), mailbox: b.subarray(5, 5 + MAILBOX_KEY_BYTES), after: readU64(b, 5 + MAILBOX_KEY_BYTES) };
}

/** MB_PUT: a piece of payload at `offset`. */
export function encodeMailboxPut(requestId: number, offset: number, piece: Uint8Array): Uint8Array {
  const b = new Uint8Array(MB_PUT_HEADER_BYTES + piece.length);
  b[0] = MailboxFrameType.MB_PUT;
  putU32(b, 1, requestId);
  putU32(b, 5, offset);
  b.set(piece, MB_PUT_HEADER_BYTES);
  return b;
}

/** Decodes MB_PUT (after {@link isMailboxPutFrame}). */
export function decodeMailboxPut(b: Uint8Array): { requestId: number; offset: number; piece: Uint8Array } {
  return { requestId: u32(b, 1), offset: u32(b, 5), piece: b.subarray(MB_PUT_HEADER_BYTES) };
}

/** MB_WRITE: the mailbox, the signed header, and the payload bytes not sent by MB_PUT. */
export function encodeMailboxWrite(requestId: number, mailbox: Uint8Array, header: Uint8Array, tail: Uint8Array): Uint8Array {
  const b = new Uint8Array(MB_WRITE_HEADER_BYTES + tail.length);
  b[0] = MailboxFrameType.MB_WRITE;
  putU32(b, 1, requestId);
  b.set(mailbox, 5);
  b.set(header, 5 + MAILBOX_KEY_BYTES);
  b.set(tail, MB_WRITE_HEADER_BYTES);
  return b;
}

/** Decodes MB_WRITE (after {@link isMailboxWriteFrame}). */
export function decodeMailboxWrite(b: Uint8Array): { requestId: number; mailbox: Uint8Array; header: Uint8Array; tail: Uint8Array } {
  return {
    requestId: u32(b, 1),
    mailbox: b.subarray(5, 5 + MAILBOX_KEY_BYTES),
    header: b.subarray(5 + MAILBOX_KEY_BYTES, MB_WRITE_HEADER_BYTES),
    tail: b.subarray(MB_WRITE_HEADER_BYTES),
  };
}

/** MB_DATA: a piece of a read reply. */
export function encodeMailboxData(requestId: number, last: boolean, bytes: Uint8Array): Uint8Array {
  const b = new Uint8Array(MB_DATA_HEADER_BYTES + bytes.length);
  b[0] = MailboxFrameType.MB_DATA;
  putU32(b, 1, requestId);
  b[5] = last ? 1 : 0;
  b.set(bytes, MB_DATA_HEADER_BYTES);
  return b;
}

/** MB_RESULT. */
export function encodeMailboxResult(requestId: number, status: number, head: number, usedBytes: number, usedEntries: number): Uint8Array {
  const b = new Uint8Array(MB_RESULT_BYTES);
  b[0] = MailboxFrameType.MB_RESULT;
  putU32(b, 1, requestId);
  b[5] = status;
  writeU64(b, 6, head);
  writeU64(b, 14, usedBytes);
  putU32(b, 22, usedEntries);
  return b;
}

/** Decodes MB_RESULT (after {@link isMailboxResultFrame}). */
export function decodeMailboxResult(b: Uint8Array): { requestId: number; status: number; head: number; usedBytes: number; usedEntries: number } {
  return { requestId: u32(b, 1), status: b[5]!, head: readU64(b, 6), usedBytes: readU64(b, 14), usedEntries: u32(b, 22) };
}

/** MB_OFFER with the relay's mailbox limits. */
export function encodeMailboxOffer(offer: MailboxOffer): Uint8Array {
  const b = new Uint8Array(MB_OFFER_BYTES);
  b[0] = MailboxFrameType.MB_OFFER;
  b[1] = MAILBOX_PROTOCOL_VERSION;
  writeU64(b, 2, offer.maxMailboxBytes);
  putU32(b, 10, offer.maxEntries);
  putU32(b, 14, offer.maxEntryBytes);
  putU32(b, 18, offer.ttlSeconds);
  putU32(b, 22, offer.writesPerMinute);
  return b;
}

/** Decodes MB_OFFER (after {@link isMailboxOfferFrame}); `null` for another version. */
export function decodeMailboxOffer(b: Uint8Array): MailboxOffer | null {
  if (b[1] !== MAILBOX_PROTOCOL_VERSION) return null;
  return { maxMailboxBytes: readU64(b, 2), maxEntries: u32(b, 10), maxEntryBytes: u32(b, 14), ttlSeconds: u32(b, 18), writesPerMinute: u32(b, 22) };
}

// ---- the read reply stream -------------------------------------------------------------------

/** What a read reply stream carries. */
export interface MailboxReadReply {
  status: number;
  usedBytes: number;
  usedEntries: number;
  head: Uint8Array | null;
  records: MailboxRecord[];
}

/**
 * Serializes a read reply: `[status u8]`, and if OK `[usedBytes u64][usedEntries u32][hasHead u8]
 * [head 117]? [count u32]` then `count × ([header 117][payload length bytes])`.
 */
export function encodeMailboxReadStream(reply: MailboxReadReply): Uint8Array {
  if (reply.status !== 0) return Uint8Array.of(reply.status);
  let size = 1 + 8 + 4 + 1 + (reply.head ? MAILBOX_HEADER_BYTES : 0) + 4;
  for (const r of reply.records) size += MAILBOX_HEADER_BYTES + r.payload.length;
  const b = new Uint8Array(size);
  b[0] = 0;
  writeU64(b, 1, reply.usedBytes);
  putU32(b, 9, reply.usedEntries);
  let o = 13;
  b[o++] = reply.head ? 1 : 0;
  if (reply.head) {
    b.set(reply.head, o);
    o += MAILBOX_HEADER_BYTES;
  }
  putU32(b, o, reply.records.length);
  o += 4;
  for (const r of reply.records) {
    b.set(r.header, o);
    o += MAILBOX_HEADER_BYTES;
    b.set(r.payload, o);
    o += r.payload.length;
  }
  return b;
}

/** Parses a read reply stream; `null` when it is malformed (lengths do not add up). */
export function decodeMailboxReadStream(b: Uint8Array): MailboxReadReply | null {
  if (b.length < 1) return null;
  const status = b[0]!;
  if (status !== 0) return b.length === 1 ? { status, usedBytes: 0, usedEntries: 0, head: null, records: [] } : null;
  if (b.length < 14) return null;
  const usedBytes = readU64(b, 1);
  const usedEntries = u32(b, 9);
  let o = 13;
  const hasHead = b[o++]!;
  if (hasHead > 1) return null;
  let head: Uint8Array | null = null;
  if (hasHead === 1) {
    if (o + MAILBOX_HEADER_BYTES > b.length) return null;
    head = b.subarray(o, o + MAILBOX_HEADER_BYTES);
    o += MAILBOX_HEADER_BYTES;
  }
  if (o + 4 > b.length) return null;
  const count = u32(b, o);
  o += 4;
  const records: MailboxRecord[] = [];
  for (let i = 0; i < count; i++) {
    if (o + MAILBOX_HEADER_BYTES > b.length) return null;
    const header = b.subarray(o, o + MAILBOX_HEADER_BYTES);
    o += MAILBOX_HEADER_BYTES;
    const length = u32(header, 17);
    if (o + length > b.length) return null;
    records.push({ header, payload: b.subarray(o, o + length) });
    o += length;
  }
  if (o !== b.length || Number.isNaN(usedBytes)) return null;
  return { status, usedBytes, usedEntries, head, records };
}
