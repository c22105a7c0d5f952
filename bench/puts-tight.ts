// Local puts in a tight loop, persisted (issue 12: >= 150k/s), as a minimal reproduction: the floor
// (a bare Y.Doc with the database's layout, 1,000 puts per transaction, each update one INSERT)
// beside Rhizome's batch paths. Rounds interleave every variant, so all of them see the same
// machine load; each line gives the median wall rate and the median CPU time per put
// (process.cpuUsage, all threads). BENCHMARKS.md § Issue 12, Session 6 (puts) reads it.
//
// node_modules/node/bin/node --conditions=rhizome-source --import tsx bench/puts-tight.ts \
//   [--puts 100000] [--rounds 5] [--only '<substring of a variant name>[|<another>...]'] [--base DIR]
// --base DIR[,DIR2...] adds the Rhizome rows again for the sync package sources in DIR (an A/B in one
// process, e.g. `mkdir -p node_modules/.ab && git archive main packages/sync/src | tar -x -C node_modules/.ab` and
// `--base node_modules/.ab/packages/sync/src/index.ts`; delete it afterwards).
// (without --conditions=rhizome-source it measures the built dist/; add --cpu-prof to the node
// flags with --only to profile one variant)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Y from 'yjs';
import Sqlite from 'better-sqlite3';
import { openDatabase } from '@rhizome/sync';
import { flag } from './args.js';
import { floorWriter, node } from './floor-writer.js';

const PUTS = Number(flag('--puts', '100000'));
const ROUNDS = Number(flag('--rounds', '5'));
const ONLY = flag('--only', '');
const BASE = flag('--base', '');
/** Puts of the one-per-macrotask rows (their rates and CPU are per put all the same). */
const ONE = Math.min(PUTS, 20_000);
type Open = typeof openDatabase;
/** `--base` takes one path, or several separated by commas (rows `base`, `base2`, ...). */
const bases: Array<[string, Open]> = [];
for (const [i, path] of (BASE === '' ? [] : BASE.split(',')).entries()) {
  bases.push([i === 0 ? 'base' : `base${i + 1}`, ((await import(join(process.cwd(), path))) as { openDatabase: Open }).openDatabase]);
}

/**
 * The timed window of the variant running now, as bench/sync.ts times it: from after the open to
 * before the close (the floors: from after making the writer to after its last INSERT).
 */
let timed: { cpu: NodeJS.CpuUsage; t0: number; cpuUs: number; ms: number } | null = null;
function begin(): void {
  timed = { cpu: process.cpuUsage(), t0: performance.now(), cpuUs: 0, ms: 0 };
}
function end(): void {
  const w = timed!;
  w.ms = performance.now() - w.t0;
  const cpu = process.cpuUsage(w.cpu);
  w.cpuUs = cpu.user + cpu.system;
}

const dir = mkdtempSync(join(tmpdir(), 'rhizome-puts-tight-'));
let files = 0;
const file = (): string => join(dir, `f${files++}.db`);

/** The floor: bench/floor-writer.ts, 1,000 puts per transaction. */
async function floor(encoder: 'yjs' | 'js' | 'none'): Promise<void> {
  const w = floorWriter(file(), encoder);
  begin();
  for (let from = 0; from < PUTS; from += 1000) w.put(from, Math.min(1000, PUTS - from));
  await Promise.resolve(); // the microtask that writes the updates
  end();
  w.close();
}

const variants: Array<[string, () => Promise<void>]> = [
  ['floor: same layout, 1,000 per transaction, Yjs update + INSERT', () => floor('yjs')],
  ['floor, cheapest known: entries via setEntry, update via doc-updates.ts + INSERT', () => floor('js')],
  ['bare layout, 1,000 per transaction, no update, no SQLite', () => floor('none')],
  ...rhizome('Rhizome', openDatabase),
  ...bases.flatMap(([label, open]) => rhizome(label, open)),
];

function rhizome(label: string, open: Open): Array<[string, () => Promise<void>]> {
  return [
    [`${label} db.put tight loop`, async () => {
      const db = await open({ id: 'bench', path: file() });
      begin();
      for (let i = 0; i < PUTS; i++) db.put(`n${i}`, node(i));
      await db.flush();
      end();
      await db.close();
    }],
    [`${label} db.put, 1 per macrotask (${ONE.toLocaleString('en-US')} puts; rate per put)`, async () => {
      const db = await open({ id: 'bench', path: file() });
      begin();
      for (let i = 0; i < ONE; i++) {
        db.put(`n${i}`, node(i));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      end();
      await db.close();
    }],
    [`${label} db.transact, 1,000 each`, async () => {
      const db = await open({ id: 'bench', path: file() });
      begin();
      for (let i = 0; i < PUTS; i += 1000) {
        db.transact(() => {
          for (let j = i; j < i + 1000 && j < PUTS; j++) db.put(`n${j}`, node(j));
        });
      }
      await db.flush();
      end();
      await db.close();
    }],
  ];
}

const results = new Map<string, { rate: number[]; cpu: number[]; winRate: number[]; winCpu: number[] }>();
try {
  const chosen = variants.filter(([name]) => ONLY === '' || ONLY.split('|').some((o) => name.includes(o)));
  for (const [name] of chosen) results.set(name, { rate: [], cpu: [], winRate: [], winCpu: [] });
  for (let round = 0; round < ROUNDS; round++) {
    // Each round starts one variant later, so none always follows the same one (and pays for
    // the garbage it left).
    for (let k = 0; k < chosen.length; k++) {
      const [name, run] = chosen[(round + k) % chosen.length]!;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      timed = null;
      await run();
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const r = results.get(name)!;
      const puts = name.includes('per macrotask') ? ONE : PUTS;
      r.rate.push((puts / ms) * 1000);
      r.cpu.push((cpu.user + cpu.system) / puts);
      const w = timed as { cpuUs: number; ms: number } | null;
      r.winRate.push(w === null ? Number.NaN : (puts / w.ms) * 1000);
      r.winCpu.push(w === null ? Number.NaN : w.cpuUs / puts);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const reference = [...results.values()][0]!;
process.stdout.write(`Tight loop, ${PUTS} puts of a 3-field node into an SQLite file, ${ROUNDS} interleaved rounds (medians). "Whole": open and close included; "timed": as bench/sync.ts times it (open and close excluded)\n\n`);
process.stdout.write('| variant | puts/s whole | CPU µs per put, whole | CPU min–max | CPU ÷ first row (median of per-round ratios) | puts/s timed | CPU µs per put, timed | timed CPU ÷ first row (paired median) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n');
for (const [name, r] of results) {
  const lo = Math.min(...r.cpu).toFixed(2);
  const hi = Math.max(...r.cpu).toFixed(2);
  const paired = median(r.cpu.map((c, i) => c / reference.cpu[i]!)).toFixed(3);
  const winPaired = median(r.winCpu.map((c, i) => c / reference.winCpu[i]!)).toFixed(3);
  process.stdout.write(`| ${name} | ${Math.round(median(r.rate)).toLocaleString('en-US')} | ${median(r.cpu).toFixed(2)} | ${lo}–${hi} | ${paired} | ${Math.round(median(r.winRate)).toLocaleString('en-US')} | ${median(r.winCpu).toFixed(2)} | ${winPaired} |\n`);
}
if (process.argv.includes('--rounds-detail')) {
  for (const [name, r] of results) process.stdout.write(`${name}: CPU µs/put by round ${r.cpu.map((c) => c.toFixed(2)).join(' ')}; timed ${r.winCpu.map((c) => c.toFixed(2)).join(' ')}\n`);
}
