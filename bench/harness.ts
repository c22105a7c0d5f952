// The benchmark harness: `npm run bench [-- --quick] [-- --only relay,sync]`.
// Each area is a module bench/<area>.ts exporting `run(ctx)`; it measures Rhizome and a
// baseline in the same process (or script) and reports tables with ratios.
import { cpus, totalmem } from 'node:os';

/** Summary of repeated measurements. */
export interface Stats {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/** What a benchmark area receives. */
export interface BenchContext {
  /** `--quick`: small counts, one-minute smoke run overall. */
  readonly quick: boolean;
  /** How many repetitions to take a median over (1 in quick mode; see bench/run.ts for the full run). */
  readonly runs: number;
  /** Prints a Markdown table under a heading. */
  table(title: string, rows: Array<Record<string, string | number>>): void;
  /** Prints a line of commentary. */
  note(text: string): void;
}

/** Median, min and max of numbers. */
export function summarize(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: values.length };
}

/** Runs `fn` `runs` times (sequentially) and summarizes the numbers it returns. */
export async function repeat(runs: number, fn: (i: number) => Promise<number>): Promise<Stats> {
  const values: number[] = [];
  for (let i = 0; i < runs; i++) values.push(await fn(i));
  return summarize(values);
}

/** Formats a number with a sensible precision and thousands separators. */
export function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  const d = abs >= 100 ? 0 : abs >= 10 ? Math.min(digits, 1) : Math.max(digits, 2);
  return n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: 0 });
}

/** `median (min–max)` of a summary. */
export function fmtStats(s: Stats, digits = 1): string {
  return s.runs > 1 ? `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})` : fmt(s.median, digits);
}

/** Percentile of unsorted values (p in 0..100). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

/** Resident set size in MiB. */
export function rssMiB(): number {
  return process.memoryUsage().rss / (1024 * 1024);
}

export function createContext(quick: boolean, runs = 5): BenchContext {
  return {
    quick,
    runs: quick ? 1 : runs,
    table(title, rows) {
      console.log(`\n### ${title}\n`);
      if (rows.length === 0) return;
      const cols = Object.keys(rows[0]!);
      console.log(`| ${cols.join(' | ')} |`);
      console.log(`| ${cols.map(() => '---').join(' | ')} |`);
      for (const r of rows) console.log(`| ${cols.map((c) => String(r[c] ?? '')).join(' | ')} |`);
    },
    note(text) {
      console.log(text);
    },
  };
}

/** One line describing the machine and runtime, printed at the top of every run. */
export function machineLine(): string {
  const cpu = cpus();
  return `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${new Date().toISOString()}`;
}
