import { Counter, type Registry } from 'prom-client';
import { snapshotMetrics } from '../snapshot-metrics.js';
import type { ClusterStats } from './router.js';

/**
 * Adds the scale-out's metrics to a relay's registry: Redis link state, cluster membership,
 * Redis traffic. Read from the router's plain counters at scrape time.
 */
export function registerClusterMetrics(registry: Registry, stats: () => ClusterStats): void {
  const m = snapshotMetrics(registry, stats);
  m.gauge('rhizome_relay_redis_up', '1 while this instance is connected to Redis and registered, 0 while degraded (serving local pairs only)', (s) => (s.up ? 1 : 0));
  const gauge = m.gauge;
  const counter = m.counter;
  gauge('rhizome_relay_cluster_instances', 'Live relay instances this one knows, itself included', (s) => s.instances);
  gauge('rhizome_relay_cluster_remote_peers', 'Peers on other instances paired with or findable by local clients', (s) => s.remotePeers);
  gauge('rhizome_relay_cluster_topics', 'Topics this instance shares through Redis', (s) => s.topics);
  gauge('rhizome_relay_redis_backlog_bytes', 'Published bytes Redis has not acknowledged yet', (s) => s.backlogBytes);
  counter('rhizome_relay_redis_outages_total', 'Times the link to Redis was lost', (s) => s.outages);
  counter('rhizome_relay_redis_registrations_total', 'Times this instance registered with Redis (start and after each outage)', (s) => s.registrations);
  counter('rhizome_relay_cluster_instances_expired_total', 'Instances declared dead after instanceTtlMs without a heartbeat', (s) => s.instancesExpired);
  counter('rhizome_relay_redis_messages_out_total', 'PUBLISH commands to other instances', (s) => s.messagesOut);
  counter('rhizome_relay_redis_bytes_out_total', 'Bytes published to other instances', (s) => s.bytesOut);
  counter('rhizome_relay_redis_messages_in_total', 'Pub/sub messages received', (s) => s.messagesIn);
  counter('rhizome_relay_redis_bytes_in_total', 'Pub/sub bytes received', (s) => s.bytesIn);
  counter('rhizome_relay_cluster_records_out_total', 'Records (frames, membership changes) sent to other instances', (s) => s.recordsOut);
  counter('rhizome_relay_cluster_records_in_total', 'Records received from other instances', (s) => s.recordsIn);
  counter('rhizome_relay_redis_commands_total', 'Other Redis commands (scripts, key refreshes)', (s) => s.commands);
  counter('rhizome_relay_redis_errors_total', 'Redis connection and command errors', (s) => s.errors);
  new Counter({
    name: 'rhizome_relay_cluster_drops_total',
    help: 'Records dropped, by reason: unknown_peer (sender or recipient gone), malformed, redis_down',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ reason: 'unknown_peer' }, m.current().drops.unknownPeer);
      this.inc({ reason: 'malformed' }, m.current().drops.malformed);
      this.inc({ reason: 'redis_down' }, m.current().drops.down);
    },
  });
}
