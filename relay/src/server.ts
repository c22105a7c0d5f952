import { readFile } from 'node:fs/promises';
import * as http from 'node:http';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { DEFAULT_RELAY_PORT, InvalidConfigError, ListenError } from '@rhizome/core';
import { WebSocketServer } from 'ws';
import { RelayWebSocket } from './relay-websocket.js';
import { RedisRouter, registerClusterMetrics, resolveClusterOptions, type ClusterStats, type RedisClusterOptions, type ResolvedClusterOptions } from './cluster/index.js';
import type { MailboxStore } from './mailbox/store.js';
import { RelayCore, type RelayStats } from './core.js';
import { createMetricsRegistry } from './metrics.js';
import { UpgradeGuard } from './upgrade-guard.js';
import { shortPathHeadLimit, UpgradeSniffer } from './upgrade-request.js';
import { remoteAddress } from './peer-address.js';
import type { Socket } from 'node:net';
import { resolveMailboxOptions, type MailboxOptions } from './mailbox/options.js';
import { MailboxService } from './mailbox/service.js';
import { resolveCoreOptions, type RelayCoreOptions } from './options.js';
import { checkTlsPair } from './tls-check.js';

/** A certificate or key: a file path, or the PEM text / bytes themselves. */
export type PemSource = string | Uint8Array;

/** Options of {@link createRelayServer}: where to listen, TLS, access token, and limits. */
export interface RelayServerOptions extends Omit<RelayCoreOptions, 'mailbox'> {
  /** TCP port; default 443. 0 picks a free port (see `RelayServer.port`). */
  port?: number;
  /** Address to bind; default all interfaces. */
  host?: string;
  /** Serve wss:// with this certificate and key (paths or PEM); plain ws:// without. */
  tls?: { cert: PemSource; key: PemSource };
  /**
   * Behind a reverse proxy: take the client address for the per-address limit from the last
   * entry of `X-Forwarded-For` (the one the proxy appended), not from the socket. Only turn it
   * on when every connection comes through a proxy you run, or clients can pick their address.
   * Default false.
   */
  trustProxy?: boolean;
  /**
   * Scale out: every relay instance given the same Redis (`redis://host:port`, or options)
   * serves every topic together — peers on different instances pair, LOOKUP lists them all.
   * Redis holds only ephemeral routing with expiry. Without it: one process, as before.
   */
  redis?: string | RedisClusterOptions;
  /**
   * Run a sealed mailbox (offline catch-up, ARCHITECTURE.md § Mailbox) in this SQLite file, with
   * optional limits: `'relay-mailbox.db'` or `{ path, maxMailboxBytes, maxMailboxes, ... }`.
   * Without it the relay keeps nothing on disk (and never loads SQLite). A damaged file is
   * refused with `ERR_STORE_CORRUPT`, never emptied.
   */
  mailbox?: string | MailboxOptions;
}

/** A running relay. */
export interface RelayServer {
  /** `ws://host:port` or `wss://host:port` clients connect to. */
  readonly url: string;
  /** The bound port (useful after `port: 0`). */
  readonly port: number;
  /** The routing core (for embedding and inspection). */
  readonly core: RelayCore;
  /** Counters: connections, topics, frames and bytes in/out, drops by reason, errors. */
  stats(): RelayStats;
  /** The scale-out's state and counters (null without `redis`). */
  clusterStats(): ClusterStats | null;
  /**
   * Stops accepting, closes every client with 1001 (going away), and closes the listener.
   * Idempotent.
   */
  close(): Promise<void>;
}

const PEM_MARK = '-----BEGIN';

async function loadPem(field: string, source: unknown): Promise<Buffer> {
  if (source instanceof Uint8Array) return Buffer.from(source);
  if (typeof source !== 'string' || source.length === 0) {
    throw new InvalidConfigError(field, 'must be a file path or PEM text');
  }
  if (source.includes(PEM_MARK)) return Buffer.from(source, 'utf8');
  try {
    return await readFile(source);
  } catch (error) {
    throw new InvalidConfigError(field, `cannot read '${source}': ${(error as Error).message}`);
  }
}

function remoteIp(req: IncomingMessage, trustProxy: boolean): string {
  let ip = remoteAddress(req.socket) ?? 'unknown';
  if (trustProxy) {
    const header = req.headers['x-forwarded-for'];
    const list = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
    const last = list[list.length - 1]!.trim();
    if (last !== '') ip = last;
  }
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

function urlHost(host: string | undefined): string {
  if (host === undefined || host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function listen(server: HttpServer, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      const where = `${host ?? '0.0.0.0'}:${port}`;
      const code = error.code ?? 'UNKNOWN';
      let message: string;
      if (code === 'EACCES' || code === 'EPERM') {
        message = `cannot listen on ${where}: permission denied (ports below 1024 need privileges); pick another port with --port, e.g. --port 8443`;
      } else if (code === 'EADDRINUSE') {
        message = `cannot listen on ${where}: address already in use; pick another port with --port`;
      } else {
        message = `cannot listen on ${where}: ${error.message}; check --host and --port`;
      }
      reject(new ListenError(message, host ?? '0.0.0.0', port, code, { cause: error }));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    if (host === undefined) server.listen(port);
    else server.listen(port, host);
  });
}

/** Node's HTTP connection listener (`http._connectionListener`, what `https` also installs). */
type NodeConnectionListener = (this: HttpServer, socket: Duplex) => void;

/**
 * Takes the connections of `server` from Node's HTTP connection listener, so that canonical
 * WebSocket upgrades skip its per-connection setup (upgrade-request.ts); every other connection is
 * handed to that listener with the bytes read so far. Left as it is when the listener is not where
 * Node puts it (another Node).
 */
function takeUpgrades(
  server: HttpServer,
  secure: boolean,
  guard: UpgradeGuard,
  host: { upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void; error: () => void },
): void {
  const nodeListener = (http as unknown as { _connectionListener?: NodeConnectionListener })._connectionListener;
  // Under TLS Node's HTTP listener runs on the TLS socket ('secureConnection'), after the handshake.
  const event = secure ? 'secureConnection' : 'connection';
  if (typeof nodeListener !== 'function' || !server.listeners(event).includes(nodeListener)) return;
  server.removeListener(event, nodeListener);
  // Node's parser reads the server's limit, else its process-wide one (--max-http-header-size).
  const maxHeaderSize = (server as { maxHeaderSize?: number }).maxHeaderSize || http.maxHeaderSize;
  const sniffer = new UpgradeSniffer(
    {
      upgrade: host.upgrade,
      http: (socket) => nodeListener.call(server, socket),
      error: host.error,
    },
    shortPathHeadLimit(maxHeaderSize),
  );
  server.on(event, (socket: Socket) => {
    // A socket the guard refused at accept is answered (or destroyed) by the guard.
    if (!guard.isRefused(socket)) sniffer.take(socket);
  });
}

/**
 * Opens a mailbox file (checked first: a damaged one is refused with `ERR_STORE_CORRUPT`) and
 * builds the {@link MailboxService} a {@link RelayCore} takes as its `mailbox` option. SQLite is
 * imported here, on demand, so a relay without a mailbox never loads it. `createRelayServer`
 * calls it for its `mailbox` option; embedders of the core call it themselves.
 */
export async function createMailboxService(
  option: string | MailboxOptions,
  core: Omit<RelayCoreOptions, 'mailbox'> = {},
  redis?: ResolvedClusterOptions,
): Promise<MailboxService> {
  const resolved = resolveMailboxOptions(option);
  const limits = resolveCoreOptions(core);
  let store: MailboxStore;
  if (redis !== undefined) {
    const { RedisMailboxStore } = await import('./cluster/mailbox-store.js');
    store = new RedisMailboxStore(redis);
  } else {
    const { openSqliteMailboxStore } = await import('./mailbox/sqlite-store.js');
    store = openSqliteMailboxStore(resolved.path);
  }
  return new MailboxService(store, resolved, { maxFrameSize: limits.maxFrameSize, maxBufferedBytes: limits.maxBufferedBytes });
}

/**
 * Starts a relay: WebSockets on Node's HTTP server (HTTPS when `tls` is given), plus
 * `GET /healthz` (JSON) and `GET /metrics` (Prometheus text) on the same port. The routing
 * itself is {@link RelayCore}; this module is only the listener around it.
 *
 * Binding a privileged port without permission rejects with `ERR_LISTEN` (a
 * {@link ListenError}) whose message names `--port`; a bad option rejects with
 * `ERR_INVALID_CONFIG` naming the field.
 *
 * @example
 * ```ts
 * const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
 * const transport = createTransport({ mode: 'relay', relayUrl: relay.url });
 * // ...
 * await relay.close();
 * ```
 */
export async function createRelayServer(options: RelayServerOptions = {}): Promise<RelayServer> {
  const port = options.port ?? DEFAULT_RELAY_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidConfigError('port', 'must be an integer from 0 to 65535');
  if (options.host !== undefined && (typeof options.host !== 'string' || options.host.length === 0)) {
    throw new InvalidConfigError('host', 'must be a non-empty string');
  }
  let tls: { cert: Buffer; key: Buffer } | null = null;
  if (options.tls !== undefined) {
    if (options.tls === null || typeof options.tls !== 'object') throw new InvalidConfigError('tls', 'must be { cert, key }');
    tls = { cert: await loadPem('tls.cert', options.tls.cert), key: await loadPem('tls.key', options.tls.key) };
    checkTlsPair(tls.cert, tls.key);
  }
  if (options.trustProxy !== undefined && typeof options.trustProxy !== 'boolean') throw new InvalidConfigError('trustProxy', 'must be a boolean');
  const trustProxy = options.trustProxy ?? false;
  const clusterOptions = options.redis === undefined ? null : resolveClusterOptions(options.redis);
  const { port: _port, host, tls: _tls, trustProxy: _trust, redis: _redis, mailbox: mailboxOption, ...coreOptions } = options;
  // With Redis the mailbox lives there (every instance serves it; the file path is not used).
  const mailbox = mailboxOption === undefined ? null : await createMailboxService(mailboxOption, coreOptions, clusterOptions ?? undefined);
  let core: RelayCore;
  try {
    core = new RelayCore(mailbox ? { ...coreOptions, mailbox } : coreOptions);
  } catch (error) {
    await mailbox?.close();
    throw error;
  }
  const registry = createMetricsRegistry(() => core.stats());
  let router: RedisRouter | null = null;
  if (clusterOptions !== null) {
    const r = new RedisRouter(core, clusterOptions);
    router = r;
    core.setRouter(r);
    registerClusterMetrics(registry, () => r.stats());
  }
  const startedAt = Date.now();
  let closing = false;

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (guard.isRefused(req.socket)) {
      res.destroy();
      return;
    }
    guard.requested(req.socket);
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method === 'GET' && path === '/healthz') {
      const s = core.stats();
      const c = router?.stats();
      // Degraded: Redis is out of reach; local pairs are still served (so still 200).
      const status = closing ? 'closing' : c !== undefined && !c.up ? 'degraded' : 'ok';
      const body = JSON.stringify({
        status,
        connections: s.connections,
        topics: s.topics,
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
        ...(c !== undefined ? { cluster: { instanceId: c.instanceId, redis: c.up ? 'up' : 'down', instances: c.instances, remotePeers: c.remotePeers } } : {}),
      });
      res.writeHead(closing ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        () => {
          core.countError();
          res.writeHead(500).end();
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: this is a Rhizome relay (WebSocket on /, GET /healthz, GET /metrics)\n');
  };

  let server: HttpServer;
  try {
    server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, onRequest) : createHttpServer(onRequest);
  } catch (error) {
    await core.close();
    await router?.close();
    await mailbox?.close();
    throw new InvalidConfigError('tls', `certificate or key rejected: ${(error as Error).message}`);
  }
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: core.options.maxFrameSize,
    perMessageDeflate: false,
    clientTracking: false,
    // Events straight to the core, no listeners per connection (direct-socket.ts); pings answered
    // by the core, no pong-completion closure per socket (relay-websocket.ts).
    WebSocket: RelayWebSocket,
    autoPong: false,
  });
  // Sockets that have not upgraded: time-bounded and counted against the connection limits (upgrade-guard.ts).
  const guard = new UpgradeGuard(core, {
    upgradeTimeoutMs: core.options.upgradeTimeoutMs,
    maxConnections: core.options.maxConnections,
    maxConnectionsPerIp: core.options.maxConnectionsPerIp,
    perAddress: !trustProxy,
    tls: tls !== null,
  });
  server.on('connection', (socket: Socket) => guard.accept(socket));
  server.on('clientError', (_error, socket: Duplex) => {
    core.countError();
    socket.destroy();
  });
  server.on('tlsClientError', () => core.countError());
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (guard.isRefused(req.socket)) {
      socket.destroy();
      return;
    }
    // The address the guard read at accept (one getpeername per connection, not one more here).
    const acceptedIp = guard.upgraded(req.socket);
    // (ws puts its own error listener on the socket for the handshake, then the WebSocket's.)
    if (closing) {
      socket.on('error', () => core.countError());
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    const ip = trustProxy || acceptedIp === undefined ? remoteIp(req, trustProxy) : acceptedIp;
    wss.handleUpgrade(req, socket, head, (ws) => core.attach(ws, { ip }));
  };
  server.on('upgrade', upgrade);
  takeUpgrades(server, tls !== null, guard, {
    upgrade,
    error: () => core.countError(),
  });

  try {
    await listen(server, port, host);
  } catch (error) {
    await core.close();
    await router?.close();
    await mailbox?.close();
    throw error;
  }
  // Serve at once; Redis joins within connectTimeoutMs or later (degraded until then).
  await router?.start();
  const bound = (server.address() as AddressInfo).port;
  const url = `${tls ? 'wss' : 'ws'}://${urlHost(host)}:${bound}`;
  let closed: Promise<void> | null = null;

  return {
    url,
    port: bound,
    core,
    stats: () => core.stats(),
    clusterStats: () => router?.stats() ?? null,
    close(): Promise<void> {
      closed ??= (async () => {
        closing = true;
        const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await core.close();
        await router?.close();
        // Sockets still open are HTTP keep-alive or half-done requests (read by Node's HTTP
        // server or still by the relay's upgrade sniffer): nothing to keep.
        server.closeAllConnections();
        guard.destroyPending();
        await listenerClosed;
        wss.close();
        await mailbox?.close();
      })();
      return closed;
    },
  };
}
