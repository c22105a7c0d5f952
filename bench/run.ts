// Entry point of `npm run bench`. Flags: --quick (smoke run), --only a,b (areas).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createContext, machineLine, type BenchContext } from './harness.js';

const AREAS = ['store', 'sync', 'relay', 'dht', 'compare'];
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? (args[onlyIdx + 1] ?? '').split(',') : AREAS;

const ctx = createContext(quick);
console.log(`# Rhizome benchmarks${quick ? ' (quick)' : ''}\n\n${machineLine()}`);
let failed = 0;
for (const area of AREAS.filter((a) => only.includes(a))) {
  const file = join(import.meta.dirname, `${area}.ts`);
  if (!existsSync(file)) continue;
  console.log(`\n## ${area}`);
  const started = performance.now();
  try {
    const mod = (await import(file)) as { run(ctx: BenchContext): Promise<void> };
    await mod.run(ctx);
  } catch (error) {
    failed++;
    console.error(`bench area '${area}' failed:`, error);
  }
  console.log(`\n(${area}: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
process.exit(failed ? 1 : 0);
