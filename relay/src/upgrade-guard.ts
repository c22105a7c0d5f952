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
import { remoteAddress, remoteEndpoint } from './peer-address.js';

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

interface Pending {
  socket: Socket;
  ip: string;
  /** When the socket's time is up (`performance.now()` ms); 0 once a request arrived. */
  deadline: number;
  /** The socket's `close` listener, removed at the upgrade (an idle connection keeps nothing of the guard). */
  onClose: () => void;
}

/** Normalizes an IPv4-mapped IPv6 address to IPv4, as the host does for upgraded connections. */
export function socketIp(socket: Socket): string {
  const ip = remoteAddress(socket) ?? 'unknown';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

function keyOf(socket: Socket): string {
  const { address, port } = remoteEndpoint(socket);
  return `${address ?? '?'}|${port ?? '?'}`;
}

/** Tracks accepted sockets until they upgrade or close (see the module description). */
export class UpgradeGuard {
  readonly #core: GuardedCore;
  readonly #options: UpgradeGuardOptions;
  /** By `address:port` of the remote end: the same for a TLS socket and the TCP socket under it. */
  readonly #pending = new Map<string, Pending>();
  readonly #perIp = new Map<string, number>();
  readonly #refused = new WeakSet<Socket>();
  /** The sweep of {@link UpgradeGuard.#pending}'s deadlines: runs while any socket is pending. */
  #sweeper: ReturnType<typeof setInterval> | null = null;

  constructor(core: GuardedCore, options: UpgradeGuardOptions) {
    this.#core = core;
    this.#options = options;
  }

  /** Sockets accepted and not upgraded (plain HTTP ones included). */
  get pending(): number {
    return this.#pending.size;
  }

  /** A socket was accepted (the server's `connection` event). */
  accept(socket: Socket): void {
    const ip = socketIp(socket);
    const o = this.#options;
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
    const key = keyOf(socket);
    const onClose = (): void => {
      if (this.#pending.get(key)?.socket === socket) this.#release(key);
    };
    this.#pending.set(key, { socket, ip, deadline: performance.now() + o.upgradeTimeoutMs, onClose });
    if (o.perAddress) this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    socket.once('close', onClose);
    if (this.#sweeper === null) {
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(10, Math.min(1000, o.upgradeTimeoutMs / 4)));
      this.#sweeper.unref();
    }
  }

  /** Destroys the sockets whose time is up; stops when none is pending. */
  #sweep(): void {
    const now = performance.now();
    for (const [key, p] of this.#pending) {
      if (p.deadline === 0 || now < p.deadline) continue;
      this.#core.countDrop('upgrade_timeout');
      this.#release(key);
      p.socket.destroy();
    }
    if (this.#pending.size === 0 && this.#sweeper !== null) {
      clearInterval(this.#sweeper);
      this.#sweeper = null;
    }
  }

  /** True for a socket refused at accept: the host must not serve or upgrade its request. */
  isRefused(socket: Socket): boolean {
    return this.#refused.has(socket) || (this.#refusedKeys.size > 0 && this.#refusedKeys.has(keyOf(socket)));
  }

  readonly #refusedKeys = new Set<string>();

  #refuse(socket: Socket, status: string, text: string): void {
    this.#refused.add(socket);
    if (this.#options.tls) {
      socket.destroy();
      return;
    }
    const key = keyOf(socket);
    this.#refusedKeys.add(key);
    socket.once('close', () => this.#refusedKeys.delete(key));
    socket.on('error', () => {});
    const body = `${text}\n`;
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
  }

  /** A request's headers arrived on the socket: the time bound no longer applies (it stays counted). */
  requested(socket: Socket): void {
    const p = this.#pending.get(keyOf(socket));
    if (p !== undefined) p.deadline = 0;
  }

  /** The socket is being upgraded: the core counts it from now on. */
  upgraded(socket: Socket): void {
    const key = keyOf(socket);
    const p = this.#pending.get(key);
    // Its `close` listener (a once-wrapper, a closure and the key) would otherwise stay on every
    // upgraded socket for as long as it lives: ~0.3 KiB per idle connection.
    // (Under TLS `socket` is the TLS socket and `p.socket` the TCP one under it: same key.)
    p?.socket.removeListener('close', p.onClose);
    this.#release(key);
  }

  #release(key: string): void {
    const p = this.#pending.get(key);
    if (p === undefined) return;
    this.#pending.delete(key);
    if (!this.#options.perAddress) return;
    const n = (this.#perIp.get(p.ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(p.ip);
    else this.#perIp.set(p.ip, n);
  }
}
