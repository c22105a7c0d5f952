// Totals of chaos runs from their `--out` JSON lines (one object per seed):
//   node --import tsx scripts/chaos-summary.ts run-0.jsonl run-1.jsonl ...
import { readFileSync } from 'node:fs';

interface Row {
  seed: number;
  failed?: string;
  faults?: Record<string, number>;
  side?: Record<string, number>;
  disk?: Record<string, number>;
  errors?: Record<string, number>;
  reopens?: number;
  crashesSurvived?: number;
  writesChecked?: number;
  maxQueued?: number;
  maxRssBytes?: number;
  durationMs?: number;
  replicas?: number;
  steps?: number;
}

const rows: Row[] = process.argv
  .slice(2)
  .flatMap((file) => readFileSync(file, 'utf8').split('\n').filter((l) => l.trim().length > 0))
  .map((l) => JSON.parse(l) as Row);
const add = (into: Record<string, number>, from: Record<string, number> | undefined): void => {
  for (const [k, v] of Object.entries(from ?? {})) into[k] = (into[k] ?? 0) + v;
};
const totals = {
  seedsRun: rows.length,
  seedsPassed: rows.filter((r) => r.failed === undefined).length,
  failed: rows.filter((r) => r.failed !== undefined).map((r) => ({ seed: r.seed, failed: r.failed })),
  replicas: 0,
  steps: 0,
  faults: {} as Record<string, number>,
  side: {} as Record<string, number>,
  disk: {} as Record<string, number>,
  errors: {} as Record<string, number>,
  reopens: 0,
  crashesSurvived: 0,
  writesChecked: 0,
  maxQueued: 0,
  maxRssMiB: 0,
  seedMs: { median: 0, p95: 0, max: 0, total: 0 },
};
const durations: number[] = [];
for (const r of rows) {
  if (r.failed !== undefined) continue;
  totals.replicas += r.replicas ?? 0;
  totals.steps += r.steps ?? 0;
  add(totals.faults, r.faults);
  add(totals.side, r.side);
  add(totals.disk, r.disk);
  add(totals.errors, r.errors);
  totals.reopens += r.reopens ?? 0;
  totals.crashesSurvived += r.crashesSurvived ?? 0;
  totals.writesChecked += r.writesChecked ?? 0;
  totals.maxQueued = Math.max(totals.maxQueued, r.maxQueued ?? 0);
  totals.maxRssMiB = Math.max(totals.maxRssMiB, Math.round((r.maxRssBytes ?? 0) / 2 ** 20));
  durations.push(r.durationMs ?? 0);
}
durations.sort((a, b) => a - b);
totals.seedMs = {
  median: durations[Math.floor(durations.length / 2)] ?? 0,
  p95: durations[Math.floor(durations.length * 0.95)] ?? 0,
  max: durations.at(-1) ?? 0,
  total: durations.reduce((a, b) => a + b, 0),
};
process.stdout.write(`${JSON.stringify(totals, null, 2)}\n`);
