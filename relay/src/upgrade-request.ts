/**
 * WebSocket upgrades without Node's HTTP server machinery per connection.
 *
 * Node's HTTP server sets every accepted socket up for HTTP before a byte arrives: an HTTP
 * parser bound to it, a state record with two arrays, six bound functions and listeners, three
 * listener-method overrides written onto the socket, an async resource; then, for the request, an
 * `IncomingMessage` with its header lists. For a relay all of that lives only from the accept to
 * the upgrade — but in a connect burst that is long enough to outlive young-generation
 * collections, so it is promoted and dies in old space: about 1–1.5 KiB per connection, which a
 * plain full GC leaves behind as pages V8 keeps pooled until a memory-reducing GC
 * (BENCHMARKS.md § Issue 12, Session 14 (relaymem)). Some of it stays on the upgraded socket for
 * its whole life (the overrides, two listeners).
 *
 * So the relay reads the first bytes of a connection itself ({@link UpgradeSniffer}). A canonical
 * WebSocket upgrade request — `GET <path> HTTP/1.1`, whole in at most {@link MAX_HEAD_BYTES} and
 * shorter than Node's own header limit ({@link shortPathHeadLimit}), plain header lines, one `Upgrade: websocket`, `Connection: ... upgrade ...`, one key and one version,
 * no subprotocol, no body — goes straight to the upgrade (`ws`'s `handleUpgrade` validates key and
 * version as it does behind Node's server). Anything else (a plain HTTP request such as `/healthz`,
 * a subprotocol, a repeated header, a folded line, any byte outside printable ASCII and tab, a head
 * larger than the limit) is handed to Node's HTTP server with the bytes read so far, exactly as if
 * it had read them itself — an incomplete head as soon as it can no longer become a canonical one
 * ({@link mayBeginUpgrade}), so that garbage is refused by Node at once as before: everything but
 * the common case behaves as before.
 *
 * @packageDocumentation
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** The longest request head taken on the short path (a browser's upgrade is ~0.5 KiB). */
export const MAX_HEAD_BYTES = 4096;

/**
 * The longest head the short path may take on a server whose HTTP parser refuses heads at
 * `maxHeaderSize` (the server's `maxHeaderSize` option, else Node's `http.maxHeaderSize`, which
 * `--max-http-header-size` sets): {@link MAX_HEAD_BYTES}, or less under a smaller Node limit.
 *
 * Node refuses a head (HPE_HEADER_OVERFLOW: `clientError`, or 431 without a listener) once the
 * bytes of its request target, header names and header values reach `maxHeaderSize`; those are
 * fewer than the head's own bytes, so a head of at most `maxHeaderSize` bytes is one Node takes
 * too. A longer one goes to Node, which decides (and refuses what it would refuse anyway).
 */
export function shortPathHeadLimit(maxHeaderSize: number): number {
  return Math.max(0, Math.min(MAX_HEAD_BYTES, maxHeaderSize));
}

/** The headers of an upgrade request that `ws` reads (the others are ignored). */
export interface UpgradeHeaders extends IncomingHttpHeaders {
  host?: string | undefined;
  upgrade?: string | undefined;
  connection?: string | undefined;
  origin?: string | undefined;
  'sec-websocket-key'?: string | undefined;
  'sec-websocket-version'?: string | undefined;
  /** Read by the host behind a trusted proxy (`trustProxy`); several such lines are joined with ', ', as Node does. */
  'x-forwarded-for'?: string | undefined;
}

/** What `ws`'s `handleUpgrade` reads of a request (and the host: its socket). */
export interface UpgradeRequest {
  readonly method: 'GET';
  readonly url: string;
  readonly headers: UpgradeHeaders;
  readonly socket: Socket;
}

/** An HTTP token (a header name). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A header value: printable ASCII, space and tab only (anything else: Node's parser decides). */
const VALUE = /^[\t\x20-\x7e]*$/;
/** The request line taken: GET, an origin-form target of printable ASCII, HTTP/1.1. */
const REQUEST_LINE = /^GET (\/[\x21-\x7e]*) HTTP\/1\.1$/;

/**
 * Parses `data[0, headEnd)` (the head, without its final CRLF CRLF) as a canonical WebSocket
 * upgrade request; null when it is anything else (see the module description).
 */
export function parseUpgradeRequest(data: Buffer, headEnd: number, socket: Socket): UpgradeRequest | null {
  const head = data.toString('latin1', 0, headEnd);
  const lines = head.split('\r\n');
  const target = REQUEST_LINE.exec(lines[0]!);
  if (target === null) return null;
  let host: string | undefined;
  let upgrade: string | undefined;
  let connection: string | undefined;
  let origin: string | undefined;
  let key: string | undefined;
  let version: string | undefined;
  let forwardedFor: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^[\t ]+|[\t ]+$/g, '');
    if (!TOKEN.test(name) || !VALUE.test(value)) return null;
    switch (name.toLowerCase()) {
      case 'host':
        if (host !== undefined) return null;
        host = value;
        break;
      case 'upgrade':
        if (upgrade !== undefined) return null;
        upgrade = value;
        break;
      case 'connection':
        if (connection !== undefined) return null;
        connection = value;
        break;
      case 'origin':
        if (origin !== undefined) return null;
        origin = value;
        break;
      case 'sec-websocket-key':
        if (key !== undefined) return null;
        key = value;
        break;
      case 'sec-websocket-version':
        if (version !== undefined) return null;
        version = value;
        break;
      case 'x-forwarded-for':
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        break;
      // A subprotocol is negotiated by `ws`, a body framed by Node's parser: theirs, as before.
      case 'sec-websocket-protocol':
      case 'content-length':
      case 'transfer-encoding':
        return null;
      default:
        break;
    }
  }
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket' || key === undefined || version === undefined) return null;
  if (connection === undefined || !connection.split(',').some((token) => token.trim().toLowerCase() === 'upgrade')) return null;
  return {
    method: 'GET',
    url: target[1]!,
    headers: { host, upgrade, connection, origin, 'sec-websocket-key': key, 'sec-websocket-version': version, 'x-forwarded-for': forwardedFor },
    socket,
  };
}

/** How every head {@link parseUpgradeRequest} takes begins. */
const GET = Buffer.from('GET /', 'latin1');

/**
 * False once `data`, an incomplete head, can no longer become one that {@link parseUpgradeRequest}
 * takes: it does not begin with `GET /`, or holds a byte outside tab, CR LF and printable ASCII, a
 * bare LF or a CR not followed by LF. Such bytes go to Node's parser at once, which refuses them at
 * once (a port scanner's probe, a TLS ClientHello on the plain port, a bare-LF head), as it did
 * before the sniffer — not after `upgradeTimeoutMs` holding a slot of the address's limit.
 */
export function mayBeginUpgrade(data: Buffer): boolean {
  const n = Math.min(data.length, GET.length);
  if (data.compare(GET, 0, n, 0, n) !== 0) return false;
  for (let i = n; i < data.length; i++) {
    const b = data[i]!;
    if (b === 0x0a) {
      if (data[i - 1] !== 0x0d) return false;
    } else if (b === 0x0d) {
      if (i + 1 < data.length && data[i + 1] !== 0x0a) return false;
    } else if (b !== 0x09 && (b < 0x20 || b > 0x7e)) return false;
  }
  return true;
}

/** What the {@link UpgradeSniffer} hands a connection to. */
export interface SnifferHost {
  /** A canonical upgrade request: upgrade it (as the HTTP server's `upgrade` event would). */
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
  /** Anything else: Node's HTTP server takes the socket (its connection listener, not yet run on it). */
  http(socket: Socket): void;
  /** An error on a socket still being read here (it is destroyed). */
  error(): void;
}

/**
 * Reads the first bytes of each accepted socket and sends it one way or the other (see the
 * module description). One set of listeners for every socket (`this` is the socket); a socket
 * whose request head came in pieces keeps them in a WeakMap until it is whole.
 *
 * Errors are counted as Node's HTTP server counts them (its `clientError`): a socket error (a
 * reset), and a client that ends after part of a request head (Node's parser: "invalid EOF
 * state"); a client that ends having sent nothing is not an error there, nor here.
 */
export class UpgradeSniffer {
  readonly #host: SnifferHost;
  /** Heads longer than this go to Node ({@link shortPathHeadLimit}). */
  readonly #maxHeadBytes: number;
  readonly #partial = new WeakMap<Socket, Buffer>();
  readonly #onData: (this: Socket, chunk: Buffer) => void;
  readonly #onError: (this: Socket) => void;
  readonly #onEnd: (this: Socket) => void;

  /** `maxHeadBytes`: the server's {@link shortPathHeadLimit} (default {@link MAX_HEAD_BYTES}). */
  constructor(host: SnifferHost, maxHeadBytes: number = MAX_HEAD_BYTES) {
    this.#host = host;
    this.#maxHeadBytes = Math.min(MAX_HEAD_BYTES, maxHeadBytes);
    const sniffer = this;
    this.#onData = function (this: Socket, chunk: Buffer) {
      sniffer.#read(this, chunk);
    };
    this.#onError = function (this: Socket) {
      sniffer.#detach(this);
      sniffer.#host.error();
      this.destroy();
    };
    // A client that ends before its request head is whole gets nothing (its socket is closed);
    // having sent part of one, it is an error, as Node's parser reports it.
    this.#onEnd = function (this: Socket) {
      const partial = sniffer.#partial.has(this);
      sniffer.#detach(this);
      if (partial) sniffer.#host.error();
      this.destroy();
    };
  }

  /** Starts reading a socket (the server's connection event; under TLS, the secure one). */
  take(socket: Socket): void {
    socket.on('error', this.#onError);
    socket.on('end', this.#onEnd);
    socket.on('data', this.#onData);
  }

  #detach(socket: Socket): void {
    socket.removeListener('data', this.#onData);
    socket.removeListener('end', this.#onEnd);
    socket.removeListener('error', this.#onError);
    this.#partial.delete(socket);
  }

  #read(socket: Socket, chunk: Buffer): void {
    const before = this.#partial.get(socket);
    const data = before === undefined ? chunk : Buffer.concat([before, chunk]);
    const headEnd = data.indexOf('\r\n\r\n', 0, 'latin1');
    const max = this.#maxHeadBytes;
    if (headEnd < 0 && data.length < max && mayBeginUpgrade(data)) {
      this.#partial.set(socket, data);
      return;
    }
    this.#detach(socket);
    const req = headEnd < 0 || headEnd + 4 > max ? null : parseUpgradeRequest(data, headEnd, socket);
    if (req !== null) {
      this.#host.upgrade(req as unknown as IncomingMessage, socket, data.subarray(headEnd + 4));
      return;
    }
    // Node's HTTP server takes over, and reads what was read here first (its parser then reads
    // the socket itself: nothing is left in the stream's buffer, the bytes stay in order).
    this.#host.http(socket);
    socket.emit('data', data);
  }
}
