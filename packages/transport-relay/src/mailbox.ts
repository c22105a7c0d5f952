import {
  AbortError,
  ConnectFailedError,
  MailboxFullError,
  MailboxRefusedError,
  MailboxStatus,
  TimeoutError,
  mailboxStatusName,
  callOfferListener,
  type MailboxAccess,
  type MailboxOffer,
  type MailboxOfferListener,
  type MailboxReadResult,
  type MailboxWriteResult,
} from '@rhizome/core';
import type { Link } from './link.js';
import {
  MB_DATA_HEADER_BYTES,
  MB_PUT_HEADER_BYTES,
  MB_WRITE_HEADER_BYTES,
  MailboxFrameType,
  decodeMailboxOffer,
  decodeMailboxReadStream,
  decodeMailboxResult,
  encodeMailboxPut,
  encodeMailboxRead,
  encodeMailboxWrite,
  isMailboxDataFrame,
  isMailboxOfferFrame,
  isMailboxResultFrame,
  mailboxRequestId,
} from './mailbox-wire.js';

/** @internal What the mailbox client needs of its transport's current session. */
export interface MailboxLinkHost {
  readonly url: string;
  readonly timeoutMs: number;
  readonly highWaterMark: number;
  /** The link of the session that is up, or null. */
  currentLink(): Link | null;
  /** The relay's largest frame in this session (0 before WELCOME). */
  relayMaxFrame(): number;
}

interface PendingRead {
  chunks: Uint8Array[];
  bytes: number;
  limit: number;
  touch: () => void;
  resolve: (result: MailboxReadResult) => void;
  reject: (error: unknown) => void;
}

interface PendingWrite {
  resolve: (result: MailboxWriteResult) => void;
  reject: (error: unknown) => void;
}

/** Bytes a read reply may hold beyond the offered mailbox size (stream header, record headers). */
const READ_SLACK_BYTES = 1024 * 1024;

/**
 * The relay client's access to the relay's mailbox ({@link MailboxAccess}): MB_READ / MB_PUT /
 * MB_WRITE out, MB_DATA / MB_RESULT / MB_OFFER in, on the transport's one socket. Writes go
 * one at a time (a payload larger than a frame is sent as MB_PUT pieces, then MB_WRITE with the
 * rest), reads may overlap. A lost session rejects what is pending with `ERR_CONNECT_FAILED`.
 */
export class RelayMailbox implements MailboxAccess {
  readonly #host: MailboxLinkHost;
  #offer: MailboxOffer | null = null;
  /**
   * Offer listeners: the only one itself (a database has one), or an array of exactly them from
   * a second on (a Set is ~150 B of heap, an array of one 32 B).
   */
  #listeners: MailboxOfferListener | MailboxOfferListener[] | null = null;

  #listening(listener: MailboxOfferListener): boolean {
    const listeners = this.#listeners;
    return listeners === listener || (Array.isArray(listeners) && listeners.includes(listener));
  }
  // Made on first use: every relay transport has a mailbox access, few of them read or write.
  #reads: Map<number, PendingRead> | null = null;
  #writes: Map<number, PendingWrite> | null = null;
  #nextRequestId = 1;
  #writeChain: Promise<unknown> | null = null;

  /** @internal Built by {@link RelayTransport}. */
  constructor(host: MailboxLinkHost) {
    this.#host = host;
  }

  /** The relay of the current session (its URL): mailbox state is kept per relay. */
  /** Its listeners may be objects (`{ handleOffer }`): see MailboxAccess.objectListeners. */
  get objectListeners(): boolean {
    return true;
  }

  get serverId(): string {
    return this.#host.url;
  }

  get offer(): MailboxOffer | null {
    return this.#offer;
  }

  onOffer(listener: MailboxOfferListener): () => void {
    // A set's semantics (a listener is held once), in the listener itself or an array of exactly
    // the listeners (a `push` would give it 17 slots).
    const listeners = this.#listeners;
    if (listeners === null) this.#listeners = listener;
    else if (!this.#listening(listener)) this.#listeners = Array.isArray(listeners) ? listeners.concat([listener]) : [listeners, listener];
    if (this.#offer !== null) {
      queueMicrotask(() => {
        if (this.#offer !== null && this.#listening(listener)) callOfferListener(listener, this.#offer);
      });
    }
    return () => this.offOffer(listener);
  }

  offOffer(listener: MailboxOfferListener): void {
    const listeners = this.#listeners;
    if (listeners === listener) this.#listeners = null;
    else if (Array.isArray(listeners) && listeners.includes(listener)) {
      const rest = listeners.filter((l) => l !== listener);
      this.#listeners = rest.length === 1 ? rest[0]! : rest;
    }
  }

  read(mailbox: Uint8Array, after: number, options: { signal?: AbortSignal } = {}): Promise<MailboxReadResult> {
    const link = this.#ready(options.signal);
    const requestId = this.#requestId();
    const limit = (this.#offer?.maxMailboxBytes ?? 0) + READ_SLACK_BYTES;
    return this.#bounded<MailboxReadResult>(options.signal, 'a mailbox read', (resolve, reject, touch) => {
      const reads = (this.#reads ??= new Map());
      reads.set(requestId, { chunks: [], bytes: 0, limit, touch, resolve, reject });
      link.send(encodeMailboxRead(requestId, mailbox, after));
      return () => reads.delete(requestId);
    });
  }

  write(mailbox: Uint8Array, header: Uint8Array, payload: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<MailboxWriteResult> {
    const run = (this.#writeChain ?? Promise.resolve()).then(() => this.#write(mailbox, header, payload, options.signal));
    this.#writeChain = run.catch(() => undefined);
    return run;
  }

  async #write(mailbox: Uint8Array, header: Uint8Array, payload: Uint8Array, signal: AbortSignal | undefined): Promise<MailboxWriteResult> {
    const link = this.#ready(signal);
    const requestId = this.#requestId();
    const frame = this.#host.relayMaxFrame();
    const tailRoom = frame - MB_WRITE_HEADER_BYTES;
    const putRoom = frame - MB_PUT_HEADER_BYTES;
    let offset = 0;
    // Everything but what fits behind the MB_WRITE header goes ahead as MB_PUT pieces.
    while (payload.length - offset > tailRoom) {
      const piece = payload.subarray(offset, Math.min(payload.length, offset + putRoom));
      link.send(encodeMailboxPut(requestId, offset, piece));
      offset += piece.length;
      if (link.bufferedAmount > this.#host.highWaterMark) await link.whenDrained(this.#host.highWaterMark / 2);
      if (!link.open || this.#host.currentLink() !== link) throw new ConnectFailedError(`lost the session with relay ${this.#host.url} during a mailbox write`);
      if (signal?.aborted) throw new AbortError();
    }
    return this.#bounded<MailboxWriteResult>(signal, 'a mailbox write', (resolve, reject) => {
      const writes = (this.#writes ??= new Map());
      writes.set(requestId, { resolve, reject });
      link.send(encodeMailboxWrite(requestId, mailbox, header, payload.subarray(offset)));
      return () => writes.delete(requestId);
    });
  }

  // ---- hooks called by the transport ---------------------------------------------------------

  /** @internal A new session came up: its offer (if any) follows WELCOME. */
  onSession(): void {
    this.#offer = null;
  }

  /** @internal The session ended: pending requests fail, the offer is gone. */
  onSessionLost(error: unknown): void {
    this.#offer = null;
    const reads = this.#reads === null ? [] : [...this.#reads.values()];
    const writes = this.#writes === null ? [] : [...this.#writes.values()];
    this.#reads?.clear();
    this.#writes?.clear();
    for (const r of reads) r.reject(error);
    for (const w of writes) w.reject(error);
  }

  /** @internal A mailbox frame from the relay; returns false when the type is not one. */
  onFrame(frame: Uint8Array): boolean {
    switch (frame[0]) {
      case MailboxFrameType.MB_OFFER: {
        const offer = isMailboxOfferFrame(frame) ? decodeMailboxOffer(frame) : null;
        if (offer === null) return true; // another version: no mailbox for this client
        this.#offer = offer;
        const listeners = this.#listeners;
        for (const listener of listeners === null ? [] : Array.isArray(listeners) ? [...listeners] : [listeners]) {
          try {
            callOfferListener(listener, offer);
          } catch {
            // A throwing listener must not break frame dispatch.
          }
        }
        return true;
      }
      case MailboxFrameType.MB_DATA:
        if (isMailboxDataFrame(frame)) this.#onData(frame);
        return true;
      case MailboxFrameType.MB_RESULT:
        if (isMailboxResultFrame(frame)) this.#onResult(frame);
        return true;
      default:
        return false;
    }
  }

  #onData(frame: Uint8Array): void {
    const requestId = mailboxRequestId(frame);
    const pending = this.#reads?.get(requestId);
    if (pending === undefined) return;
    const bytes = frame.slice(MB_DATA_HEADER_BYTES);
    pending.bytes += bytes.length;
    pending.touch();
    if (pending.bytes > pending.limit) {
      this.#reads?.delete(requestId);
      pending.reject(new MailboxRefusedError(this.serverId, 'BAD_RECORD', MailboxStatus.BAD_RECORD));
      return;
    }
    pending.chunks.push(bytes);
    if (frame[5] !== 1) return;
    this.#reads?.delete(requestId);
    const stream = concat(pending.chunks, pending.bytes);
    const reply = decodeMailboxReadStream(stream);
    if (reply === null) {
      pending.reject(new MailboxRefusedError(this.serverId, 'BAD_RECORD', MailboxStatus.BAD_RECORD));
      return;
    }
    if (reply.status !== MailboxStatus.OK) {
      pending.reject(new MailboxRefusedError(this.serverId, mailboxStatusName(reply.status), reply.status));
      return;
    }
    pending.resolve({ head: reply.head, records: reply.records, usedBytes: reply.usedBytes, usedEntries: reply.usedEntries });
  }

  #onResult(frame: Uint8Array): void {
    const r = decodeMailboxResult(frame);
    const pending = this.#writes?.get(r.requestId);
    if (pending === undefined) return;
    this.#writes?.delete(r.requestId);
    if (r.status === MailboxStatus.OK) {
      pending.resolve({ head: r.head, usedBytes: r.usedBytes, usedEntries: r.usedEntries });
    } else if (r.status === MailboxStatus.FULL) {
      pending.reject(new MailboxFullError(this.serverId, `mailbox is full (${r.usedBytes} bytes, ${r.usedEntries} records)`));
    } else {
      pending.reject(new MailboxRefusedError(this.serverId, mailboxStatusName(r.status), r.status, Number.isNaN(r.head) ? 0 : r.head));
    }
  }

  // ---- helpers --------------------------------------------------------------------------------

  #ready(signal: AbortSignal | undefined): Link {
    if (signal?.aborted) throw new AbortError();
    const link = this.#host.currentLink();
    if (link === null || !link.open || this.#offer === null) {
      throw new ConnectFailedError(`relay ${this.#host.url} offers no mailbox in the current session`);
    }
    return link;
  }

  #requestId(): number {
    const id = this.#nextRequestId;
    this.#nextRequestId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  /**
   * Runs a request bounded by `timeoutMs` of silence (a long read that keeps receiving data is
   * not cut) and by the signal. `start` registers it and returns its clean-up.
   */
  #bounded<T>(
    signal: AbortSignal | undefined,
    what: string,
    start: (resolve: (value: T) => void, reject: (error: unknown) => void, touch: () => void) => () => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let cleanup: () => void = () => undefined;
      const finish = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        cleanup();
      };
      const onAbort = (): void => {
        finish();
        reject(new AbortError());
      };
      const touch = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          finish();
          reject(new TimeoutError(`timed out after ${this.#host.timeoutMs} ms waiting for ${what} from ${this.#host.url}`));
        }, this.#host.timeoutMs);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      touch();
      cleanup = start(
        (value) => {
          finish();
          resolve(value);
        },
        (error) => {
          finish();
          reject(error);
        },
        touch,
      );
    });
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
