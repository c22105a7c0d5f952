/**
 * The sealed mailbox: the contract between a database (which holds the key), a transport that
 * reaches a mailbox (the relay client), and a mailbox server (the relay). Types and the byte
 * layout of a mailbox record's header, which the writer signs and the relay and every reader
 * verify. No runtime dependencies beyond `@noble/hashes`; ARCHITECTURE.md § Mailbox has the
 * rules and the frames.
 *
 * A mailbox is addressed by an Ed25519 public key derived from the database key material. It
 * holds a *base* (a sealed snapshot, or a truncation marker) followed by sealed *deposits*, each
 * a record whose 117-byte header is signed by the mailbox key:
 *
 * | offset | bytes | field |
 * |---|---|---|
 * | 0 | 1 | op: 1 DEPOSIT, 2 SNAPSHOT, 3 TRUNCATE |
 * | 1 | 8 | counter (u64 BE): strictly increasing per mailbox |
 * | 9 | 8 | prev (u64 BE): the mailbox head the writer built on |
 * | 17 | 4 | length (u32 BE) of the sealed payload |
 * | 21 | 32 | SHA-256 of the sealed payload |
 * | 53 | 64 | Ed25519 signature over `'rhizome/v1/mailbox-op' ‖ mailbox key ‖ header[0..53)` |
 *
 * @packageDocumentation
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';

/** Bytes of a mailbox address (an Ed25519 public key). */
export const MAILBOX_KEY_BYTES = 32;
/** Bytes of an Ed25519 signature. */
export const MAILBOX_SIGNATURE_BYTES = 64;
/** Bytes of the signed part of a record header (op, counter, prev, length, digest). */
export const MAILBOX_SIGNED_BYTES = 53;
/** Bytes of a record header (signed part + signature). */
export const MAILBOX_HEADER_BYTES = MAILBOX_SIGNED_BYTES + MAILBOX_SIGNATURE_BYTES;
/** Domain label prefixed to the signed bytes, so a mailbox signature means nothing elsewhere. */
export const MAILBOX_SIGN_LABEL = 'rhizome/v1/mailbox-op';

/** Record operations. */
export const MailboxOp = {
  /** Sealed updates appended after the head: `counter = prev + 1`, `prev = head`. */
  DEPOSIT: 1,
  /** A sealed snapshot that replaces every earlier record: `prev = head`, `counter > head`. */
  SNAPSHOT: 2,
  /** Empties the mailbox (an empty base): `prev = head`, `counter > head`, `length = 0`. */
  TRUNCATE: 3,
} as const;

/** One of {@link MailboxOp}'s values. */
export type MailboxOpCode = (typeof MailboxOp)[keyof typeof MailboxOp];

/** Status byte of a mailbox reply: 0 is success, anything else a refusal. */
export const MailboxStatus = {
  OK: 0,
  /** The signature does not verify under the mailbox key. */
  BAD_SIGNATURE: 1,
  /** `counter`/`prev` do not follow the head (a replay, or another writer was first); the reply carries the head. */
  STALE: 2,
  /** The mailbox is at its byte or entry quota: deposit a snapshot that replaces it. */
  FULL: 3,
  /** The relay holds as many mailboxes as it may: it cannot open a new one. */
  RELAY_FULL: 4,
  /** Writes to this mailbox come faster than the relay allows. */
  RATE: 5,
  /** The record is larger than the relay's largest entry. */
  TOO_LARGE: 6,
  /** A deposit into a mailbox without a base: the first write must be a snapshot. */
  NO_BASE: 7,
  /** The uploaded payload does not match the header's length or digest, or the header is inconsistent. */
  BAD_RECORD: 8,
  /** The relay is out of memory for mailbox transfers right now; try later. */
  BUSY: 9,
  /** The relay's mailbox storage failed. */
  UNAVAILABLE: 10,
} as const;

/** Name of a mailbox status, e.g. `'FULL'`. */
export type MailboxStatusName = keyof typeof MailboxStatus;

const STATUS_NAMES = new Map<number, MailboxStatusName>(
  (Object.entries(MailboxStatus) as Array<[MailboxStatusName, number]>).map(([name, code]) => [code, name]),
);

/** The {@link MailboxStatus} name of a status byte (`'UNKNOWN'` for a code this version does not know). */
export function mailboxStatusName(status: number): MailboxStatusName | 'UNKNOWN' {
  return STATUS_NAMES.get(status) ?? 'UNKNOWN';
}

/** A record header, decoded. */
export interface MailboxHeader {
  op: number;
  counter: number;
  prev: number;
  length: number;
  digest: Uint8Array;
  signature: Uint8Array;
}

/** Reads a u64 BE that must stay below 2^53 (else `NaN`). */
export function readU64(b: Uint8Array, offset: number): number {
  let v = 0;
  for (let i = 0; i < 8; i++) v = v * 256 + b[offset + i]!;
  return Number.isSafeInteger(v) ? v : Number.NaN;
}

/** Writes a safe non-negative integer as u64 BE. */
export function writeU64(b: Uint8Array, offset: number, value: number): void {
  let v = value;
  for (let i = 7; i >= 0; i--) {
    b[offset + i] = v % 256;
    v = Math.floor(v / 256);
  }
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Decodes a 117-byte header (no verification); `null` if the length is wrong or a number overflows. */
export function decodeMailboxHeader(h: Uint8Array): MailboxHeader | null {
  if (h.length !== MAILBOX_HEADER_BYTES) return null;
  const counter = readU64(h, 1);
  const prev = readU64(h, 9);
  if (Number.isNaN(counter) || Number.isNaN(prev)) return null;
  return {
    op: h[0]!,
    counter,
    prev,
    length: readU32(h, 17),
    digest: h.subarray(21, 53),
    signature: h.subarray(53, 117),
  };
}

/**
 * The unsigned part of a header (53 bytes) for a payload: op, counter, prev, length, SHA-256.
 * Sign {@link mailboxSigningBytes} of it and append the signature to get the header.
 */
export function encodeMailboxUnsigned(op: MailboxOpCode, counter: number, prev: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(MAILBOX_SIGNED_BYTES);
  b[0] = op;
  writeU64(b, 1, counter);
  writeU64(b, 9, prev);
  const n = payload.length;
  b[17] = n >>> 24;
  b[18] = (n >>> 16) & 0xff;
  b[19] = (n >>> 8) & 0xff;
  b[20] = n & 0xff;
  b.set(sha256(payload), 21);
  return b;
}

const SIGN_LABEL_BYTES = utf8ToBytes(MAILBOX_SIGN_LABEL);

/** What the mailbox key signs: `'rhizome/v1/mailbox-op' ‖ mailbox ‖ header[0..53)`. */
export function mailboxSigningBytes(mailbox: Uint8Array, header: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGN_LABEL_BYTES.length + MAILBOX_KEY_BYTES + MAILBOX_SIGNED_BYTES);
  out.set(SIGN_LABEL_BYTES, 0);
  out.set(mailbox.subarray(0, MAILBOX_KEY_BYTES), SIGN_LABEL_BYTES.length);
  out.set(header.subarray(0, MAILBOX_SIGNED_BYTES), SIGN_LABEL_BYTES.length + MAILBOX_KEY_BYTES);
  return out;
}

/**
 * Checks the sequencing rules of a header against the mailbox head (`head` 0: empty mailbox,
 * `hasBase` false: no base yet). Returns the refusal status, or `OK`. Shared by the relay (which
 * enforces it) and readers (which re-check what the relay served).
 */
export function checkMailboxSequence(h: MailboxHeader, head: number, hasBase: boolean): number {
  if (h.prev !== head) return MailboxStatus.STALE;
  switch (h.op) {
    case MailboxOp.DEPOSIT:
      if (h.counter !== head + 1) return MailboxStatus.STALE;
      return hasBase ? MailboxStatus.OK : MailboxStatus.NO_BASE;
    case MailboxOp.SNAPSHOT:
      return h.counter > head ? MailboxStatus.OK : MailboxStatus.STALE;
    case MailboxOp.TRUNCATE:
      if (h.length !== 0) return MailboxStatus.BAD_RECORD;
      return h.counter > head ? MailboxStatus.OK : MailboxStatus.STALE;
    default:
      return MailboxStatus.BAD_RECORD;
  }
}

/** What a relay offers in its handshake (MAILBOX_OFFER). */
export interface MailboxOffer {
  /** Bytes one mailbox may hold (headers and payloads). */
  maxMailboxBytes: number;
  /** Records one mailbox may hold. */
  maxEntries: number;
  /** Largest sealed payload of one record. */
  maxEntryBytes: number;
  /** A mailbox not written for this long is deleted. */
  ttlSeconds: number;
  /** Sustained writes per minute one mailbox may take. */
  writesPerMinute: number;
}

/** One record as a mailbox serves it. */
export interface MailboxRecord {
  /** The 117-byte signed header. */
  header: Uint8Array;
  /** The sealed payload (`length` bytes). */
  payload: Uint8Array;
}

/** The reply to a read. */
export interface MailboxReadResult {
  /** Header of the newest record (signed), or null for an empty mailbox. */
  head: Uint8Array | null;
  /** Records newer than the cursor: the base first if it is newer, then deposits in order. */
  records: MailboxRecord[];
  /** Bytes and records the mailbox holds now. */
  usedBytes: number;
  usedEntries: number;
}

/** The reply to an accepted write. */
export interface MailboxWriteResult {
  /** The mailbox head after the write (the record's counter). */
  head: number;
  usedBytes: number;
  usedEntries: number;
}

/**
 * A transport's access to a mailbox server (a relay that offers one). The transport moves the
 * bytes; keys, sealing, signing and policy are the sync layer's. Writes that the server refuses
 * reject with `MailboxFullError` (`ERR_MAILBOX_FULL`) or `MailboxRefusedError`
 * (`ERR_MAILBOX_REFUSED`, with the status and the head); a lost session rejects with
 * `ERR_CONNECT_FAILED`.
 */
export interface MailboxAccess {
  /** Identifies the server (the relay URL): mailbox state on the client is kept per server. */
  readonly serverId: string;
  /** The offer of the current session, or null when none is up or the server offers no mailbox. */
  readonly offer: MailboxOffer | null;
  /**
   * Calls `listener` whenever a session with a mailbox offer comes up (at once if one is up
   * now). Returns a function that removes the listener.
   */
  onOffer(listener: MailboxOfferListener): () => void;
  /**
   * True if {@link onOffer} and {@link offOffer} take object listeners (`{ handleOffer }`, told
   * through {@link callOfferListener}). Optional: an access without it is given functions only (a
   * third party's access written when listeners were functions calls `listener(offer)`).
   */
  readonly objectListeners?: boolean;
  /**
   * Removes `listener` (added with {@link onOffer}), as the function `onOffer` returned does.
   * Optional; with it a holder keeps no stop function (an idle database holds one listener, and
   * each function is ~60 B of heap).
   */
  offOffer?(listener: MailboxOfferListener): void;
  /** Records with a counter above `after` (0: everything), and the head. */
  read(mailbox: Uint8Array, after: number, options?: { signal?: AbortSignal }): Promise<MailboxReadResult>;
  /** Stores one record: the signed header and its sealed payload. */
  write(mailbox: Uint8Array, header: Uint8Array, payload: Uint8Array, options?: { signal?: AbortSignal }): Promise<MailboxWriteResult>;
}

/**
 * Who is told of mailbox offers ({@link MailboxAccess.onOffer}): a function, or an object whose
 * `handleOffer` is called — a holder that is its own listener keeps no closure for it (an idle
 * database holds one listener; ARCHITECTURE § Memory of an idle replica).
 */
export type MailboxOfferListener = ((offer: MailboxOffer) => void) | { handleOffer(offer: MailboxOffer): void };

/** Tells `listener` of `offer` (a {@link MailboxAccess} implementation calls its listeners so). */
export function callOfferListener(listener: MailboxOfferListener, offer: MailboxOffer): void {
  if (typeof listener === 'function') listener(offer);
  else listener.handleOffer(offer);
}

/** Whether a transport can reach a mailbox (the relay transport can; `mailbox: false` turns it off). */
export function mailboxOf(transport: object): MailboxAccess | undefined {
  const access = (transport as { mailbox?: MailboxAccess | null }).mailbox;
  return access === null || access === undefined ? undefined : access;
}
