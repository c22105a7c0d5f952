// Allocation sites of a sampling heap profile written by `bench/client-memory.mjs --alloc-out`,
// per replica, and the difference of two profiles of the same run shape (BENCHMARKS.md § Issue
// 12, Session 13 (rssconn)): with A = `--alloc-keep promoted` (what scavenges promoted, dead or
// alive, under --initial-old-space-size=4000) and B = `--alloc-keep none` (what is alive at the
// end), A − B is what was promoted and then died — the old-space garbage behind the RSS a plain GC
// leaves — by site.
//
//   node bench/alloc-sites.mjs A.json[,A2.json...] [B.json[,B2...]] --replicas N [--top 25] [--by own|leaf|both|path|pkg]
//
// Several comma-separated profiles on one side are averaged. Sites: `own` = the nearest frame of
// the repository's own code (packages/, relay/, bench/), else of a package from node_modules,
// else Node's; `leaf` = the allocating function; `both` = own ← leaf; `path` = the last six own frames ← leaf; `pkg` = the leaf's package
// or Node module.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { replicas: { type: 'string' }, top: { type: 'string', default: '25' }, by: { type: 'string', default: 'own' } },
});
if (!o.replicas || positionals.length < 1) throw new Error('usage: alloc-sites.mjs A.json [B.json] --replicas N');
const n = Number(o.replicas);

function where(url) {
  const u = url.replace(/^file:\/\//, '');
  let m = /\/(packages\/[^/]+|relay)\/(?:dist|src)\/(.*)$/.exec(u);
  if (m) return { kind: 'own', name: `${m[1].replace('packages/', '')}/${m[2]}` };
  m = /\/bench\/(.*)$/.exec(u);
  if (m && !u.includes('node_modules')) return { kind: 'own', name: `bench/${m[1]}` };
  m = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(u);
  if (m) return { kind: 'pkg', name: m[1], file: m[2] };
  if (u.startsWith('node:')) return { kind: 'node', name: u.replace(/^node:(internal\/)?/, 'node:') };
  return { kind: 'other', name: u || '(native)' };
}

function label(frame) {
  const w = where(frame.url);
  const fn = frame.functionName || '(anonymous)';
  if (w.kind === 'own') return `${fn} ${w.name}:${frame.lineNumber + 1}`;
  if (w.kind === 'pkg') return `${fn} ${w.name}/${w.file.split('/').pop()}:${frame.lineNumber + 1}`;
  return `${fn} ${w.name}`;
}

function sites(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const out = new Map();
  const walk = (node, stack) => {
    const f = node.callFrame;
    if (f.functionName === 'youngFlush') return;
    const here = [...stack, f];
    if (node.selfSize > 0) {
      let own = null;
      let pkg = null;
      for (let i = here.length - 1; i >= 0; i--) {
        const w = where(here[i].url);
        if (w.kind === 'own' && own === null) own = here[i];
        if (w.kind === 'pkg' && pkg === null) pkg = here[i];
      }
      const leaf = label(f);
      const ownLabel = own ? label(own) : pkg ? label(pkg) : leaf;
      const path = () => here.filter((fr) => where(fr.url).kind === 'own').map((fr) => `${fr.functionName || '(anonymous)'}:${fr.lineNumber + 1}`).slice(-6).join(' > ');
      const key = o.by === 'path' ? `${path()}  <-  ${leaf}` : o.by === 'leaf' ? leaf : o.by === 'both' ? `${ownLabel}  <-  ${leaf}` : o.by === 'pkg' ? where(f.url).name : ownLabel;
      out.set(key, (out.get(key) ?? 0) + node.selfSize);
    }
    for (const c of node.children) walk(c, here);
  };
  walk(profile.head, []);
  return out;
}

function side(arg) {
  const files = arg.split(',');
  const sum = new Map();
  for (const f of files) for (const [k, v] of sites(f)) sum.set(k, (sum.get(k) ?? 0) + v / files.length);
  return sum;
}

const a = side(positionals[0]);
const b = positionals[1] ? side(positionals[1]) : new Map();
const keys = new Set([...a.keys(), ...b.keys()]);
const rows = [...keys].map((k) => [k, a.get(k) ?? 0, b.get(k) ?? 0]);
const total = (m) => [...m.values()].reduce((x, y) => x + y, 0);
const kib = (x) => (x / 1024 / n).toFixed(2).padStart(7);
console.log(`KiB per replica (${n} replicas): A ${kib(total(a))}${positionals[1] ? `   B ${kib(total(b))}   A−B ${kib(total(a) - total(b))}` : ''}`);
rows.sort((x, y) => y[1] - y[2] - (x[1] - x[2]));
for (const [k, va, vb] of rows.slice(0, Number(o.top))) console.log(`${kib(va - vb)}  (A ${kib(va)} B ${kib(vb)})  ${k}`);
