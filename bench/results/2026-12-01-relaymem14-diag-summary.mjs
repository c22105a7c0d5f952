// Summary of a BENCH_SERVER_DIAG directory (BENCHMARKS Session 14 (relaymem)): per server, V8 spaces, glibc main arena ([heap]),
// anonymous memory outside V8 spaces, at each mark and phase; growth per connection.  node <this> <dir> [connections]
// usage: node diag.mjs <dir> : per server file, per mark & phase, breakdown; and deltas after-before per connection
import { readFileSync, readdirSync } from 'node:fs';
const dir = process.argv[2];
const N = Number(process.argv[3] ?? 5000);
for (const f of readdirSync(dir).filter((f) => f.endsWith('.jsonl'))) {
  const lines = readFileSync(`${dir}/${f}`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const marks = lines.filter((l) => l.mark);
  const gcs = lines.filter((l) => l.gc);
  console.log(`== ${f}: ${gcs.length} gc lines; minors total ${gcs.at(-1)?.minors}`);
  const row = (m) => {
    const s = m.spaces; const phys = (k) => s[k]?.[1] ?? 0; const used = (k) => s[k]?.[2] ?? 0;
    const v8phys = Object.keys(s).filter((k) => Array.isArray(s[k])).reduce((a, k) => a + phys(k), 0);
    return { rss: m.rss, heapUsed: m.heapUsed, newP: phys('new'), oldP: phys('old'), oldU: used('old'), code: phys('code'), trusted: phys('trusted'), lo: phys('large_object'), v8phys, malloced: s.malloced, external: s.external, mheap: m.smaps.heap, anon: m.smaps.anon, anonNotV8: m.smaps.anon - v8phys, file: m.smaps.file };
  };
  const rows = marks.map((m) => ({ k: `${m.mark}/${m.phase}`, ...row(m) }));
  console.table(rows);
  const get = (mark, phase) => rows.find((r) => r.k === `${mark}/${phase}`);
  for (const phase of ['plain GC', 'memory-reducing GC']) {
    const a = get('1', phase), h = get('2', phase), b = get('3', phase);
    if (!a || !b) continue;
    const d = {}; const d2 = {};
    for (const k of Object.keys(a)) if (k !== 'k') { d[k] = +((b[k] - a[k]) / N).toFixed(2); if (h) d2[k] = +((b[k] - h[k]) / (N / 2)).toFixed(2); }
    console.log(`${phase}: KiB/conn (after-before)/${N}`, JSON.stringify(d));
    console.log(`${phase}: 2nd half KiB/conn`, JSON.stringify(d2));
  }
}
