import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Metrics that read one snapshot of plain counters per scrape: the hot path only increments
 * numbers, and the exposition is built when Prometheus asks.
 *
 * The first metric registered through these helpers takes a new snapshot when it is collected;
 * every later one reads that snapshot (prom-client collects the metrics of a registry in the
 * order they were registered, synchronously at the start of a scrape).
 */
export interface SnapshotMetrics<S> {
  /** A gauge set to `pick(snapshot)` at each scrape. */
  gauge(name: string, help: string, pick: (s: S) => number): void;
  /** A counter that reports `pick(snapshot)`, a running total kept by the source. */
  counter(name: string, help: string, pick: (s: S) => number): void;
  /** The snapshot of the scrape in progress (or the first one, before any scrape). */
  current(): S;
}

/** Registers snapshot-reading gauges and counters on `registry`; see {@link SnapshotMetrics}. */
export function snapshotMetrics<S>(registry: Registry, read: () => S): SnapshotMetrics<S> {
  let snapshot = read();
  let first = true;
  // Only the first registered metric refreshes the snapshot.
  const refreshes = (): boolean => {
    const r = first;
    first = false;
    return r;
  };
  return {
    gauge(name, help, pick) {
      const refresh = refreshes();
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          if (refresh) snapshot = read();
          this.set(pick(snapshot));
        },
      });
    },
    counter(name, help, pick) {
      const refresh = refreshes();
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          if (refresh) snapshot = read();
          this.reset();
          this.inc(pick(snapshot));
        },
      });
    },
    current: () => snapshot,
  };
}
