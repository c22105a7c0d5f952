/**
 * `rhizome sync --metrics-port P`: `GET /healthz` (JSON) and `GET /metrics` (Prometheus text)
 * for one replica. Every metric reads `db.stats()` at scrape time; nothing runs between scrapes.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry } from 'prom-client';
import { snapshotMetrics } from '@rhizome/relay';
import type { HealthState } from '@rhizome/core';
import type { Database, DatabaseStats } from '@rhizome/sync';

const STATES: readonly HealthState[] = ['healthy', 'degraded', 'unreachable'];

/** A running metrics endpoint. */
export interface MetricsServer {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The Prometheus registry of one replica (never the global registry). */
export function createReplicaRegistry(db: Database): Registry {
  const registry = new Registry();
  const m = snapshotMetrics(registry, () => db.stats());
  const { gauge, counter } = m;
  gauge('rhizome_replica_uptime_seconds', 'Seconds since the database was opened', (x) => x.uptimeMs / 1000);
  gauge('rhizome_replica_nodes', 'Nodes in the database', () => db.size);
  gauge('rhizome_replica_peers', 'Connected peer sessions', (x) => x.peers.length);
  gauge('rhizome_replica_peers_synced', 'Peer sessions whose first full exchange is done', (x) => x.peers.filter((p) => p.synced).length);
  gauge('rhizome_replica_unsent_local_updates', 'Local updates no peer has acknowledged yet', (x) => x.health.unsentLocalUpdates);
  gauge('rhizome_replica_persistence_pending_updates', 'Updates waiting to be written to SQLite', (x) => x.persistence.pendingUpdates);
  gauge('rhizome_replica_persistence_log_updates', 'Updates in the SQLite log since the last snapshot', (x) => x.persistence.logUpdates);
  counter('rhizome_replica_compactions_total', 'Compactions of the update log since start', (x) => x.persistence.compactions);
  counter('rhizome_replica_local_updates_total', 'Local updates since start', (x) => x.localUpdates);
  counter('rhizome_replica_remote_updates_total', 'Remote updates applied since start', (x) => x.remoteUpdates);
  counter('rhizome_replica_frames_sent_total', 'Sealed frames sent', (x) => x.framesSent);
  counter('rhizome_replica_frames_received_total', 'Sealed frames received', (x) => x.framesReceived);
  counter('rhizome_replica_bytes_sent_total', 'Bytes of sealed frames sent', (x) => x.bytesSent);
  counter('rhizome_replica_bytes_received_total', 'Bytes of sealed frames received', (x) => x.bytesReceived);
  counter('rhizome_replica_decrypt_errors_total', 'Frames that failed to open', (x) => x.decryptErrors);
  counter('rhizome_replica_queue_collapses_total', 'Outbound queues that overflowed into one catch-up diff', (x) => x.collapses);
  new Gauge({
    name: 'rhizome_replica_health',
    help: 'The database health state (1 for the current state)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const state of STATES) this.set({ state }, m.current().health.health === state ? 1 : 0);
    },
  });
  const perPeer = (name: string, help: string, pick: (p: DatabaseStats['peers'][number]) => number | null): void => {
    new Gauge({
      name,
      help,
      labelNames: ['peer', 'transport'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of m.current().peers) {
          const v = pick(p);
          if (v !== null) this.set({ peer: p.peerId, transport: p.transport }, v);
        }
      },
    });
  };
  perPeer('rhizome_replica_peer_rtt_seconds', 'Smoothed round-trip time of sealed pings', (p) => (p.rttMs === null ? null : p.rttMs / 1000));
  perPeer('rhizome_replica_peer_idle_seconds', 'Seconds since the last frame from the peer', (p) => p.idleMs / 1000);
  perPeer('rhizome_replica_peer_queued_messages', 'Messages in the outbound queue', (p) => p.queued);
  perPeer('rhizome_replica_peer_unacked_updates', 'Local updates the peer has not acknowledged', (p) => p.unackedUpdates);
  perPeer('rhizome_replica_peer_bytes_in_per_second', 'Bytes received per second over the last minute', (p) => p.rates.bytesIn);
  perPeer('rhizome_replica_peer_bytes_out_per_second', 'Bytes sent per second over the last minute', (p) => p.rates.bytesOut);
  new Gauge({
    name: 'rhizome_replica_peer_health',
    help: 'Peer health state (1 for the current state)',
    labelNames: ['peer', 'transport', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of m.current().peers) for (const state of STATES) this.set({ peer: p.peerId, transport: p.transport, state }, p.health === state ? 1 : 0);
    },
  });
  new Gauge({
    name: 'rhizome_replica_process_resident_memory_bytes',
    help: 'Resident set size of the replica process',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  return registry;
}

/**
 * Serves `/healthz` and `/metrics` for `db` on `host:port` (port 0 picks a free one).
 * `/healthz` answers 200 with JSON while the database's health is not critical, else 503.
 */
export async function serveReplicaMetrics(db: Database, options: { port: number; host?: string }): Promise<MetricsServer> {
  const registry = createReplicaRegistry(db);
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method === 'GET' && path === '/healthz') {
      const s = db.closed ? null : db.stats();
      const critical = s === null || s.health.severity === 'critical';
      const body = s === null
        ? { status: 'closed' }
        : {
            status: s.health.health,
            severity: s.health.severity,
            reason: s.health.reason,
            nodes: db.size,
            peers: s.peers.map((p) => ({ peerId: p.peerId, transport: p.transport, health: p.health, rttMs: p.rttMs, synced: p.synced })),
            unsentLocalUpdates: s.health.unsentLocalUpdates,
            uptimeSeconds: Math.round(s.uptimeMs / 1000),
          };
      res.writeHead(critical ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
      return;
    }
    if (req.method === 'GET' && path === '/metrics' && !db.closed) {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: this is a Rhizome replica (GET /healthz, GET /metrics)\n');
  };
  const server: Server = createServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
