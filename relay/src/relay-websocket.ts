/**
 * The relay server's WebSocket class: a `ws` WebSocket that delivers its events to the relay
 * core without EventEmitter listeners ({@link DirectSocket}, direct-socket.ts). Listeners added
 * with `on` still run (after the core), so it stays an ordinary `ws` WebSocket to anyone else.
 *
 * Two more things a relay holding thousands of idle sockets does not pay per socket
 * (BENCHMARKS.md § Issue 12, Session 8 (srvmem)):
 * - With `autoPong: false` in the server's options, `ws` makes no pong-completion closure per
 *   socket (~0.15 KiB with its context and counters); the socket hands each ping to the core,
 *   which charges it to the connection's rate limits and answers it with a pong (a client that
 *   pings without reading what it is sent is cut as a slow consumer, where `ws` counted unanswered
 *   pongs). With `ws`'s default `autoPong: true` nothing changes: `ws` answers, the core never sees it.
 * - With no extension negotiated (the relay turns permessage-deflate off), every socket shares
 *   one frozen empty extensions object instead of an own `{}` (56 B): `ws` only reads it then.
 *
 * And `send` frames small binary messages itself (see {@link RelayWebSocket.send}): the relay's
 * hot path, with half of `ws`'s garbage per message; and whole binary frames that arrive whole in
 * one read are parsed here too (see {@link onSocketData}), everything else by `ws`'s Receiver.
 *
 * @packageDocumentation
 */
import type { ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import type { DirectEvents, DirectSocket } from './direct-socket.js';

/** The extensions of a socket that negotiated none (see the module description). */
const NO_EXTENSIONS: object = Object.freeze({});

/** The `ws` internals this class reads or replaces (ws 8). */
interface WsInternals {
  _extensions?: object;
  _autoPong?: boolean;
  _socket?: { write(chunk: Buffer): boolean } | null;
  /** `ws`'s Sender: `_state` 0 when it queues nothing (no compression or Blob read in progress). */
  _sender?: { _state?: number } | null;
  _readyState?: number;
  /** False for a client socket: frames from a server must NOT be masked (ws's Receiver checks). */
  _isServer?: boolean;
  _receiver?: WsReceiver;
}

/** The state of `ws`'s Receiver (ws 8, lib/receiver.js) that {@link onSocketData} checks. */
interface WsReceiver {
  /** 0: GET_INFO, waiting for a frame's first byte. */
  _state: number;
  _bufferedBytes: number;
  _fragmented: number;
  _errored: boolean;
  _opcode: number;
  _maxPayload: number;
  _binaryType: string;
  _allowSynchronousEvents: boolean;
  _writableState: { length: number; ending: boolean };
  write(chunk: Buffer): boolean;
}

/** `ws`'s `setSocket` (not in its types). */
type SetSocket = (this: WebSocket, socket: Duplex, head: Buffer, options: object) => void;
const wsSetSocket = (WebSocket.prototype as unknown as { setSocket: SetSocket }).setSocket;
/** The symbol under which `ws` keeps a socket's WebSocket (`socket[kWebSocket]`), found on the first socket. */
let kWebSocket: symbol | undefined;

/**
 * Binary messages up to this size are framed by {@link RelayWebSocket.send} itself: header and
 * payload copied into one buffer from Node's pool (under 4 KiB) and written in one call.
 */
const SMALL_MESSAGE_BYTES = 4000;

/**
 * The relay server's WebSocket class: a `ws` WebSocket with {@link DirectSocket.bindEvents}.
 *
 * @example
 * ```ts
 * const wss = new WebSocketServer({ noServer: true, autoPong: false, WebSocket: RelayWebSocket });
 * wss.handleUpgrade(req, socket, head, (ws) => core.attach(ws, { ip }));
 * ```
 */
export class RelayWebSocket extends WebSocket implements DirectSocket {
  #events: DirectEvents<unknown> | null = null;
  #target: unknown = null;

  // ws's own overloads (a server makes its sockets with `null`): the class stays a `typeof WebSocket`.
  constructor(address: null);
  constructor(address: string | URL, options?: WebSocket.ClientOptions | ClientRequestArgs);
  constructor(address: string | URL, protocols?: string | string[], options?: WebSocket.ClientOptions | ClientRequestArgs);
  constructor(...args: unknown[]) {
    super(...(args as ConstructorParameters<typeof WebSocket>));
    const ws = this as unknown as WsInternals;
    // Before the upgrade completes: `ws` replaces it with its own object when an extension is accepted.
    if (typeof ws._extensions === 'object' && Object.keys(ws._extensions).length === 0) ws._extensions = NO_EXTENSIONS;
  }

  /**
   * Small frames sent to this socket while a read of some connection is being handled
   * ({@link onSocketData}), written in one socket write when that read is done (see
   * {@link RelayWebSocket.send}): a payload, or several in order. Null when none is waiting.
   */
  #out: Uint8Array | Uint8Array[] | null = null;

  /**
   * As `ws`'s `send`, with a shortcut for what a relay sends most: a small binary message with
   * no options and no callback. A server's frames are not masked, so the frame is the 2- or
   * 4-byte header followed by the payload: it is built in one buffer and written in one socket
   * write, where `ws`'s Sender makes an options object, a header buffer, an array and a corked
   * two-buffer write per message — about half the garbage per relayed frame (fewer young-
   * generation collections while a relay is busy; BENCHMARKS.md § Issue 12, Session 8 (srvmem)).
   * While a received read is being handled ({@link onSocketData}), such messages wait until the
   * read is done (the same macrotask, before any I/O) and every socket then gets ONE write with
   * all of its frames — a newcomer's JOINED and PEER_JOINED frames, the answers a peer's read
   * holds for another peer — instead of a socket write each (a write costs Node's stream and
   * write-request objects, ~0.2 KiB: BENCHMARKS.md § Issue 12, Session 10 (srvmem)).
   * Anything else goes through `ws` (large messages stay zero-copy there), as does any message
   * while `ws`'s Sender has frames queued; frames waiting here are written first, so the order on
   * the wire is the order of the calls.
   */
  override send(data: Parameters<WebSocket['send']>[0], options?: Parameters<WebSocket['send']>[1] | ((err?: Error) => void), cb?: (err?: Error) => void): void {
    if (options === undefined && cb === undefined && data instanceof Uint8Array && data.length <= SMALL_MESSAGE_BYTES && RelayWebSocket.#sendSmall(this, data)) return;
    if (this.#out !== null) RelayWebSocket.flush(this);
    if (typeof options === 'function') super.send(data, options);
    else if (options === undefined) super.send(data, cb);
    else super.send(data, options, cb);
  }

  // Control frames, the close and the end go after the frames waiting (see {@link RelayWebSocket.send}):
  // what was sent before `terminate()` is handed to the kernel before the socket is destroyed, as
  // it was when every send wrote at once.
  override ping(data?: unknown, mask?: boolean, cb?: (err: Error) => void): void {
    if (this.#out !== null) RelayWebSocket.flush(this);
    super.ping(data, mask, cb);
  }

  override pong(data?: unknown, mask?: boolean, cb?: (err: Error) => void): void {
    if (this.#out !== null) RelayWebSocket.flush(this);
    super.pong(data, mask, cb);
  }

  override close(code?: number, data?: string | Buffer): void {
    if (this.#out !== null) RelayWebSocket.flush(this);
    super.close(code, data);
  }

  override terminate(): void {
    if (this.#out !== null) RelayWebSocket.flush(this);
    super.terminate();
  }

  /** See {@link RelayWebSocket.send}: false when `ws` must send it (not open, or its Sender busy). */
  static #sendSmall(ws: RelayWebSocket, data: Uint8Array): boolean {
    const internals = ws as unknown as WsInternals;
    const socket = internals._socket;
    if (ws.readyState !== WebSocket.OPEN || socket === undefined || socket === null || internals._sender?._state !== 0) return false;
    if (batchDepth === 0) {
      socket.write(frameOne(data));
      return true;
    }
    // Inside a read's handling: the payload waits (the caller owns it and never changes it once
    // sent: the core rewrites a frame's header before it sends it, as it must for `ws` too).
    const out = ws.#out;
    if (out === null) {
      ws.#out = data;
      waiting.push(ws);
    } else if (out instanceof Uint8Array) ws.#out = [out, data];
    else out.push(data);
    return true;
  }

  /** Writes the frames waiting for `ws` (see {@link RelayWebSocket.send}), if it is still open. */
  static flush(ws: RelayWebSocket): void {
    const out = ws.#out;
    if (out === null) return;
    ws.#out = null;
    const socket = (ws as unknown as WsInternals)._socket;
    if (ws.readyState !== WebSocket.OPEN || socket === undefined || socket === null) return;
    socket.write(out instanceof Uint8Array ? frameOne(out) : frameMany(out));
  }

  /**
   * `ws` calls this once the upgrade is done; its `'data'` listener is swapped for
   * {@link onSocketData} (one shared function, as `ws`'s own). Not in `ws`'s types.
   */
  setSocket(socket: Duplex, head: Buffer, options: object): void {
    wsSetSocket.call(this, socket, head, options);
    const withSymbols = socket as unknown as Record<symbol, unknown>;
    kWebSocket ??= Object.getOwnPropertySymbols(socket).find((key) => key.description === 'websocket' && withSymbols[key] === this);
    const receiver = (this as unknown as WsInternals)._receiver;
    // A server's socket only: the parser takes masked frames, which a client must refuse.
    if (kWebSocket === undefined || receiver === undefined || (this as unknown as WsInternals)._isServer !== true || receiver._binaryType !== 'nodebuffer' || !receiver._allowSynchronousEvents) return;
    for (const listener of socket.listeners('data')) {
      if ((listener as { name?: string }).name !== 'socketOnData') continue;
      socket.removeListener('data', listener as (chunk: Buffer) => void);
      socket.on('data', onSocketData);
      break;
    }
  }

  bindEvents<T>(events: DirectEvents<T>, target: T): void {
    this.#events = events as DirectEvents<unknown>;
    this.#target = target;
  }

  // `ws` emits every event with at most two arguments; listeners get exactly the ones given.
  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const events = this.#events;
    const count = arguments.length - 1;
    if (events === null) return emitListeners(this, count, event, a, b);
    const target = this.#target;
    switch (event) {
      case 'message':
        events.message(target, a as Buffer | ArrayBuffer | Buffer[], b as boolean);
        break;
      case 'ping':
        // Answered by `ws` itself unless the server turned its autoPong off (then: the core decides).
        if ((this as unknown as WsInternals)._autoPong !== true && events.ping(target, a as Buffer)) this.pong(a as Buffer, false);
        return emitListeners(this, count, event, a, b);
      case 'pong':
        events.pong(target);
        break;
      case 'close':
        this.#events = null;
        this.#target = null;
        events.close(target);
        break;
      case 'error':
        events.error(target, a as Error & { code?: string });
        break;
      default:
        return emitListeners(this, count, event, a, b);
    }
    // An `error` nobody else listens to is handled (the core counted it): no throw.
    if (this.listenerCount(event) > 0) emitListeners(this, count, event, a, b);
    return true;
  }
}

const emit = WebSocket.prototype.emit;

/**
 * Sockets with frames waiting ({@link RelayWebSocket.send}) while a read is handled, and how many
 * reads are being handled (a message handler could, in principle, feed another socket's data in).
 */
const waiting: RelayWebSocket[] = [];
let batchDepth = 0;

/** Writes every waiting socket's frames, in the order the sockets first got one. */
function flushWaiting(): void {
  // Index loop: a flush never queues more (batchDepth is 0 again), but stay safe if it did.
  for (let i = 0; i < waiting.length; i++) RelayWebSocket.flush(waiting[i]!);
  waiting.length = 0;
}

/** `data` as an unmasked binary frame (2- or 4-byte header, then the payload) in one buffer from Node's pool. */
function frameOne(data: Uint8Array): Buffer {
  const n = data.length;
  const frame = Buffer.allocUnsafe(n + (n < 126 ? 2 : 4));
  frame.set(data, writeHeader(frame, 0, n));
  return frame;
}

/** The payloads as unmasked binary frames, one after another, in one buffer. */
function frameMany(list: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (let i = 0; i < list.length; i++) total += list[i]!.length + (list[i]!.length < 126 ? 2 : 4);
  const frame = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < list.length; i++) {
    const data = list[i]!;
    at = writeHeader(frame, at, data.length);
    frame.set(data, at);
    at += data.length;
  }
  return frame;
}

/** Writes the header of a final binary frame of `n` (< 65,536) bytes at `at`; returns where its payload goes. */
function writeHeader(frame: Buffer, at: number, n: number): number {
  frame[at] = 0x82; // FIN, binary
  if (n < 126) {
    frame[at + 1] = n;
    return at + 2;
  }
  frame[at + 1] = 126; // 16-bit length follows
  frame[at + 2] = n >>> 8;
  frame[at + 3] = n & 0xff;
  return at + 4;
}

/** ws's readyState CLOSED: its Receiver's listeners are gone, messages go nowhere. */
const CLOSED = 3;

/**
 * The server socket's `'data'` listener (instead of `ws`'s `socketOnData`): while `ws`'s Receiver
 * is between frames with nothing buffered, every whole, final, masked binary frame of the chunk
 * (RSV bits clear, a 7- or 16-bit length within `maxPayload`) is unmasked in place and emitted as
 * `ws` would — a `Buffer` view of the chunk, synchronously, in order; the first frame that is
 * anything else (a control frame, text, a fragment, a frame cut by the end of the read, anything
 * malformed) and all after it go to the Receiver, which handles (or rejects) them exactly as
 * before. For the relay's traffic — small binary frames, several per read — this makes one object
 * per message where the Receiver makes six or more (header and mask views, a fragment array, the
 * Writable's bookkeeping) and keeps the last mask and fragment array until the next frame: garbage
 * that outlives young-generation collections during a connect burst, grows V8's young generation
 * and, promoted, leaves old-space pages behind (BENCHMARKS.md § Issue 12, Session 9 (srvmem)).
 */
function onSocketData(this: Duplex, chunk: Buffer): void {
  batchDepth++;
  try {
    readFrames(this, chunk);
  } finally {
    if (--batchDepth === 0 && waiting.length > 0) flushWaiting();
  }
}

/** {@link onSocketData}'s body: the frames of one read. */
function readFrames(socket: Duplex, chunk: Buffer): void {
  const ws = (socket as unknown as Record<symbol, RelayWebSocket | undefined>)[kWebSocket!];
  if (ws === undefined) return;
  const internals = ws as unknown as WsInternals;
  const r = internals._receiver!;
  let off = 0;
  if (r._state === 0 && r._bufferedBytes === 0 && r._fragmented === 0 && !r._errored && r._opcode !== 0x08 && r._writableState.length === 0) {
    const end = chunk.length;
    const max = r._maxPayload;
    while (end - off >= 6 && chunk[off] === 0x82) {
      const b1 = chunk[off + 1]!;
      if (b1 < 0x80) break; // not masked: the Receiver closes with 1002
      let n = b1 & 0x7f;
      let p = off + 2;
      if (n === 126) {
        n = (chunk[p]! << 8) | chunk[p + 1]!;
        p += 2;
      } else if (n === 127) break;
      if ((max > 0 && n > max) || end - p < 4 + n) break;
      const m0 = chunk[p]!;
      const m1 = chunk[p + 1]!;
      const m2 = chunk[p + 2]!;
      const m3 = chunk[p + 3]!;
      p += 4;
      const stop = p + n;
      for (let i = p; i < stop; i += 4) {
        chunk[i] = chunk[i]! ^ m0;
        if (i + 1 < stop) chunk[i + 1] = chunk[i + 1]! ^ m1;
        if (i + 2 < stop) chunk[i + 2] = chunk[i + 2]! ^ m2;
        if (i + 3 < stop) chunk[i + 3] = chunk[i + 3]! ^ m3;
      }
      off = stop;
      if (internals._readyState !== CLOSED) ws.emit('message', chunk.subarray(p, stop), true);
    }
    if (off === end) return;
  }
  const more = r.write(off === 0 ? chunk : chunk.subarray(off));
  if (r._errored || r._writableState.ending) {
    // A close frame or a protocol error: ws's receiverOnConclude / receiverOnError take ITS 'data'
    // listener off and resume the socket, so the rest of the stream is dropped and the client's
    // FIN is seen at once. This listener goes too (kept, it would write to the ended Receiver,
    // whose refusals pause the socket: a client's later bytes kept, its close unseen until ws's
    // close timer).
    socket.removeListener('data', onSocketData);
    return;
  }
  if (!more) socket.pause();
}

/**
 * The listeners' emit, with exactly the arguments given. (A function, not a private method: a
 * private method puts a brand on every instance, one more slot per socket.)
 */
function emitListeners(ws: RelayWebSocket, count: number, event: string | symbol, a: unknown, b: unknown): boolean {
  return count <= 0 ? emit.call(ws, event) : count === 1 ? emit.call(ws, event, a) : emit.call(ws, event, a, b);
}
