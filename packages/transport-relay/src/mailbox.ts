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

/** What a {@link RelayMailbox} holds once it read or wrote: pending requests, request ids, the write chain. */
interface MailboxIo {
  reads: Map<number, PendingRead> | null;
  writes: Map<number, PendingWrite> | null;
  nextRequestId: number;
  writeChain: Promise<unknown> | null;
}

/**
 * The relay client's access to the relay's mailbox ({@link MailboxAccess}): MB_READ / MB_PUT /
 * MB_WRITE out, MB_DATA / MB_RESULT / MB_OFFER in, on the transport's one socket. Writes go
 * one at a time (a payload larger than a frame is sent as MB_PUT pieces, then MB_WRITE with the
 * rest), reads may overlap. A lost session rejects what is pending with `ERR_CONNECT_FAILED`.
 *
 * Abstract: the relay transport's own subclass is also its {@link MailboxLinkHost} (one object
 * per transport, not an access and a host — every relay transport has one, and few read or write:
 * ARCHITECTURE § Memory of an idle replica). It declares no `#` methods (they would cost each
 * instance a slot).
 */
export abstract class RelayMailbox implements MailboxAccess {
  #offer: MailboxOffer | null = null;
  /**
   * Offer listeners: the only one itself (a database has one), or an array of exactly them from
   * a second on (a Set is ~150 B of heap, an array of one 32 B).
   */
  #listeners: MailboxOfferListener | MailboxOfferListener[] | null = null;
  /** Made at the first read or write (then kept): every relay transport has a mailbox access, few of them read or write. */
  #io: MailboxIo | null = null;

  /** @internal What the access needs of its transport's current session. */
  protected abstract linkHost(): MailboxLinkHost;

  private listening(listener: MailboxOfferListener): boolean {
    const listeners = this.#listeners;
    return listeners === listener || (Array.isArray(listeners) && listeners.includes(listener));
  }

  private io(): MailboxIo {
    return (this.#io ??= { reads: null, writes: null, nextRequestId: 1, writeChain: null });
  }

  /** The relay of the current session (its URL): mailbox state is kept per relay. */
  /** Its listeners may be objects (`{ handleOffer }`): see MailboxAccess.objectListeners. */
  get objectListeners(): boolean {
    return true;
  }

  get serverId(): string {
    return this.linkHost().url;
  }

  get offer(): MailboxOffer | null {
    return this.#offer;
  }

  onOffer(listener: MailboxOfferListener): () => void {
    // A set's semantics (a listener is held once), in the listener itself or an array of exactly
    // the listeners (a `push` would give it 17 slots).
    const listeners = this.#listeners;
    if (listeners === null) this.#listeners = listener;
    else if (!this.listening(listener)) this.#listeners = Array.isArray(listeners) ? listeners.concat([listener]) : [listeners, listener];
    if (this.#offer !== null) {
      queueMicrotask(() => {
        if (this.#offer !== null && this.listening(listener)) callOfferListener(listener, this.#offer);
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
    const link = this.ready(options.signal);
    const requestId = this.requestId();
    const limit = (this.#offer?.maxMailboxBytes ?? 0) + READ_SLACK_BYTES;
    return this.bounded<MailboxReadResult>(options.signal, 'a mailbox read', (resolve, reject, touch) => {
      const io = this.io();
      const reads = (io.reads ??= new Map());
      reads.set(requestId, { chunks: [], bytes: 0, limit, touch, resolve, reject });
      link.send(encodeMailboxRead(requestId, mailbox, after));
      return () => reads.delete(requestId);
    });
  }

  write(mailbox: Uint8Array, header: Uint8Array, payload: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<MailboxWriteResult> {
    const io = this.io();
    const run = (io.writeChain ?? Promise.resolve()).then(() => this.writeNow(mailbox, header, payload, options.signal));
    io.writeChain = run.catch(() => undefined);
    return run;
  }

  private async writeNow(mailbox: Uint8Array, header: Uint8Array, payload: Uint8Array, signal: AbortSignal | undefined): Promise<MailboxWriteResult> {
    const link = this.ready(signal);
    const requestId = this.requestId();
    const host = this.linkHost();
    const frame = host.relayMaxFrame();
    const tailRoom = frame - MB_WRITE_HEADER_BYTES;
    const putRoom = frame - MB_PUT_HEADER_BYTES;
    let offset = 0;
    // Everything but what fits behind the MB_WRITE header goes ahead as MB_PUT pieces.
    while (payload.length - offset > tailRoom) {
      const piece = payload.subarray(offset, Math.min(payload.length, offset + putRoom));
      link.send(encodeMailboxPut(requestId, offset, piece));
      offset += piece.length;
      if (link.bufferedAmount > host.highWaterMark) await link.whenDrained(host.highWaterMark / 2);
      if (!link.open || host.currentLink() !== link) throw new ConnectFailedError(`lost the session with relay ${host.url} during a mailbox write`);
      if (signal?.aborted) throw new AbortError();
    }
    return this.bounded<MailboxWriteResult>(signal, 'a mailbox write', (resolve, reject) => {
      const io = this.io();
      const writes = (io.writes ??= new Map());
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
    const io = this.#io;
    if (io === null) return; // never read nor wrote: nothing pending
    const reads = io.reads === null ? [] : [...io.reads.values()];
    const writes = io.writes === null ? [] : [...io.writes.values()];
    io.reads?.clear();
    io.writes?.clear();
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
        if (isMailboxDataFrame(frame)) this.onData(frame);
        return true;
      case MailboxFrameType.MB_RESULT:
        if (isMailboxResultFrame(frame)) this.onResult(frame);
        return true;
      default:
        return false;
    }
  }

  private onData(frame: Uint8Array): void {
    const requestId = mailboxRequestId(frame);
    const reads = this.#io?.reads;
    const pending = reads?.get(requestId);
    if (pending === undefined) return;
    const bytes = frame.slice(MB_DATA_HEADER_BYTES);
    pending.bytes += bytes.length;
    pending.touch();
    if (pending.bytes > pending.limit) {
      reads?.delete(requestId);
      pending.reject(new MailboxRefusedError(this.serverId, 'BAD_RECORD', MailboxStatus.BAD_RECORD));
      return;
    }
    pending.chunks.push(bytes);
    if (frame[5] !== 1) return;
    reads?.delete(requestId);
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

  private onResult(frame: Uint8Array): void {
    const r = decodeMailboxResult(frame);
    const writes = this.#io?.writes;
    const pending = writes?.get(r.requestId);
    if (pending === undefined) return;
    writes?.delete(r.requestId);
    if (r.status === MailboxStatus.OK) {
      pending.resolve({ head: r.head, usedBytes: r.usedBytes, usedEntries: r.usedEntries });
    } else if (r.status === MailboxStatus.FULL) {
      pending.reject(new MailboxFullError(this.serverId, `mailbox is full (${r.usedBytes} bytes, ${r.usedEntries} records)`));
    } else {
      pending.reject(new MailboxRefusedError(this.serverId, mailboxStatusName(r.status), r.status, Number.isNaN(r.head) ? 0 : r.head));
    }
  }

  // ---- helpers --------------------------------------------------------------------------------

  private ready(signal: AbortSignal | undefined): Link {
    if (signal?.aborted) throw new AbortError();
    const host = this.linkHost();
    const link = host.currentLink();
    if (link === null || !link.open || this.#offer === null) {
      throw new ConnectFailedError(`relay ${host.url} offers no mailbox in the current session`);
    }
    return link;
  }

  private requestId(): number {
    const io = this.io();
    const id = io.nextRequestId;
    io.nextRequestId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  /**
   * Runs a request bounded by `timeoutMs` of silence (a long read that keeps receiving data is
   * not cut) and by the signal. `start` registers it and returns its clean-up.
   */
  private bounded<T>(
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
          const host = this.linkHost();
          reject(new TimeoutError(`timed out after ${host.timeoutMs} ms waiting for ${what} from ${host.url}`));
        }, this.linkHost().timeoutMs);
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
