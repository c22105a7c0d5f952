/**
 * Fixed-bucket histograms the relay keeps on its hot path (a few comparisons per observation,
 * no allocation); `/metrics` turns them into Prometheus histograms at scrape time.
 */

/** Upper bounds (bytes) of the frame-size histogram: 64 B to 4 MiB, powers of 4. */
export const FRAME_BYTES_BUCKETS: readonly number[] = [64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304];
/** Upper bounds of the broadcast fan-out histogram (recipients per BROADCAST). */
export const FANOUT_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024];

/** A snapshot: cumulative counts per upper bound (Prometheus `le`), plus `+Inf` as `count`. */
export interface HistogramSnapshot {
  bounds: readonly number[];
  /** Observations at or below each bound (cumulative). */
  cumulative: number[];
  count: number;
  sum: number;
}

export class FixedHistogram {
  readonly bounds: readonly number[];
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#sum += value;
    this.#count++;
  }

  snapshot(): HistogramSnapshot {
    const cumulative: number[] = [];
    let running = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      running += this.#counts[i] as number;
      cumulative.push(running);
    }
    return { bounds: this.bounds, cumulative, count: this.#count, sum: this.#sum };
  }
}
