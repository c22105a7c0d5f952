// V8 12.4 (Node 22) keeps old-space pages freed by a full GC in its page pool until a memory-reducing GC:
// RSS after plain full GCs = the high-water mark of the heap since the last memory-reducing GC, not the live size.
// Run: node --expose-gc bench/results/2026-12-01-relaymem14-v8-page-pool.mjs [--max-semi-space-size=2 before the file]
// "pool?" = anonymous memory outside glibc thread arenas minus the physical size of V8 spaces (KiB).
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
const ARENA = 64n << 20n;
function snap(tag) {
  let anon = 0, arena = 0;
  let cur = null;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const h = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (h) { cur = { s: BigInt('0x' + h[1]), perm: h[3], name: (h[4] ?? '').trim() }; continue; }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r && cur && cur.name === '') { if (cur.s % ARENA === 0n && cur.perm.startsWith('rw')) arena += +r[1]; else anon += +r[1]; }
  }
  let v8 = 0; const sp = {};
  for (const s of getHeapSpaceStatistics()) { v8 += s.physical_space_size >> 10; sp[s.space_name.replace('_space','')] = s.physical_space_size >> 10; }
  console.log(tag.padEnd(24), 'rss', process.memoryUsage.rss() >> 10, 'anon', anon, 'v8', v8, 'pool?', anon - v8, 'arena', arena, 'new', sp.new, 'old', sp.old);
}
const mode = process.argv[2] ?? 'old';
snap('start');
let keep = [];
// phase: promote lots of objects (survive 2 scavenges) then drop most
for (let round = 0; round < 40; round++) {
  const batch = [];
  for (let i = 0; i < 20000; i++) batch.push({ a: i, b: 'x' + i, c: [i, i + 1] });
  keep.push(batch);
  for (let j = 0; j < 50000; j++) ({ j }); // churn
  await new Promise((r) => setImmediate(r));
}
snap('after alloc');
// drop 90%, scattered
keep = keep.map((b) => b.filter((_, i) => i % 10 === 0));
for (let i = 0; i < 3; i++) gc();
snap('after 3 plain gc');
await new Promise((r) => setTimeout(r, 1000));
snap('1s later');
gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
snap('after last-resort');
console.log(keep.length);
