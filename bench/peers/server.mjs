// One server under test, run as a child process by bench/compare.ts so that its CPU time and
// memory are its own. Usage (forked, with an IPC channel):
//   node --expose-gc bench/peers/server.mjs <kind> '<json options>'
// kinds:
//   bare         a bare `ws` forwarder: every binary frame goes to the other sockets of the same
//                URL path. No protocol, no state: the ceiling of this machine for relaying.
//   y-websocket  @y/websocket-server's setupWSConnection (the stock y-websocket backend),
//                mounted exactly as its bin/server.js does.
//   hocuspocus   @hocuspocus/server; options { flushDelay?: number | false, sqlite?: path,
//                redis?: { host, port } } (sqlite: @hocuspocus/extension-sqlite on that file,
//                otherwise in memory only; redis: @hocuspocus/extension-redis, for scale-out).
// IPC: sends { type: 'ready', port, versions } once listening; answers { type: 'stats', id, gc }
// with { type: 'stats', id, cpuUser, cpuSystem, rss, maxRss, heapUsed } (microseconds, bytes);
// with a SQLite store, reports { type: 'stored', room, nodes, at } after each store
// (`at` is performance.timeOrigin + performance.now(), comparable across processes).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { writeHeapSnapshot } from 'node:v8';
import { WebSocketServer } from 'ws';
import { serverDiag } from '../compare/server-diag.mjs';

const kind = process.argv[2];
const options = JSON.parse(process.argv[3] ?? '{}');
// Package versions from the installed manifests (some packages do not export ./package.json).
const version = (name) => JSON.parse(readFileSync(join(join(dirname(fileURLToPath(import.meta.url)), 'node_modules'), name, 'package.json'), 'utf8')).version;
const now = () => performance.timeOrigin + performance.now();

async function startBare() {
  const rooms = new Map();
  const server = http.createServer((_req, res) => res.end('bare'));
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    const room = req.url ?? '/';
    let peers = rooms.get(room);
    if (!peers) rooms.set(room, (peers = new Set()));
    peers.add(ws);
    ws.on('message', (data, isBinary) => {
      for (const other of peers) if (other !== ws) other.send(data, { binary: isBinary });
    });
    ws.on('close', () => {
      peers.delete(ws);
      if (peers.size === 0) rooms.delete(room);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, versions: { ws: version('ws') } };
}

async function startYWebsocket() {
  // As @y/websocket-server/src/server.js, on port 0 of 127.0.0.1.
  const { setupWSConnection } = await import('@y/websocket-server/utils');
  const wss = new WebSocketServer({ noServer: true });
  const server = http.createServer((_request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/plain' });
    response.end('okay');
  });
  wss.on('connection', setupWSConnection);
  server.on('upgrade', (request, socket, head) => {
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, versions: { '@y/websocket-server': version('@y/websocket-server'), yjs: version('yjs'), ws: version('ws') } };
}

async function startHocuspocus() {
  const { Server } = await import('@hocuspocus/server');
  const extensions = [];
  const versions = { '@hocuspocus/server': version('@hocuspocus/server'), yjs: version('yjs') };
  if (options.sqlite) {
    const { SQLite } = await import('@hocuspocus/extension-sqlite');
    extensions.push(new SQLite({ database: options.sqlite }));
    extensions.push({
      async afterStoreDocument({ documentName, document }) {
        process.send?.({ type: 'stored', room: documentName, nodes: document.getMap('nodes').size, at: now() });
      },
    });
    versions['@hocuspocus/extension-sqlite'] = version('@hocuspocus/extension-sqlite');
    versions['better-sqlite3'] = version('better-sqlite3');
  }
  if (options.redis) {
    // Scale-out: @hocuspocus/extension-redis on a shared Redis ({ host, port }).
    const { Redis } = await import('@hocuspocus/extension-redis');
    extensions.push(new Redis({ host: options.redis.host, port: options.redis.port }));
    versions['@hocuspocus/extension-redis'] = version('@hocuspocus/extension-redis');
  }
  const config = { port: 0, address: '127.0.0.1', quiet: true, stopOnSignals: false, extensions };
  if (options.flushDelay !== undefined) config.flushDelay = options.flushDelay;
  const server = new Server(config);
  await server.listen();
  return { port: server.address.port, versions };
}

const starters = { bare: startBare, 'y-websocket': startYWebsocket, hocuspocus: startHocuspocus };
const start = starters[kind];
if (!start) {
  console.error(`unknown server kind '${kind}'`);
  process.exit(2);
}

let snapshots = 0;
const diag = await serverDiag(kind);
let marks = 0;
process.on('message', (msg) => {
  if (msg?.type === 'stats') {
    const mark = String(++marks);
    diag(mark, 'before GC');
    if (msg.gc && typeof globalThis.gc === 'function') for (let i = 0; i < 3; i++) globalThis.gc();
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    diag(mark, 'plain GC');
    const reduced = msg.gc ? reducedMemory() : mem;
    diag(mark, 'memory-reducing GC');
    if (msg.gc && process.env.BENCH_HEAP_SNAPSHOTS) writeHeapSnapshot(join(process.env.BENCH_HEAP_SNAPSHOTS, `${kind}-${process.pid}-${++snapshots}.heapsnapshot`));
    process.send?.({
      type: 'stats',
      id: msg.id,
      cpuUser: cpu.user,
      cpuSystem: cpu.system,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      heapTotal: mem.heapTotal,
      arrayBuffers: mem.arrayBuffers,
      maxRss: peakRss(),
      rssReduced: reduced.rss,
      heapUsedReduced: reduced.heapUsed,
      ...ioCalls(),
    });
  } else if (msg?.type === 'exit') {
    process.exit(0);
  }
});
/**
 * Memory after V8's memory-reducing collection (what it runs under memory pressure): unlike the
 * plain full GCs above, it also shrinks the young generation back and returns its pages, so
 * pages a burst of short-lived garbage touched (a fixed ~16 MiB on Node 22, not a cost per
 * connection) stop counting. Same code in bench/compare/relay-server.ts.
 */
function reducedMemory() {
  globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return process.memoryUsage();
}
/**
 * Peak RSS of this process image in bytes: Linux's VmHWM. Not `resourceUsage().maxRSS`: on Linux
 * that keeps the high-water mark of the parent at fork time (`signal->maxrss` survives exec), so
 * every server forked from a big bench process reported the parent's ~199 MiB. Elsewhere the
 * current RSS is the best this can do.
 */
function peakRss() {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.memoryUsage().rss;
}

/** Read and write system calls so far (Linux /proc/self/io); nothing elsewhere. Same code in bench/compare/relay-server.ts. */
function ioCalls() {
  try {
    const io = readFileSync('/proc/self/io', 'utf8');
    return { readCalls: Number(/syscr: (\d+)/.exec(io)?.[1]), writeCalls: Number(/syscw: (\d+)/.exec(io)?.[1]) };
  } catch {
    return {};
  }
}

process.on('disconnect', () => process.exit(0));

const { port, versions } = await start();
process.send?.({ type: 'ready', port, versions: { node: process.version, ...versions } });
