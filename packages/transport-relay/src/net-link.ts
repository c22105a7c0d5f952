/**
 * The relay link in Node without `ws`: a WebSocket client (RFC 6455) written on the TCP or TLS
 * socket itself, for the one thing the relay transport needs — binary messages to and from one
 * relay.
 *
 * Why: `ws` keeps per open socket a `WebSocket`, its `Receiver` (a `Writable` stream with its
 * state), its `Sender` and the listener records around them — ~1.25 KiB of heap per socket — and
 * opens it through Node's HTTP client, whose parser and request live until the upgrade (a connect
 * burst promotes them; the parser then waits in Node's pool). An idle replica holds one relay socket,
 * so that was the largest block of an idle replica's heap that Rhizome chooses (BENCHMARKS.md §
 * Issue 12, Session 15 (heaptrim)). Here a link is one small object on the socket: the frames are
 * read from the socket's chunks by {@link NetLink.receive} and written as a header and the payload.
 *
 * What it does, as `ws` does for this client: the opening handshake (`GET` with `Upgrade:
 * websocket`, `Sec-WebSocket-Version: 13` and a random key; the answer must be `101` with `Upgrade:
 * websocket` and the key's `Sec-WebSocket-Accept`, and no extension or subprotocol, which are never
 * asked for); binary and text messages, fragmented or not (text is dropped: the relay protocol is
 * binary, but checked for UTF-8); pings answered with pongs; the close handshake both ways (a
 * close frame answered with the same code; a link that sent one waits {@link CLOSE_TIMEOUT_MS} for
 * the relay's before it drops the socket); `maxPayload` (a message above it is answered with a
 * close frame 1009, checked from the frame's header, before its payload is buffered); framing
 * errors (reserved bits, a masked frame from the server, an unknown opcode, a fragmented or long
 * control frame, a stray continuation, a close code a peer may not send: 1002; text or a close
 * reason not UTF-8: 1007), after which nothing more is read. The close reported is the relay's
 * code and reason, 1005 for a close frame without a code, 1006 for a socket lost without one or
 * after such an error (as `ws`). Frames are sent masked with an all-zero key (as the `ws` link
 * did: ARCHITECTURE.md § Relay).
 *
 * Node only: the sockets come from `process.getBuiltinModule` (no `node:` import for a bundler to
 * follow). `implementation: 'ws'` keeps `ws`, `'global'` the platform's `WebSocket`.
 *
 * @packageDocumentation
 */
import { ConnectFailedError } from '@rhizome/core';
import type * as NodeCrypto from 'node:crypto';
import type * as NodeNet from 'node:net';
import type * as NodeTls from 'node:tls';
import { NO_LINK_HANDLER, releaseDrainWaiters, type DrainWaiter, type Link, type LinkHandler, type LinkOptions } from './link-shape.js';

type Socket = NodeNet.Socket;

interface NodeModules {
  net: typeof NodeNet;
  tls: typeof NodeTls;
  crypto: typeof NodeCrypto;
}

let modules: NodeModules | null | undefined;

/** `node:net`, `node:tls` and `node:crypto`, or null where there is no `process.getBuiltinModule` (browsers, Node < 20.16). */
export function nodeModules(): NodeModules | null {
  if (modules !== undefined) return modules;
  modules = null;
  try {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const get = proc?.getBuiltinModule;
    if (typeof get === 'function') {
      const net = get.call(proc, 'node:net') as NodeModules['net'] | undefined;
      const tls = get.call(proc, 'node:tls') as NodeModules['tls'] | undefined;
      const crypto = get.call(proc, 'node:crypto') as NodeModules['crypto'] | undefined;
      if (net !== undefined && tls !== undefined && crypto !== undefined) modules = { net, tls, crypto };
    }
  } catch {
    // No Node builtins: the caller uses another implementation.
  }
  return modules;
}

/** How long a link that sent a close frame waits for the relay's before it drops the socket (as `ws`). */
export const CLOSE_TIMEOUT_MS = 30_000;
/** The longest answer head read while opening. */
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** Bits of {@link NetLink}'s `#flags`. */
const CLOSE_SENT = 1;
const CLOSE_RECEIVED = 2;
const REPORTED = 4;
const CORKED = 8;
/** Frames read while the opening settles wait for {@link startLink} (the owner sets its handler first). */
const HOLD = 16;
/** A fragmented message in progress is text (dropped when whole). */
const FRAGMENT_TEXT = 32;
/** The socket ended, was destroyed or failed: nothing more is written. */
const GONE = 64;

/** Nothing more is read after a framing error (see {@link NetLink.fail}). */
const READ_STOPPED = 128;
/** A link that reads no more: closed, dropped, the relay's close frame read, or a framing error. */
const STOP = REPORTED | GONE | CLOSE_RECEIVED | READ_STOPPED;

/** The link (or the opening) of a socket: a property of the socket, so its listeners are shared functions. */
const LINK = Symbol('rhizome.netLink');

type LinkedSocket = Socket & { [LINK]?: NetLink | NetOpening | undefined };

/** The links with drain waiters (usually none); see `link.ts` `afterWrite` for why every write checks. */
const draining = new Set<NetLink>();

/** The callback of every frame written: wakes the drain waiters whose mark was reached. */
function afterWrite(): void {
  if (draining.size === 0) return;
  for (const link of draining) if (!link.releaseDrain(false)) draining.delete(link);
}

function uncorkLink(link: NetLink): void {
  link.uncork();
}

function startLink(link: NetLink): void {
  link.start();
}

/** The rare state of a link: a message arriving in fragments, a close in progress (null on an idle link). */
interface LinkRare {
  /** The fragments of the message being received. */
  fragments: Uint8Array[] | null;
  fragmentBytes: number;
  /** The relay's close code and reason (1006 until its close frame is read). */
  code: number;
  reason: string;
  /** The close code of a framing error found here (1002, 1007, 1009: what `ws`'s Receiver names it), else 0. */
  failure: number;
  closeTimer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * An open WebSocket to a relay on a Node socket (see the module description). Its fields are what an
 * idle link needs; the rest is in a rare record made when a message arrives in fragments or a close
 * begins.
 */
export class NetLink implements Link {
  readonly url: string;
  readonly #socket: LinkedSocket;
  handler: LinkHandler = NO_LINK_HANDLER;
  /** Bytes read and not yet parsed (a partial frame): chunks, and how many bytes the next parse needs. */
  #pending: Buffer[] | null = null;
  #pendingBytes = 0;
  #need = 0;
  #flags = HOLD;
  readonly #maxPayload: number;
  #drainWaiters: DrainWaiter[] | null = null;
  #rare: LinkRare | null = null;

  constructor(url: string, socket: LinkedSocket, maxPayload: number, head: Buffer | null) {
    this.url = url;
    this.#socket = socket;
    this.#maxPayload = maxPayload;
    socket[LINK] = this;
    if (head !== null && head.length > 0) this.hold(head);
    // Frames that came with (or right after) the answer are parsed once the owner had its turn to set
    // the handler (the promise of the opening resolves before this runs).
    setImmediate(startLink, this);
  }

  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  get open(): boolean {
    return (this.#flags & (CLOSE_SENT | CLOSE_RECEIVED | GONE)) === 0;
  }

  send(frame: Uint8Array): void {
    if (!this.open) return;
    if ((this.#flags & CORKED) === 0) this.cork();
    this.writeFrame(OP_BINARY, frame, afterWrite);
    // As the `ws` link: a large frame leaves at once with what was queued before it.
    if (frame.length >= UNCORK_BYTES && (this.#flags & CORKED) !== 0) this.uncork();
  }

  private writeHeader(opcode: number, length: number): void {
    // FIN, the opcode; the mask bit with an all-zero key (the payload is sent as it is).
    let header: Buffer;
    if (length < 126) {
      header = Buffer.allocUnsafe(6);
      header[1] = 0x80 | length;
      header.writeUInt32BE(0, 2);
    } else if (length < 0x10000) {
      header = Buffer.allocUnsafe(8);
      header[1] = 0x80 | 126;
      header.writeUInt16BE(length, 2);
      header.writeUInt32BE(0, 4);
    } else {
      header = Buffer.allocUnsafe(14);
      header[1] = 0x80 | 127;
      header.writeUInt32BE(Math.floor(length / 0x100000000), 2);
      header.writeUInt32BE(length >>> 0, 6);
      header.writeUInt32BE(0, 10);
    }
    header[0] = 0x80 | opcode;
    this.#socket.write(header);
  }

  private writeFrame(opcode: number, payload: Uint8Array, callback?: () => void): void {
    if (opcode >= OP_CLOSE) {
      // A control frame (at most 125 bytes): header and payload in one write.
      const frame = Buffer.allocUnsafe(6 + payload.length);
      frame[0] = 0x80 | opcode;
      frame[1] = 0x80 | payload.length;
      frame.writeUInt32BE(0, 2);
      frame.set(payload, 6);
      this.#socket.write(frame);
      return;
    }
    this.writeHeader(opcode, payload.length);
    if (payload.length > 0) this.#socket.write(payload, callback);
    else if (callback !== undefined) this.#socket.write(EMPTY, callback);
  }

  private cork(): void {
    if ((this.#flags & GONE) !== 0) return;
    this.#socket.cork();
    this.#flags |= CORKED;
    process.nextTick(uncorkLink, this);
  }

  /** @internal The end of a tick that sent frames: one write for all of them. */
  uncork(): void {
    if ((this.#flags & CORKED) === 0) return;
    this.#flags &= ~CORKED;
    this.#socket.uncork();
  }

  /** @internal Resolves the drain waiters whose mark was reached (all with `all`); true while some wait. */
  releaseDrain(all: boolean): boolean {
    const waiters = this.#drainWaiters;
    if (waiters === null) return false;
    this.#drainWaiters = releaseDrainWaiters(waiters, this.#socket.writableLength, all);
    return this.#drainWaiters !== null;
  }

  whenDrained(lowWater: number): Promise<void> {
    if (!this.open || this.#socket.writableLength <= lowWater) return Promise.resolve();
    draining.add(this);
    return new Promise((resolve) => (this.#drainWaiters ??= []).push({ lowWater, resolve }));
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  close(code: number, reason: string): void {
    if ((this.#flags & (CLOSE_SENT | GONE)) !== 0) return;
    this.sendClose(code, reason);
  }

  terminate(): void {
    this.#flags |= GONE;
    this.#socket.destroy();
  }

  private rareState(): LinkRare {
    return (this.#rare ??= { fragments: null, fragmentBytes: 0, code: 1006, reason: '', failure: 0, closeTimer: undefined });
  }

  private sendClose(code: number, reason: string): void {
    this.#flags |= CLOSE_SENT;
    const text = Buffer.from(reason, 'utf8');
    const body = Buffer.allocUnsafe(2 + Math.min(text.length, 123));
    body.writeUInt16BE(code, 0);
    text.copy(body, 2, 0, body.length - 2);
    this.uncork();
    this.writeFrame(OP_CLOSE, body);
    if ((this.#flags & CLOSE_RECEIVED) !== 0) {
      this.end();
      return;
    }
    const rare = this.rareState();
    rare.closeTimer = setTimeout(closeTimedOut, CLOSE_TIMEOUT_MS, this);
    rare.closeTimer.unref?.();
  }

  private end(): void {
    if ((this.#flags & GONE) !== 0) return;
    this.#flags |= GONE;
    this.#socket.end();
    // As `ws`: a socket ended here is dropped if the relay does not end its side in time (a relay
    // that sent its close frame, or its FIN, and then went quiet would otherwise hold the socket
    // half-open for good, and the close would never be reported).
    const rare = this.rareState();
    if (rare.closeTimer === undefined) {
      rare.closeTimer = setTimeout(closeTimedOut, CLOSE_TIMEOUT_MS, this);
      rare.closeTimer.unref?.();
    }
  }

  /** @internal The close handshake was not answered in time. */
  closeTimedOut(): void {
    this.terminate();
  }

  /**
   * A framing error or an oversized message, handled as `ws` handles one: nothing more is read, a
   * close frame with `code` tells the relay why, and the socket goes when the relay closes it (or
   * after {@link CLOSE_TIMEOUT_MS}). The close reported is then 1006, as with `ws`, which reads
   * nothing after its error and so never the relay's answer.
   */
  private fail(code: number): void {
    this.rareState().failure = code;
    this.#pending = null;
    const closing = (this.#flags & (CLOSE_SENT | GONE)) !== 0;
    this.#flags |= READ_STOPPED;
    if (!closing) this.sendClose(code, '');
  }

  /** @internal The socket closed: report once. */
  closed(): void {
    if ((this.#flags & REPORTED) !== 0) return;
    this.#flags |= REPORTED | GONE;
    this.#pending = null;
    const rare = this.#rare;
    if (rare !== null) clearTimeout(rare.closeTimer);
    this.releaseDrain(true);
    draining.delete(this);
    this.handler.onLinkClose(this, rare === null ? 1006 : rare.code, rare === null ? '' : rare.reason);
  }

  /** @internal The relay ended its side of the socket (without a close frame, or after it). */
  ended(): void {
    this.readHeld();
    this.end();
  }

  /** @internal The socket failed (it closes next, reported as 1006 unless a close frame was read). */
  failed(): void {
    this.readHeld();
    this.terminate();
  }

  /**
   * Frames still held for the owner (see the constructor) are read before the socket's end or
   * error is: a relay that refuses a client at once (TOO_MANY_CONNECTIONS, ...) sends its close
   * frame with the 101 answer and may drop the socket right after — the code must not become 1006.
   * (The owner set its handler: the opening's promise settled in the microtasks after the read.)
   */
  private readHeld(): void {
    if ((this.#flags & HOLD) !== 0) this.start();
  }

  /** @internal The close code `ws`'s Receiver gives the framing error found here (0: none). */
  get failureCode(): number {
    return this.#rare?.failure ?? 0;
  }

  /** @internal Parsing may begin (see the constructor). */
  start(): void {
    if ((this.#flags & HOLD) === 0) return;
    this.#flags &= ~HOLD;
    const held = this.#pending;
    if (held === null) return;
    this.#pending = null;
    this.#pendingBytes = 0;
    this.parse(held.length === 1 ? held[0]! : Buffer.concat(held));
  }

  private hold(chunk: Buffer): void {
    if (this.#pending === null) this.#pending = [chunk];
    else this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
  }

  /** @internal A chunk read from the socket. */
  receive(chunk: Buffer): void {
    if ((this.#flags & STOP) !== 0) return;
    if ((this.#flags & HOLD) !== 0) return this.hold(chunk);
    let off = 0;
    // A frame (or frame header) cut by the previous read: completed with just the bytes it lacks,
    // so only its own bytes are copied, never the whole read.
    while (this.#pending !== null) {
      const want = this.#need - this.#pendingBytes;
      if (chunk.length - off < want) return this.hold(off === 0 ? chunk : chunk.subarray(off));
      const parts = this.#pending;
      parts.push(chunk.subarray(off, off + want));
      off += want;
      const whole = Buffer.concat(parts, this.#need);
      this.#pending = null;
      this.#pendingBytes = 0;
      // (A header completed this way leaves the frame pending again, with its full length as the need.)
      this.parse(whole);
      if ((this.#flags & STOP) !== 0) return;
    }
    if (off < chunk.length) this.parse(off === 0 ? chunk : chunk.subarray(off));
  }

  /** Parses the whole frames of `data` and keeps the rest pending (with the bytes it needs in `#need`). */
  private parse(data: Buffer): void {
    this.#need = 0;
    let off = 0;
    const end = data.length;
    while ((this.#flags & STOP) === 0) {
      if (end - off < 2) {
        this.#need = 2;
        break;
      }
      const b0 = data[off]!;
      const b1 = data[off + 1]!;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      let length = b1 & 0x7f;
      // What the first two bytes decide, before an extended length is read, as `ws`'s Receiver
      // decides it (the same close codes for the same streams: net-link-diff.test.ts).
      if ((b0 & 0x70) !== 0) return this.fail(1002);
      const control = opcode >= 8;
      if (control) {
        if (opcode > OP_PONG || !fin || length > 125 || (opcode === OP_CLOSE && length === 1)) return this.fail(1002);
      } else {
        if (opcode > OP_BINARY) return this.fail(1002);
        const fragments = this.#rare?.fragments ?? null;
        if (opcode === OP_CONTINUATION ? fragments === null : fragments !== null) return this.fail(1002);
      }
      if ((b1 & 0x80) !== 0) return this.fail(1002);
      let header = 2;
      if (length === 126) {
        if (end - off < 4) {
          this.#need = 4;
          break;
        }
        length = data.readUInt16BE(off + 2);
        header = 4;
      } else if (length === 127) {
        if (end - off < 10) {
          this.#need = 10;
          break;
        }
        const high = data.readUInt32BE(off + 2);
        // (Beyond 2^53 − 1 a length is not a safe number; any such message is too large anyway.)
        if (high > 0x1fffff) return this.fail(1009);
        length = high * 0x100000000 + data.readUInt32BE(off + 6);
        header = 10;
      }
      if (!control && this.#maxPayload > 0) {
        const fragments = this.#rare?.fragments ?? null;
        if ((fragments === null ? 0 : this.#rare!.fragmentBytes) + length > this.#maxPayload) return this.fail(1009);
      }
      if (end - off < header + length) {
        this.#need = header + length;
        break;
      }
      const start = off + header;
      off = start + length;
      if (!control) {
        this.data(opcode, fin, data, start, length);
        continue;
      }
      if (opcode === OP_PING) {
        if (this.open) this.writeFrame(OP_PONG, data.subarray(start, start + length));
      } else if (opcode === OP_CLOSE) {
        if (!this.closeFrame(data, start, length)) return;
      }
      // (A pong: nothing to do.)
    }
    if (off < end && (this.#flags & STOP) === 0) {
      // A partial frame: its bytes are copied out of the read chunk (which may be 64 KiB) unless it is most of it.
      const rest = end - off < data.length / 2 ? Buffer.from(data.subarray(off, end)) : data.subarray(off, end);
      this.#pending = [rest];
      this.#pendingBytes = rest.length;
      if (this.#need < 2) this.#need = 2;
    } else {
      this.#need = 0;
    }
  }

  private data(opcode: number, fin: boolean, data: Buffer, start: number, length: number): void {
    const rare = this.#rare;
    if (fin && (rare === null || rare.fragments === null)) {
      if (opcode === OP_BINARY) this.handler.onLinkFrame(this, new Uint8Array(data.buffer, data.byteOffset + start, length));
      // Text is dropped (the relay protocol is binary), but checked as `ws` checks it.
      else if (!isUtf8(data.subarray(start, start + length))) this.fail(1007);
      return;
    }
    const r = this.rareState();
    if (r.fragments === null) {
      r.fragments = [];
      r.fragmentBytes = 0;
      if (opcode === OP_TEXT) this.#flags |= FRAGMENT_TEXT;
      else this.#flags &= ~FRAGMENT_TEXT;
    }
    r.fragments.push(Uint8Array.from(data.subarray(start, start + length)));
    r.fragmentBytes += length;
    if (!fin) return;
    const parts = r.fragments;
    const total = r.fragmentBytes;
    r.fragments = null;
    r.fragmentBytes = 0;
    const message = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      message.set(p, o);
      o += p.length;
    }
    if ((this.#flags & FRAGMENT_TEXT) === 0) this.handler.onLinkFrame(this, message);
    else if (!isUtf8(message)) this.fail(1007);
  }

  /** A close frame: answered (unless this side closed first), then the socket ends. False: stop parsing. */
  private closeFrame(data: Buffer, start: number, length: number): boolean {
    if (length === 1) {
      this.fail(1002);
      return false;
    }
    const code = length === 0 ? 1005 : data.readUInt16BE(start);
    if (length > 0 && !validCloseCode(code)) {
      this.fail(1002);
      return false;
    }
    if (length > 2 && !isUtf8(data.subarray(start + 2, start + length))) {
      this.fail(1007);
      return false;
    }
    const rare = this.rareState();
    rare.code = code;
    rare.reason = length > 2 ? data.toString('utf8', start + 2, start + length) : '';
    const sent = (this.#flags & CLOSE_SENT) !== 0;
    this.#flags |= CLOSE_RECEIVED;
    if (sent) this.end();
    else {
      this.#flags |= CLOSE_SENT;
      const body = Buffer.allocUnsafe(length === 0 ? 0 : 2);
      if (length > 0) body.writeUInt16BE(rare.code, 0);
      this.uncork();
      this.writeFrame(OP_CLOSE, body);
      this.end();
    }
    return false;
  }
}

const EMPTY = new Uint8Array(0);

/** A close code a peer may send (RFC 6455 § 7.4; what `ws` accepts). */
function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

let utf8Decoder: TextDecoder | null = null;

/** True if `bytes` are valid UTF-8 (text messages and close reasons are checked, as `ws` does). */
function isUtf8(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return true;
  try {
    (utf8Decoder ??= new TextDecoder('utf-8', { fatal: true })).decode(bytes);
    return true;
  } catch {
    return false;
  }
}
/** As the `ws` link's `UNCORK_AT_BYTES` (link.ts). */
const UNCORK_BYTES = 64 * 1024;

function closeTimedOut(link: NetLink): void {
  link.closeTimedOut();
}

/** A socket being opened: what its listeners settle (in the socket's {@link LINK} slot until then). */
interface NetOpening {
  readonly url: string;
  readonly resolve: (link: Link) => void;
  readonly reject: (error: unknown) => void;
  readonly accept: string;
  readonly maxPayload: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  head: Buffer | null;
}

/** The socket's listeners: one function each for every socket (`this` is the socket), as the link or the opening needs. */
function onData(this: LinkedSocket, chunk: Buffer): void {
  const owner = this[LINK];
  if (owner instanceof NetLink) owner.receive(chunk);
  else if (owner !== undefined) readAnswer(this, owner, chunk);
}

function onEnd(this: LinkedSocket): void {
  const owner = this[LINK];
  if (owner instanceof NetLink) owner.ended();
  else if (owner !== undefined) hungUp(this);
}

function onClose(this: LinkedSocket): void {
  const owner = this[LINK];
  if (owner instanceof NetLink) owner.closed();
  else if (owner !== undefined) hungUp(this);
}

/**
 * The relay ended or closed the socket before answering the upgrade: reported as Node's HTTP client
 * (and so `ws`) reports it, `socket hang up` with the code `ECONNRESET` in the cause — what the CLI
 * reads to tell `ws://` to a TLS relay, or `wss://` to a plain one (cli/src/tls-hints.ts).
 */
function hungUp(socket: LinkedSocket): void {
  failOpening(socket, 'socket hang up', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
}

function onError(this: LinkedSocket, error: Error): void {
  const owner = this[LINK];
  // An open link's socket error ends in 'close' (reported there as 1006).
  if (owner instanceof NetLink) owner.failed();
  else if (owner !== undefined) failOpening(this, error.message, error);
}

function openTimedOut(socket: LinkedSocket, ms: number): void {
  failOpening(socket, `no answer within ${ms} ms`);
}

function failOpening(socket: LinkedSocket, why: string, cause?: unknown): void {
  const opening = socket[LINK];
  if (opening === undefined || opening instanceof NetLink) return;
  socket[LINK] = undefined;
  clearTimeout(opening.timer);
  socket.destroy();
  opening.reject(new ConnectFailedError(`cannot connect to relay ${opening.url}: ${why}`, cause === undefined ? undefined : { cause }));
}

/** Reads the relay's answer to the upgrade request; once it is whole, the link takes the socket. */
function readAnswer(socket: LinkedSocket, opening: NetOpening, chunk: Buffer): void {
  const data = opening.head === null ? chunk : Buffer.concat([opening.head, chunk]);
  const headEnd = data.indexOf('\r\n\r\n', Math.max(0, (opening.head?.length ?? 0) - 3), 'latin1');
  if (headEnd < 0) {
    if (data.length > MAX_RESPONSE_HEAD_BYTES) failOpening(socket, 'the answer head is too large');
    else opening.head = data;
    return;
  }
  const lines = data.toString('latin1', 0, headEnd).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]!);
  if (status === null) return failOpening(socket, 'not an HTTP answer');
  if (status[1] !== '101') return failOpening(socket, `HTTP ${status[1]} instead of a WebSocket upgrade`);
  let upgrade: string | undefined;
  let accept: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return failOpening(socket, 'invalid header line in the answer');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'upgrade') upgrade = value;
    else if (name === 'sec-websocket-accept') accept = value;
    else if (name === 'sec-websocket-protocol') return failOpening(socket, 'the relay chose a subprotocol, none was asked for');
    else if (name === 'sec-websocket-extensions') return failOpening(socket, 'the relay chose an extension, none was asked for');
  }
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return failOpening(socket, 'invalid Upgrade header');
  if (accept !== opening.accept) return failOpening(socket, 'invalid Sec-WebSocket-Accept header');
  clearTimeout(opening.timer);
  socket[LINK] = undefined;
  socket.setNoDelay(true);
  const rest = data.length > headEnd + 4 ? Buffer.from(data.subarray(headEnd + 4)) : null;
  opening.resolve(new NetLink(opening.url, socket, opening.maxPayload, rest));
}

/**
 * Opens a relay link on a Node socket: resolves once the relay answered the upgrade; rejects with
 * {@link ConnectFailedError} naming the URL when the socket fails, closes, answers otherwise or not
 * within `timeoutMs`. A URL that is not `ws:` or `wss:` rejects too.
 */
export function openNetLink(url: string, options: LinkOptions, node: NodeModules): Promise<Link> {
  return new Promise<Link>((resolve, reject) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (error) {
      reject(new ConnectFailedError(`cannot connect to relay ${url}: invalid URL`, { cause: error }));
      return;
    }
    const secure = parsed.protocol === 'wss:';
    if (!secure && parsed.protocol !== 'ws:') {
      reject(new ConnectFailedError(`cannot connect to relay ${url}: the URL's scheme must be ws: or wss:`));
      return;
    }
    const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
    const port = parsed.port === '' ? (secure ? 443 : 80) : Number(parsed.port);
    let socket: LinkedSocket;
    try {
      if (secure) {
        const tlsOptions: NodeTls.ConnectionOptions = { host, port };
        if (node.net.isIP(host) === 0) tlsOptions.servername = host;
        const ca = options.tls?.ca;
        if (ca !== undefined) tlsOptions.ca = Array.isArray(ca) ? ca.map((c) => (typeof c === 'string' ? c : Buffer.from(c))) : typeof ca === 'string' ? ca : Buffer.from(ca);
        if (options.tls?.rejectUnauthorized !== undefined) tlsOptions.rejectUnauthorized = options.tls.rejectUnauthorized;
        socket = node.tls.connect(tlsOptions);
      } else {
        socket = node.net.connect({ host, port });
      }
    } catch (error) {
      reject(new ConnectFailedError(`cannot connect to relay ${url}: ${(error as Error).message}`, { cause: error }));
      return;
    }
    const key = node.crypto.randomBytes(16).toString('base64');
    const accept = node.crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
    socket[LINK] = { url, resolve, reject, accept, maxPayload: options.maxPayload, head: null, timer: setTimeout(openTimedOut, options.timeoutMs, socket, options.timeoutMs) };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
    let request = `GET ${parsed.pathname}${parsed.search} HTTP/1.1\r\nHost: ${parsed.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n`;
    if (parsed.username !== '' || parsed.password !== '') request += `Authorization: Basic ${Buffer.from(`${parsed.username}:${parsed.password}`).toString('base64')}\r\n`;
    socket.write(`${request}\r\n`, 'latin1');
  });
}
