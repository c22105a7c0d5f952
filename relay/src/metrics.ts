import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { snapshotMetrics } from './snapshot-metrics.js';
import type { DropReason, RelayStats } from './core.js';
import type { HistogramSnapshot } from './histogram.js';

/**
 * A Prometheus histogram whose buckets the relay core counted itself (see histogram.ts): the
 * hot path does a few comparisons per frame, and the exposition is built at scrape time.
 */
class SnapshotHistogram extends Histogram {
  readonly #name: string;
  readonly #help: string;
  readonly #read: () => HistogramSnapshot;

  constructor(name: string, help: string, registry: Registry, read: () => HistogramSnapshot) {
    super({ name, help, buckets: [1], registers: [registry] });
    this.#name = name;
    this.#help = help;
    this.#read = read;
  }

  override get(): ReturnType<Histogram['get']> {
    return this.getForPromString();
  }

  /** What the registry reads when it renders text (prom-client calls this in preference to `get`). */
  async getForPromString(): ReturnType<Histogram['get']> {
    const h = this.#read();
    const bucket = `${this.#name}_bucket`;
    const values: Array<{ value: number; labels: Record<string, string | number>; metricName: string }> = h.bounds.map((le, i) => ({
      value: h.cumulative[i] ?? 0,
      labels: { le },
      metricName: bucket,
    }));
    values.push({ value: h.count, labels: { le: '+Inf' }, metricName: bucket });
    values.push({ value: h.sum, labels: {}, metricName: `${this.#name}_sum` });
    values.push({ value: h.count, labels: {}, metricName: `${this.#name}_count` });
    // prom-client types a histogram's values as its own bucket objects; the registry only reads
    // { value, labels, metricName }, which is what these are.
    return { name: this.#name, help: this.#help, type: 'histogram', aggregator: 'sum', values } as unknown as Awaited<ReturnType<Histogram['get']>>;
  }
}

/**
 * A per-server Prometheus registry (never the global one, so two relays in one process do
 * not mix). Every metric reads the core's plain counters at scrape time: the hot path only
 * increments numbers.
 */
export function createMetricsRegistry(stats: () => RelayStats): Registry {
  const registry = new Registry();
  const m = snapshotMetrics(registry, stats);
  m.gauge('rhizome_relay_connections', 'Open WebSocket connections', (s) => s.connections);
  m.gauge('rhizome_relay_topics', 'Topics with at least one member or announcer', (s) => s.topics);
  m.counter('rhizome_relay_connections_total', 'Connections accepted since start', (s) => s.connectionsTotal);
  m.counter('rhizome_relay_frames_in_total', 'Frames received from clients', (s) => s.framesIn);
  m.counter('rhizome_relay_frames_out_total', 'Frames sent to clients', (s) => s.framesOut);
  m.counter('rhizome_relay_bytes_in_total', 'Bytes of frames received from clients', (s) => s.bytesIn);
  m.counter('rhizome_relay_bytes_out_total', 'Bytes of frames sent to clients', (s) => s.bytesOut);
  m.counter('rhizome_relay_errors_total', 'Socket, WebSocket and HTTP errors', (s) => s.errors);
  new Counter({
    name: 'rhizome_relay_drops_total',
    help: 'Connections cut and frames dropped, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(m.current().drops) as Array<[DropReason, number]>) this.inc({ reason }, n);
    },
  });
  new SnapshotHistogram('rhizome_relay_frame_bytes', 'Sizes of frames received from clients (bytes)', registry, () => m.current().frameBytes);
  new SnapshotHistogram('rhizome_relay_broadcast_fanout', 'Recipients per BROADCAST frame (per-topic fan-out)', registry, () => m.current().fanout);
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
