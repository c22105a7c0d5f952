import { createHash, createPublicKey, verify } from 'node:crypto';
import { MAILBOX_HEADER_BYTES, MailboxStatus, decodeMailboxHeader, mailboxSigningBytes, mailboxStatusName, type MailboxStatusName } from '@rhizome/core';
import {
  MB_DATA_HEADER_BYTES,
  decodeMailboxPut,
  decodeMailboxRead,
  decodeMailboxWrite,
  encodeMailboxData,
  encodeMailboxOffer,
  encodeMailboxReadStream,
  encodeMailboxResult,
} from '@rhizome/transport-relay/protocol';
import type { ResolvedMailboxOptions } from './options.js';
import type { MailboxStore } from './store.js';

/** What the service needs of a relay connection (the core's peer object). */
export interface MailboxPeer {
  readonly done: boolean;
  readonly socket: { readonly bufferedAmount: number };
}

/** What the routing core lends the service: sending to a peer, and charging its rate buckets. */
export interface MailboxCoreHooks {
  send(peer: MailboxPeer, frame: Uint8Array): void;
  /** Charges work beyond the frame itself; false once that cut the peer. */
  charge(peer: MailboxPeer, frames: number, bytes: number): boolean;
}

/** Counters of the mailbox service, for `stats()` and `/metrics`. */
export interface MailboxServiceStats {
  reads: number;
  writes: number;
  bytesStored: number;
  bytesServed: number;
  /** Refused writes and reads by status name. */
  refused: Partial<Record<MailboxStatusName | 'UNKNOWN', number>>;
}

interface Upload {
  requestId: number;
  chunks: Buffer[];
  bytes: number;
  /** Set when a piece was refused: the write that follows fails with it. */
  failed: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function verifySignature(mailbox: Uint8Array, header: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, mailbox]), format: 'der', type: 'spki' });
    return verify(null, mailboxSigningBytes(mailbox, header), key, header.subarray(53, MAILBOX_HEADER_BYTES));
  } catch {
    return false;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The relay's side of the sealed mailbox: verifies every write (Ed25519 signature under the
 * mailbox's own key, payload digest and length, the counter chain), enforces the operator's
 * bounds (per-mailbox bytes, records and write rate, mailboxes in total, transfer memory), and
 * serves reads as a paced stream of MB_DATA frames. It never sees a database id, a key that can
 * open a payload, or plaintext. Storage is a {@link MailboxStore}.
 */
export class MailboxService {
  readonly options: ResolvedMailboxOptions;
  readonly store: MailboxStore;
  /** The MB_OFFER frame sent after every WELCOME. */
  readonly offerFrame: Uint8Array;
  readonly #maxFrameSize: number;
  readonly #paceBytes: number;
  #hooks: MailboxCoreHooks | null = null;
  readonly #uploads = new Map<MailboxPeer, Upload>();
  readonly #buckets = new Map<string, Bucket>();
  #transferBytes = 0;
  #closed = false;
  readonly #inFlight = new Set<Promise<unknown>>();
  #sweep: ReturnType<typeof setInterval> | null = null;
  readonly #stats: MailboxServiceStats = { reads: 0, writes: 0, bytesStored: 0, bytesServed: 0, refused: {} };
  readonly #now: () => number;

  constructor(store: MailboxStore, options: ResolvedMailboxOptions, settings: { maxFrameSize: number; maxBufferedBytes: number; now?: () => number }) {
    this.store = store;
    this.options = options;
    this.#maxFrameSize = settings.maxFrameSize;
    this.#paceBytes = Math.max(settings.maxFrameSize, Math.floor(settings.maxBufferedBytes / 4));
    this.#now = settings.now ?? Date.now;
    this.offerFrame = encodeMailboxOffer({
      maxMailboxBytes: options.maxMailboxBytes,
      maxEntries: options.maxEntries,
      maxEntryBytes: options.maxEntryBytes,
      ttlSeconds: options.ttlSeconds,
      writesPerMinute: options.writesPerMinute,
    });
  }

  /** @internal Called by the core that owns the connections. Starts the TTL sweep. */
  bind(hooks: MailboxCoreHooks): void {
    this.#hooks = hooks;
    void this.expire();
    const every = Math.min(3600, Math.max(1, Math.floor(this.options.ttlSeconds / 4))) * 1000;
    this.#sweep = setInterval(() => void this.expire(), every);
    this.#sweep.unref();
  }

  /** Deletes mailboxes not written for `ttlSeconds`; returns how many. Runs at start and periodically. */
  async expire(): Promise<number> {
    if (this.#closed) return 0;
    return this.#track(this.store.expire(this.#now() - this.options.ttlSeconds * 1000).catch(() => 0));
  }

  /** A snapshot of the counters. */
  stats(): MailboxServiceStats {
    return { ...this.#stats, refused: { ...this.#stats.refused } };
  }

  /** Stops the sweep, waits for requests in progress, closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweep) clearInterval(this.#sweep);
    await Promise.allSettled([...this.#inFlight]);
    this.#uploads.clear();
    await this.store.close();
  }

  /** @internal The connection is gone: release its upload. */
  forget(peer: MailboxPeer): void {
    const upload = this.#uploads.get(peer);
    if (upload === undefined) return;
    this.#uploads.delete(peer);
    this.#transferBytes -= upload.bytes;
  }

  // ---- frames ---------------------------------------------------------------------------------

  /** @internal MB_READ: stream the records above the cursor. */
  onRead(peer: MailboxPeer, frame: Buffer): void {
    const { requestId, mailbox, after } = decodeMailboxRead(frame);
    const key = Buffer.from(mailbox);
    this.#stats.reads++;
    if (Number.isNaN(after)) {
      void this.#sendStream(peer, requestId, this.#refusal(MailboxStatus.BAD_RECORD));
      return;
    }
    void this.#track(
      this.store.read(key, after).then(
        async (snapshot) => {
          let size = 0;
          for (const r of snapshot.records) size += MAILBOX_HEADER_BYTES + r.payload.length;
          if (this.#transferBytes + size > this.options.maxTransferBytes) return this.#sendStream(peer, requestId, this.#refusal(MailboxStatus.BUSY));
          const stream = encodeMailboxReadStream({
            status: MailboxStatus.OK,
            usedBytes: snapshot.bytes,
            usedEntries: snapshot.entries,
            head: snapshot.head,
            records: snapshot.records.map((r) => ({ header: r.header, payload: r.payload })),
          });
          // The reader pays for what it asks the relay to send (a 45-byte request can fetch megabytes).
          if (!this.#hooks!.charge(peer, 0, stream.length)) return;
          this.#transferBytes += stream.length;
          try {
            await this.#sendStream(peer, requestId, stream);
          } finally {
            this.#transferBytes -= stream.length;
          }
        },
        () => this.#sendStream(peer, requestId, this.#refusal(MailboxStatus.UNAVAILABLE)),
      ),
    );
  }

  /** @internal MB_PUT: a piece of the payload of the write that follows. */
  onPut(peer: MailboxPeer, frame: Buffer): void {
    const { requestId, offset, piece } = decodeMailboxPut(frame);
    let upload = this.#uploads.get(peer);
    if (offset === 0 || upload === undefined || upload.requestId !== requestId) {
      if (upload !== undefined) this.forget(peer);
      upload = { requestId, chunks: [], bytes: 0, failed: 0 };
      this.#uploads.set(peer, upload);
      if (offset !== 0) upload.failed = MailboxStatus.BAD_RECORD;
    }
    if (upload.failed !== 0) return;
    if (offset !== upload.bytes) {
      upload.failed = MailboxStatus.BAD_RECORD;
    } else if (upload.bytes + piece.length > this.options.maxEntryBytes) {
      upload.failed = MailboxStatus.TOO_LARGE;
    } else if (this.#transferBytes + piece.length > this.options.maxTransferBytes) {
      upload.failed = MailboxStatus.BUSY;
    }
    if (upload.failed !== 0) {
      this.#transferBytes -= upload.bytes;
      upload.chunks = [];
      upload.bytes = 0;
      return;
    }
    // A copy: the frame's buffer belongs to the socket layer.
    upload.chunks.push(Buffer.from(piece));
    upload.bytes += piece.length;
    this.#transferBytes += piece.length;
  }

  /** @internal MB_WRITE: verify, check the rate, commit, answer MB_RESULT. */
  onWrite(peer: MailboxPeer, frame: Buffer): void {
    const { requestId, mailbox, header, tail } = decodeMailboxWrite(frame);
    const key = Buffer.from(mailbox);
    const upload = this.#uploads.get(peer);
    let payload: Buffer;
    if (upload !== undefined && upload.requestId === requestId) {
      this.forget(peer);
      if (upload.failed !== 0) return this.#result(peer, requestId, upload.failed);
      payload = Buffer.concat([...upload.chunks, tail]);
    } else {
      payload = Buffer.from(tail);
    }
    this.#stats.writes++;
    const h = decodeMailboxHeader(header);
    if (h === null || h.length !== payload.length) return this.#result(peer, requestId, MailboxStatus.BAD_RECORD);
    if (payload.length > this.options.maxEntryBytes) return this.#result(peer, requestId, MailboxStatus.TOO_LARGE);
    if (!sameBytes(createHash('sha256').update(payload).digest(), h.digest)) return this.#result(peer, requestId, MailboxStatus.BAD_RECORD);
    if (!verifySignature(key, header)) return this.#result(peer, requestId, MailboxStatus.BAD_SIGNATURE);
    if (!this.#take(key.toString('hex'))) return this.#result(peer, requestId, MailboxStatus.RATE);
    const o = this.options;
    void this.#track(
      this.store
        .commit({
          mailbox: key,
          header: Buffer.from(header),
          op: h.op,
          counter: h.counter,
          prev: h.prev,
          payload,
          now: this.#now(),
          limits: { maxMailboxBytes: o.maxMailboxBytes, maxEntries: o.maxEntries, maxMailboxes: o.maxMailboxes },
        })
        .then(
          (r) => {
            if (r.status === MailboxStatus.OK) this.#stats.bytesStored += payload.length;
            this.#result(peer, requestId, r.status, r.head, r.bytes, r.entries);
          },
          () => this.#result(peer, requestId, MailboxStatus.UNAVAILABLE),
        ),
    );
  }

  // ---- helpers --------------------------------------------------------------------------------

  #result(peer: MailboxPeer, requestId: number, status: number, head = 0, bytes = 0, entries = 0): void {
    if (status !== MailboxStatus.OK) this.#countRefusal(status);
    if (!peer.done) this.#hooks?.send(peer, encodeMailboxResult(requestId, status, head, bytes, entries));
  }

  #refusal(status: number): Uint8Array {
    this.#countRefusal(status);
    return Uint8Array.of(status);
  }

  #countRefusal(status: number): void {
    const name = mailboxStatusName(status);
    this.#stats.refused[name] = (this.#stats.refused[name] ?? 0) + 1;
  }

  /** Sends a reply stream as MB_DATA frames, waiting while the client's socket is backed up. */
  async #sendStream(peer: MailboxPeer, requestId: number, stream: Uint8Array): Promise<void> {
    const room = this.#maxFrameSize - MB_DATA_HEADER_BYTES;
    let offset = 0;
    do {
      if (peer.done) return;
      // Bounded wait: a client that stops reading is cut by the core's slow-consumer rule, which sets `done`.
      for (let waited = 0; peer.socket.bufferedAmount > this.#paceBytes && !peer.done && !this.#closed && waited < 60_000; waited += 5) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      if (peer.done) return;
      const end = Math.min(stream.length, offset + room);
      this.#hooks?.send(peer, encodeMailboxData(requestId, end === stream.length, stream.subarray(offset, end)));
      this.#stats.bytesServed += end - offset;
      offset = end;
    } while (offset < stream.length);
  }

  /** Takes a write token of the mailbox's bucket; false when it is empty. */
  #take(key: string): boolean {
    const now = this.#now();
    const rate = this.options.writesPerMinute / 60_000;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= 2 * this.options.maxMailboxes + 1024) this.#pruneBuckets(now, rate);
      bucket = { tokens: this.options.writeBurst, at: now };
      this.#buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(this.options.writeBurst, bucket.tokens + (now - bucket.at) * rate);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Drops buckets that refilled completely (they hold no information). */
  #pruneBuckets(now: number, rate: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + (now - b.at) * rate >= this.options.writeBurst) this.#buckets.delete(key);
    }
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#inFlight.add(promise);
    void promise.finally(() => this.#inFlight.delete(promise)).catch(() => undefined);
    return promise;
  }
}
