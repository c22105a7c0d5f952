import { Counter, Gauge, Registry } from 'prom-client';
import type { DropReason, RelayStats } from './core.js';

/**
 * A per-server Prometheus registry (never the global one, so two relays in one process do
 * not mix). Every metric reads the core's plain counters at scrape time: the hot path only
 * increments numbers.
 */
export function createMetricsRegistry(stats: () => RelayStats): Registry {
  const registry = new Registry();
  let snapshot: RelayStats = stats();
  const refresh = (): RelayStats => (snapshot = stats());

  new Gauge({
    name: 'rhizome_relay_connections',
    help: 'Open WebSocket connections',
    registers: [registry],
    collect() {
      this.set(refresh().connections);
    },
  });
  new Gauge({
    name: 'rhizome_relay_topics',
    help: 'Topics with at least one member or announcer',
    registers: [registry],
    collect() {
      this.set(snapshot.topics);
    },
  });
  const counter = (name: string, help: string, pick: (s: RelayStats) => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(pick(snapshot));
      },
    });
  };
  counter('rhizome_relay_connections_total', 'Connections accepted since start', (s) => s.connectionsTotal);
  counter('rhizome_relay_frames_in_total', 'Frames received from clients', (s) => s.framesIn);
  counter('rhizome_relay_frames_out_total', 'Frames sent to clients', (s) => s.framesOut);
  counter('rhizome_relay_bytes_in_total', 'Bytes of frames received from clients', (s) => s.bytesIn);
  counter('rhizome_relay_bytes_out_total', 'Bytes of frames sent to clients', (s) => s.bytesOut);
  counter('rhizome_relay_errors_total', 'Socket, WebSocket and HTTP errors', (s) => s.errors);
  new Counter({
    name: 'rhizome_relay_drops_total',
    help: 'Connections cut and frames dropped, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(snapshot.drops) as Array<[DropReason, number]>) this.inc({ reason }, n);
    },
  });
  new Gauge({
    name: 'rhizome_relay_process_resident_memory_bytes',
    help: 'Resident set size of the relay process',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  return registry;
}
