/**
 * Bounds on sockets that have not (yet) become WebSocket connections.
 *
 * A TCP connection to the relay holds a file descriptor from the moment it is accepted, but the
 * core only sees it after the WebSocket upgrade. Left to Node's HTTP defaults, a socket that
 * sends nothing is held until `headersTimeout` (60 s) plus the check interval (up to 30 s more):
 * ~87 s measured, and 1,100 such sockets exhausted a 1,024-descriptor limit and locked every
 * new client out. So, from the moment a socket is accepted:
 *
 * - it counts against `maxConnectionsPerIp` and `maxConnections` together with the upgraded
 *   connections of the core: a socket over either limit is refused at once (counted as
 *   `too_many_connections_per_ip` / `too_many_connections`) with an `HTTP 429` / `503` answer
 *   (plain `ws://`; a client sees "HTTP 429 instead of a WebSocket upgrade" and backs off) and
 *   destroyed a moment later, or destroyed at once under TLS, before any handshake work;
 * - it has `upgradeTimeoutMs` (default 10 s, like `helloTimeoutMs`) to complete a request's
 *   headers — an upgrade, or a plain HTTP request such as `/healthz` — or it is destroyed
 *   (`upgrade_timeout`), by one sweep timer for all such sockets (every quarter of the bound, at
 *   most every second: a socket goes at most that much after its time), not a timer per socket —
 *   a connect burst makes thousands, each living until its upgrade (BENCHMARKS.md § Issue 12,
 *   Session 9 (srvmem)). Once a request arrived, Node's own keep-alive timeout governs it.
 *
 * Behind a trusted proxy (`trustProxy`) every socket comes from the proxy's address, so only the
 * total and the time bound apply before the upgrade; the per-address limit then uses
 * `X-Forwarded-For` at the upgrade, as before.
 *
 * @packageDocumentation
 */
import type { Socket } from 'node:net';
import type { DropReason } from './core.js';
import { remoteAddress } from './peer-address.js';

/** What the guard needs of the core: the upgraded connections it counts, and its drop counter. */
export interface GuardedCore {
  readonly connections: number;
  connectionsFrom(ip: string): number;
  countDrop(reason: DropReason): void;
}

/** Limits the guard applies. */
export interface UpgradeGuardOptions {
  upgradeTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Count by socket address (false behind a trusted proxy). */
  perAddress: boolean;
  /** The listener speaks TLS: a refused socket is destroyed without an HTTP answer. */
  tls: boolean;
}

/** How long a refused socket may take to read its HTTP answer before it is destroyed. */
const REFUSED_LINGER_MS = 1000;

/**
 * A socket accepted and not upgraded yet: two small values, nothing else (a connect burst makes
 * thousands, each living until its upgrade, long enough to outlive young-generation collections
 * and be promoted: BENCHMARKS.md § Issue 12, Session 14 (relaymem)).
 */
interface Pending {
  /** Its remote address ('' when the guard does not count per address). */
  ip: string;
  /** When its time is up, whole ms of the guard's clock ({@link UpgradeGuard.#now}); 0 once a request arrived. */
  deadline: number;
}

/** Normalizes an IPv4-mapped IPv6 address to IPv4, as the host does for upgraded connections. */
export function socketIp(socket: Socket): string {
  const ip = remoteAddress(socket) ?? 'unknown';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

/**
 * The TCP socket under `socket`: the socket itself for plain HTTP; under TLS, the request's
 * `TLSSocket` wraps the TCP socket the server's `connection` event handed out (`_parent`, the
 * link Node's own `net` code follows from a wrapping socket to the one under it).
 */
function tcpSocket(socket: Socket): Socket {
  let s = socket;
  for (let parent = (s as { _parent?: Socket | null })._parent; parent !== undefined && parent !== null; parent = (s as { _parent?: Socket | null })._parent) s = parent;
  return s;
}

/** Tracks accepted sockets until they upgrade or close (see the module description). */
export class UpgradeGuard {
  readonly #core: GuardedCore;
  readonly #options: UpgradeGuardOptions;
  /** By TCP socket (under TLS, the one under the request's `TLSSocket`: see {@link tcpSocket}). */
  readonly #pending = new Map<Socket, Pending>();
  readonly #perIp = new Map<string, number>();
  /** TCP sockets refused at accept. */
  readonly #refused = new WeakSet<Socket>();
  /** The sweep of {@link UpgradeGuard.#pending}'s deadlines: runs while any socket is pending. */
  #sweeper: ReturnType<typeof setInterval> | null = null;
  /** Where the deadlines count from: whole milliseconds since then are small integers, kept in the record itself. */
  readonly #epoch = performance.now();
  /**
   * The `close` listener of every pending socket (`this` is the socket): one function for all of
   * them, taken off at the upgrade, instead of a closure and a once-wrapper per socket.
   */
  readonly #onClose: (this: Socket) => void;

  constructor(core: GuardedCore, options: UpgradeGuardOptions) {
    this.#core = core;
    this.#options = options;
    const pending = this.#pending;
    const guard = this;
    this.#onClose = function (this: Socket) {
      const p = pending.get(this);
      if (p !== undefined) guard.#release(this, p);
    };
  }

  /** Destroys every socket accepted and not upgraded (at the server's close). */
  destroyPending(): void {
    this.#pending.forEach((p, socket) => {
      this.#release(socket, p);
      socket.destroy();
    });
  }

  /** Sockets accepted and not upgraded (plain HTTP ones included). */
  get pending(): number {
    return this.#pending.size;
  }

  /** Whole ms since the guard was made. */
  #now(): number {
    return Math.floor(performance.now() - this.#epoch);
  }

  /** A socket was accepted (the server's `connection` event: the TCP socket, also under TLS). */
  accept(socket: Socket): void {
    const o = this.#options;
    const ip = o.perAddress ? socketIp(socket) : '';
    if (this.#pending.size + this.#core.connections >= o.maxConnections) {
      this.#core.countDrop('too_many_connections');
      this.#refuse(socket, '503 Service Unavailable', 'relay is full');
      return;
    }
    if (o.perAddress && (this.#perIp.get(ip) ?? 0) + this.#core.connectionsFrom(ip) >= o.maxConnectionsPerIp) {
      this.#core.countDrop('too_many_connections_per_ip');
      this.#refuse(socket, '429 Too Many Requests', 'too many connections from this address');
      return;
    }
    this.#pending.set(socket, { ip, deadline: this.#now() + o.upgradeTimeoutMs });
    if (o.perAddress) this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    socket.on('close', this.#onClose);
    if (this.#sweeper === null) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(10, Math.min(1000, o.upgradeTimeoutMs / 4)));
      this.#sweeper.unref();
    }
  }

  /** Destroys the sockets whose time is up; stops when none is pending. */
  #sweep(): void {
    const now = this.#now();
    // forEach, not for-of: no [key, value] array per pending socket per sweep.
    this.#pending.forEach((p, socket) => {
      if (p.deadline === 0 || now < p.deadline) return;
      this.#core.countDrop('upgrade_timeout');
      this.#release(socket, p);
      socket.destroy();
    });
    if (this.#pending.size === 0 && this.#sweeper !== null) {
      clearInterval(this.#sweeper);
      this.#sweeper = null;
    }
  }

  /** True for a socket refused at accept: the host must not serve or upgrade its request. */
  isRefused(socket: Socket): boolean {
    return this.#refused.has(tcpSocket(socket));
  }

  #refuse(socket: Socket, status: string, text: string): void {
    this.#refused.add(socket);
    if (this.#options.tls) {
      socket.destroy();
      return;
    }
    socket.on('error', () => {});
    const body = `${text}\n`;
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
  }

  /** A request's headers arrived on the socket: the time bound no longer applies (it stays counted). */
  requested(socket: Socket): void {
    const p = this.#pending.get(tcpSocket(socket));
    if (p !== undefined) p.deadline = 0;
  }

  /**
   * The socket is being upgraded: the core counts it from now on. Returns the remote address
   * taken at accept (undefined when the guard did not count per address or never saw the socket).
   */
  upgraded(socket: Socket): string | undefined {
    const tcp = tcpSocket(socket);
    const p = this.#pending.get(tcp);
    if (p === undefined) return undefined;
    this.#release(tcp, p);
    return p.ip === '' ? undefined : p.ip;
  }

  #release(socket: Socket, p: Pending): void {
    this.#pending.delete(socket);
    // An upgraded socket keeps nothing of the guard for as long as it lives.
    socket.removeListener('close', this.#onClose);
    if (!this.#options.perAddress) return;
    const n = (this.#perIp.get(p.ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(p.ip);
    else this.#perIp.set(p.ip, n);
  }
}
