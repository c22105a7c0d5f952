import { ConnectFailedError } from '@rhizome/core';
import type { ClientOptions, WebSocket as WsSocket } from 'ws';
import { NO_LINK_HANDLER, releaseDrainWaiters, type DrainWaiter, type Link, type LinkHandler, type LinkOptions, type WebSocketImplementation } from './link-shape.js';
import { nodeModules, openNetLink } from './net-link.js';

export type { Link, LinkHandler, LinkOptions, LinkTlsOptions, WebSocketImplementation } from './link-shape.js';
export { NO_LINK_HANDLER } from './link-shape.js';

/** True in Node (and Bun/Deno's Node mode), where a Node socket is used so TLS options apply. */
function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions === 'object' && typeof process.versions.node === 'string';
}

/**
 * The implementation used when none is forced: `net` in Node (`ws` in a Node without
 * `process.getBuiltinModule`, before 20.16), the global WebSocket elsewhere.
 */
export function defaultImplementation(): WebSocketImplementation {
  if (isNode()) return nodeModules() !== null ? 'net' : 'ws';
  return typeof globalThis.WebSocket !== 'function' ? 'ws' : 'global';
}

function view(data: unknown): Uint8Array | null {
  // A plain Uint8Array view (not a Buffer), so consumers see the same type everywhere.
  if (data instanceof Uint8Array) return data.constructor === Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data)) {
    const parts = data as Uint8Array[];
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
  return null;
}

/** The TCP/TLS socket under a `ws` WebSocket (`ws` keeps it as `_socket`; absent in other implementations). */
function rawSocket(ws: WsSocket): { cork(): void; uncork(): void } | undefined {
  const socket = (ws as unknown as { _socket?: { cork?: unknown; uncork?: unknown } })._socket;
  return socket !== undefined && typeof socket.cork === 'function' && typeof socket.uncork === 'function'
    ? (socket as { cork(): void; uncork(): void })
    : undefined;
}

/** A frame of at least this many bytes is written at once, not held for the end of the tick (see {@link WsLink.send}). */
export const UNCORK_AT_BYTES = 64 * 1024;

/**
 * Ends a tick's batch of frames. A session's opening (step 1, awareness, step 2 to each peer,
 * flow-control windows) and a turn's updates are many small frames sent in one tick; `ws`
 * writes each as its own `writev`, so the relay would read them one TCP segment at a time —
 * each read is a 64 KiB allocation in Node that a burst of thousands of connections turns into
 * allocator fragmentation the relay keeps (BENCHMARKS.md § Issue 12, Session 6). Corked, the
 * tick's frames leave in one write. Frames are unchanged and no later than before (the same tick).
 */
function uncorkLink(link: WsLink): void {
  link.uncork();
}

/** The link of a `ws` socket (a property of the socket: see {@link wsMessage}). */
const LINK = Symbol('rhizome.link');

type LinkedSocket = WsSocket & { [LINK]?: WsLink };

/**
 * The socket's 'message' and 'close' listeners: one function each for every socket (`this` is the
 * socket, which names its link), not two closures and their context per link.
 */
function wsMessage(this: LinkedSocket, data: unknown, isBinary: boolean): void {
  const link = this[LINK];
  if (!isBinary || link === undefined) return;
  const frame = view(data);
  if (frame) link.handler.onLinkFrame(link, frame);
}

function wsClose(this: LinkedSocket, code: number, reason: Buffer): void {
  const link = this[LINK];
  if (link === undefined) return;
  link.closed(code, reason.toString('utf8'));
}

/**
 * The links with drain waiters ({@link WsLink.whenDrained}): usually none. A link leaves it when
 * its last waiter is released or it closes.
 */
const draining = new Set<WsLink>();

/**
 * The callback of every frame a link hands `ws`: one function for every link, not a closure per
 * link (~0.1 KiB of heap per idle replica). A write that completed may have brought some link's
 * `bufferedAmount` down to a waiter's low-water mark, so the links that wait are looked at; `ws`
 * calls it once per frame, and with nobody waiting it returns at once. (A callback made only
 * once a waiter exists would miss the writes queued before it: nothing would wake the waiter.)
 */
function afterWrite(): void {
  if (draining.size === 0) return;
  // (Deleting the entry being visited is safe in a Set's iteration; resolving a waiter runs nothing now.)
  for (const link of draining) if (!link.releaseDrain(false)) draining.delete(link);
}

class WsLink implements Link {
  readonly url: string;
  readonly #ws: LinkedSocket;
  /** Null while none waits (an idle link holds no list). */
  #drainWaiters: DrainWaiter[] | null = null;
  handler: LinkHandler = NO_LINK_HANDLER;

  constructor(url: string, ws: WsSocket) {
    this.url = url;
    this.#ws = ws;
    this.#ws[LINK] = this;
    ws.on('message', wsMessage);
    ws.on('close', wsClose);
  }

  /** @internal The socket closed. */
  closed(code: number, reason: string): void {
    this.releaseDrain(true);
    draining.delete(this);
    this.handler.onLinkClose(this, code, reason);
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  get open(): boolean {
    return this.#ws.readyState === 1;
  }

  send(frame: Uint8Array): void {
    if (!this.#corked) this.cork();
    this.#ws.send(frame, afterWrite);
    // A large frame (a chunk of a step 2 or catch-up: up to 1 MiB) leaves at once, with the frames
    // queued before it, instead of at the end of the tick: a sender seals and sends a 4 MB state
    // as 4 frames in one tick, and corked they all waited for the last seal, so the relay and the
    // receiver started on the first only after it (~5 ms later per MiB sealed after it, BENCHMARKS.md
    // § Issue 12, Session 11 (cold)). What the cork saves — one write and one relay read per
    // tick of small frames — is nothing next to such a frame.
    if (frame.length >= UNCORK_AT_BYTES && this.#corked) this.uncork();
  }

  /** Frames sent in this tick wait in the socket and leave as one write at the end of it (see {@link uncorkLink}). */
  #corked = false;

  // (TypeScript-private methods, not `#`: a class with `#` methods costs each instance a slot,
  // ARCHITECTURE § Memory of an idle replica; a database with a relay transport holds a link.)
  private cork(): void {
    const socket = rawSocket(this.#ws);
    if (socket === undefined || this.#ws.readyState !== 1) return;
    socket.cork();
    this.#corked = true;
    process.nextTick(uncorkLink, this);
  }

  /** @internal The end of a tick that sent frames: hand them to the kernel as one write. */
  uncork(): void {
    this.#corked = false;
    rawSocket(this.#ws)?.uncork();
  }

  /**
   * @internal Resolves the drain waiters whose low-water mark `bufferedAmount` reached (all of
   * them with `all`); true while some still wait.
   */
  releaseDrain(all: boolean): boolean {
    const waiters = this.#drainWaiters;
    if (waiters === null) return false;
    this.#drainWaiters = releaseDrainWaiters(waiters, this.#ws.bufferedAmount, all);
    return this.#drainWaiters !== null;
  }

  whenDrained(lowWater: number): Promise<void> {
    if (!this.open || this.#ws.bufferedAmount <= lowWater) return Promise.resolve();
    draining.add(this);
    return new Promise((resolve) => (this.#drainWaiters ??= []).push({ lowWater, resolve }));
  }

  pause(): void {
    this.#ws.pause();
  }

  resume(): void {
    this.#ws.resume();
  }

  close(code: number, reason: string): void {
    if (this.#ws.readyState === 0) this.#ws.terminate();
    else this.#ws.close(code, reason);
  }

  /** Destroys the socket without a close handshake. */
  terminate(): void {
    this.#ws.terminate();
  }
}

/** Polling interval of `whenDrained` in browsers, which have no drain event. */
const BROWSER_DRAIN_POLL_MS = 10;

class GlobalLink implements Link {
  readonly url: string;
  readonly #ws: WebSocket;
  handler: LinkHandler = NO_LINK_HANDLER;
  /** Set once the close was reported (terminate reports it at once; the socket's event then is not). */
  #closeReported = false;

  constructor(url: string, ws: WebSocket) {
    this.url = url;
    this.#ws = ws;
    ws.onmessage = (event: MessageEvent) => {
      const frame = view(event.data);
      if (frame) this.handler.onLinkFrame(this, frame);
    };
    ws.onclose = (event: CloseEvent) => this.#reportClose(event.code, event.reason);
  }

  #reportClose(code: number, reason: string): void {
    if (this.#closeReported) return;
    this.#closeReported = true;
    this.handler.onLinkClose(this, code, reason);
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  get open(): boolean {
    return this.#ws.readyState === 1;
  }

  send(frame: Uint8Array): void {
    this.#ws.send(frame);
  }

  async whenDrained(lowWater: number): Promise<void> {
    while (this.open && this.#ws.bufferedAmount > lowWater) {
      await new Promise((resolve) => setTimeout(resolve, BROWSER_DRAIN_POLL_MS));
    }
  }

  pause(): void {}

  resume(): void {}

  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }

  terminate(): void {
    // Browsers have no terminate: start the close, and report the link gone now.
    this.#ws.onmessage = null;
    this.#ws.close();
    this.#reportClose(1006, 'terminated');
  }
}

/** Fills a WebSocket masking key with zeros (see {@link openLink}). */
function zeroMask(mask: Uint8Array): void {
  mask.fill(0);
}

/** The one masking-key buffer of every `ws` socket of the process (see {@link shareZeroMask}): it only ever holds zeros. */
const ZERO_MASK = new Uint8Array(4);

/**
 * Gives an open `ws` socket the process's one masking-key buffer. With `generateMask`, `ws` makes a
 * 4-byte `Buffer` per socket for the function to fill (its sender's `_maskBuffer`: ~0.2 KiB of heap
 * with its `ArrayBuffer`, for the socket's life); {@link zeroMask} fills it with zeros, so one
 * buffer serves every socket (`ws` reads it synchronously while it frames, and it never holds
 * anything else). A `ws` without the field (another version) keeps its own.
 */
function shareZeroMask(ws: WsSocket): void {
  const sender = (ws as unknown as { _sender?: { _maskBuffer?: unknown } })._sender;
  if (sender !== undefined && sender._maskBuffer instanceof Uint8Array && sender._maskBuffer.length === 4) sender._maskBuffer = ZERO_MASK;
}

/**
 * Opens a WebSocket to `url`, resolving once it is open. Rejects with
 * {@link ConnectFailedError} naming the URL when the socket errors, closes or does not open
 * within `timeoutMs`.
 */
/**
 * The error listener a socket keeps once opened or abandoned (errors end in 'close'): one function
 * for every socket, not a closure that would keep the opening scope (its timer, callbacks) alive.
 */
function ignoreError(): void {}

export function openLink(url: string, options: LinkOptions): Promise<Link> {
  // Never throws: the relay transport's session loop turns a rejection into a reported failure and
  // a retry (`openLink(...).then(ok, failed)`), and a throw would escape it — an option `ws`
  // refuses (a TLS CA that is neither text nor bytes) left the loop stuck and nothing reported.
  try {
    if (options.implementation === 'global') return openGlobal(url, options);
    if (options.implementation === 'net') {
      const node = nodeModules();
      if (node !== null) return openNetLink(url, options, node);
    }
    if (wsConstructor !== null) return openWs(wsConstructor, url, options);
  } catch (error) {
    return Promise.reject(error);
  }
  return loadWs(url).then((ctor) => openWs(ctor, url, options));
}

/** `ws`'s WebSocket class once imported (an import per link made a promise chain per replica). */
let wsConstructor: typeof WsSocket | null = null;

async function loadWs(url: string): Promise<typeof WsSocket> {
  try {
    // A computed specifier, imported only in Node: bundlers for browsers do not follow it, so
    // they never pull `ws` (and Node's net/tls) in.
    const specifier = 'ws';
    wsConstructor ??= ((await import(/* @vite-ignore */ specifier)) as { WebSocket: typeof WsSocket }).WebSocket;
    return wsConstructor;
  } catch (error) {
    throw new ConnectFailedError(`cannot connect to relay ${url}: the 'ws' package is not available`, { cause: error });
  }
}

/**
 * A `ws` socket being opened: what its opening listeners settle. It sits in the socket's
 * {@link LINK} slot until the socket opens (then the {@link WsLink} takes the slot) or fails, and
 * the listeners and the timer are functions shared by every socket: while thousands of replicas
 * connect at once, their openings wait through many young-generation collections, and what they
 * hold is promoted and then dies in the old generation — four `once` wrappers, their closures and
 * the opening's scope were ~1.4 KiB of it per replica (BENCHMARKS.md § Issue 12, Session 13
 * (rssconn)).
 */
interface PendingOpen {
  readonly url: string;
  readonly resolve: (link: Link) => void;
  readonly reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

function openWs(WebSocketCtor: typeof WsSocket, url: string, options: LinkOptions): Promise<Link> {
  const wsOptions: ClientOptions = {
    perMessageDeflate: false,
    maxPayload: options.maxPayload,
    // No \`handshakeTimeout\`: the opening is bounded by the timer below (which terminates the
    // socket), and ws's option leaves a cleared Timeout referenced by the socket for its whole life
    // (~160 B of heap per idle replica: ws calls socket.setTimeout(0) once open).
    // An all-zero masking key: \`ws\` then frames the payload without XOR-ing a copy of it, and
    // the relay's \`ws\` skips unmasking. Masking protects proxies from bytes chosen by scripts
    // in a browser; this client is not one (a Node process can open raw sockets anyway), and
    // what it sends is sealed. Browsers (GlobalLink) mask as they must. See ARCHITECTURE.md § Relay.
    generateMask: zeroMask,
  };
  if (options.tls?.ca !== undefined) {
    const ca = options.tls.ca;
    wsOptions.ca = Array.isArray(ca) ? ca.map((c) => (typeof c === 'string' ? c : Buffer.from(c))) : typeof ca === 'string' ? ca : Buffer.from(ca);
  }
  if (options.tls?.rejectUnauthorized !== undefined) wsOptions.rejectUnauthorized = options.tls.rejectUnauthorized;
  // (A bad URL: ws throws, and openLink rejects with ws's own error.)
  const ws = new WebSocketCtor(url, wsOptions) as OpeningSocket;
  ws.binaryType = 'nodebuffer';
  return new Promise<Link>((resolve, reject) => {
    ws[LINK] = { url, resolve, reject, timer: setTimeout(openTimedOut, options.timeoutMs, ws, options.timeoutMs) };
    ws.on('error', openError);
    ws.on('unexpected-response', openUnexpectedResponse);
    ws.on('close', openClosed);
    ws.on('open', opened);
  });
}

type OpeningSocket = WsSocket & { [LINK]?: WsLink | PendingOpen | undefined };

/** The socket's opening, if it is still pending (taken out of the slot: it settles once). */
function takeOpening(ws: OpeningSocket): PendingOpen | null {
  const pending = ws[LINK];
  if (pending === undefined || pending instanceof WsLink) return null;
  ws[LINK] = undefined;
  clearTimeout(pending.timer);
  pending.timer = undefined;
  ws.removeAllListeners();
  // Errors after this end in 'close' (reported by the link once open; nothing to report if not).
  ws.on('error', ignoreError);
  return pending;
}

function failOpening(ws: OpeningSocket, why: string, cause?: unknown): void {
  const pending = takeOpening(ws);
  if (pending === null) return;
  ws.terminate();
  pending.reject(new ConnectFailedError(`cannot connect to relay ${pending.url}: ${why}`, { cause }));
}

function openTimedOut(ws: OpeningSocket, ms: number): void {
  failOpening(ws, `no answer within ${ms} ms`);
}

function openError(this: OpeningSocket, error: Error): void {
  failOpening(this, error.message, error);
}

function openUnexpectedResponse(this: OpeningSocket, _req: unknown, res: { statusCode?: number }): void {
  failOpening(this, `HTTP ${res.statusCode ?? '?'} instead of a WebSocket upgrade`);
}

function openClosed(this: OpeningSocket, code: number): void {
  failOpening(this, `closed with ${code} before opening`);
}

function opened(this: OpeningSocket): void {
  const pending = takeOpening(this);
  if (pending === null) return;
  shareZeroMask(this);
  pending.resolve(new WsLink(pending.url, this));
}

function openGlobal(url: string, options: LinkOptions): Promise<Link> {
  return new Promise<Link>((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (error) {
      reject(new ConnectFailedError(`cannot connect to relay ${url}: ${(error as Error).message}`, { cause: error }));
      return;
    }
    ws.binaryType = 'arraybuffer';
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.onopen = ws.onerror = ws.onclose = null;
      try {
        ws.close();
      } catch {
        // closing a socket that never opened may throw in some browsers; nothing to release
      }
      reject(new ConnectFailedError(`cannot connect to relay ${url}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${options.timeoutMs} ms`), options.timeoutMs);
    ws.onerror = () => fail('WebSocket error');
    ws.onclose = (event) => fail(`closed with ${event.code} before opening`);
    ws.onopen = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.onopen = ws.onerror = null;
      resolve(new GlobalLink(url, ws));
    };
  });
}
