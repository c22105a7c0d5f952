// Entry point of `npm run bench`. Flags: --quick (smoke run), --only a,b (areas).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createContext, machineLine, type BenchContext } from './harness.js';

const totalStarted = performance.now();

const AREAS = ['store', 'sync', 'relay', 'cluster', 'mailbox', 'dht', 'health', 'browser', 'nat', 'compare'];
// Runs per measurement in the full run: the comparison tables take the median of 5; the areas
// that measure one layer beside its own baseline take 3, so the whole run stays under 15 minutes.
const RUNS: Record<string, number> = { compare: 5 };
const DEFAULT_RUNS = 3;
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? (args[onlyIdx + 1] ?? '').split(',') : AREAS;

console.log(`# Rhizome benchmarks${quick ? ' (quick)' : ''}\n\n${machineLine()}`);
let failed = 0;
for (const area of AREAS.filter((a) => only.includes(a))) {
  const file = join(import.meta.dirname, `${area}.ts`);
  if (!existsSync(file)) continue;
  console.log(`\n## ${area}`);
  const started = performance.now();
  try {
    const mod = (await import(file)) as { run(ctx: BenchContext): Promise<void> };
    await mod.run(createContext(quick, RUNS[area] ?? DEFAULT_RUNS));
  } catch (error) {
    failed++;
    console.error(`bench area '${area}' failed:`, error);
  }
  console.log(`\n(${area}: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
console.log(`\n(total: ${((performance.now() - totalStarted) / 60_000).toFixed(1)} min)`);
process.exit(failed ? 1 : 0);
