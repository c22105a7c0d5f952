// The chaos harness: `npm run chaos -- --seeds N [--seed S] [--json] [--quiet]`.
// Runs seeds S, S+1, ..., S+N-1 (S defaults to a random seed, printed), one after another; each
// seed is a replayable schedule (see scripts/chaos-run.ts). On the first failure it prints the
// seed and the command that replays it, and exits 1. At the end it prints the totals (as JSON
// with --json). Exit codes: 0 all passed, 1 a seed failed, 2 bad usage.
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runSeed, type SeedReport } from './chaos-run.js';

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run chaos -- --seeds N [--seed S] [--json] [--quiet] [--keep-going] [--out FILE.jsonl] [--no-processes] [--no-tmpfs]\n`,
  );
  process.exit(2);
}

let values: ReturnType<typeof parse>['values'];
function parse() {
  return parseArgs({
    options: {
      seeds: { type: 'string', default: '1' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      'no-processes': { type: 'boolean', default: false },
      'no-tmpfs': { type: 'boolean', default: false },
      'keep-going': { type: 'boolean', default: false },
      out: { type: 'string' },
    },
    strict: true,
  });
}
try {
  values = parse().values;
} catch (error) {
  usage(error instanceof Error ? error.message : String(error));
}
const count = Number(values.seeds);
if (!Number.isInteger(count) || count < 1) usage(`--seeds must be a positive integer, got ${values.seeds}`);
const first = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(first) || first < 0 || first >= 2 ** 32) usage(`--seed must be an integer in [0, 2^32), got ${String(values.seed)}`);

let current = first;
const replay = (seed: number): string => `npm run chaos -- --seeds 1 --seed ${seed}`;
// A crash of the harness (an unhandled rejection from any layer) is a failure of the seed.
const crash = (error: unknown): void => {
  process.stderr.write(`\nCRASH during seed ${current}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\nreplay: ${replay(current)}\n`);
  process.exit(1);
};
process.on('unhandledRejection', crash);
process.on('uncaughtException', crash);

const totals = {
  firstSeed: first,
  seedsRun: 0,
  seedsPassed: 0,
  faults: {} as Record<string, number>,
  side: {} as Record<string, number>,
  disk: {} as Record<string, number>,
  reopens: 0,
  crashesSurvived: 0,
  writesChecked: 0,
  maxQueued: 0,
  maxRssBytes: 0,
  maxRelayRssBytes: 0,
  errors: {} as Record<string, number>,
  durationMs: 0,
  slowestSeedMs: 0,
  failedSeeds: [] as number[],
};
const out = values.out;
const add = (into: Record<string, number>, from: Record<string, number>): void => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
};
const started = performance.now();
process.stdout.write(`chaos: seeds ${first}..${first + count - 1}\n`);
for (let i = 0; i < count; i++) {
  current = first + i;
  let report: SeedReport;
  try {
    report = await runSeed(current, {
      processes: !values['no-processes'],
      tmpfs: !values['no-tmpfs'],
      log: values.quiet ? () => undefined : (line) => void process.stdout.write(`  ${line}\n`),
    });
  } catch (error) {
    totals.seedsRun++;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`\nFAILED seed ${current}: ${message}\nreplay: ${replay(current)}\n`);
    if (out !== undefined) appendFileSync(out, `${JSON.stringify({ seed: current, failed: message })}\n`);
    if (!values['keep-going']) process.exit(1);
    totals.failedSeeds.push(current);
    continue;
  }
  if (out !== undefined) appendFileSync(out, `${JSON.stringify(report)}\n`);
  totals.seedsRun++;
  totals.seedsPassed++;
  add(totals.faults, report.faults);
  add(totals.side, report.side as unknown as Record<string, number>);
  add(totals.errors, report.errors);
  add(totals.disk, report.disk);
  totals.reopens += report.reopens;
  totals.crashesSurvived += report.crashesSurvived;
  totals.writesChecked += report.writesChecked;
  totals.maxQueued = Math.max(totals.maxQueued, report.maxQueued);
  totals.maxRssBytes = Math.max(totals.maxRssBytes, report.maxRssBytes);
  totals.maxRelayRssBytes = Math.max(totals.maxRelayRssBytes, report.maxRelayRssBytes);
  totals.slowestSeedMs = Math.max(totals.slowestSeedMs, report.durationMs);
  if (!values.quiet) {
    process.stdout.write(
      `  ok seed ${current}: ${report.replicas} replicas, ${report.steps} steps, ${report.writesChecked} writes checked, ${report.durationMs} ms ${JSON.stringify(report.phasesMs)}\n`,
    );
  } else if ((i + 1) % 50 === 0) {
    process.stdout.write(`  ${i + 1}/${count} seeds passed (${Math.round((performance.now() - started) / 1000)} s)\n`);
  }
}
totals.durationMs = Math.round(performance.now() - started);
if (values.json) {
  process.stdout.write(`${JSON.stringify(totals)}\n`);
} else {
  process.stdout.write(
    `chaos: ${totals.seedsPassed}/${totals.seedsRun} seeds passed in ${(totals.durationMs / 1000).toFixed(1)} s; ` +
      `faults ${JSON.stringify(totals.faults)}; side ${JSON.stringify(totals.side)}; disk ${JSON.stringify(totals.disk)}; reopens ${totals.reopens}; ` +
      `crashes survived ${totals.crashesSurvived}; writes checked ${totals.writesChecked}; max queue ${totals.maxQueued}; ` +
      `max RSS ${(totals.maxRssBytes / 2 ** 20).toFixed(0)} MiB (relay process ${(totals.maxRelayRssBytes / 2 ** 20).toFixed(0)} MiB); error events ${JSON.stringify(totals.errors)}\n`,
  );
}
if (totals.failedSeeds.length > 0) {
  process.stderr.write(`FAILED seeds: ${totals.failedSeeds.join(', ')}\nreplay one: ${replay(totals.failedSeeds[0]!)}\n`);
  process.exit(1);
}
process.exit(0);
