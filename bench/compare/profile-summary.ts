// Summarizes a V8 CPU profile (`node --cpu-prof`, e.g. from `npm run bench -- --only compare
// --profile`): self time by function and by package, so a missed target can say where the time
// goes. Usage: node --import tsx bench/compare/profile-summary.ts FILE.cpuprofile [top=25] [workloads.ts]
// (the last argument limits it to the samples between the first and last running that file).
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where a script URL belongs: a package name, a workspace path, or the Node internals. */
export function owner(url: string): string {
  if (!url) return '(native/gc/idle)';
  if (url.startsWith('node:')) return 'node internals';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const m = /\/(packages\/[^/]+|relay|bench)\//.exec(url);
  return m ? m[1]! : url;
}

/**
 * Self time by function and package. With `window`, only the samples between the first and the
 * last whose stack runs code of a file whose URL contains `window` (e.g. `workloads.ts`: the
 * measured part of a driver, without its start-up) count.
 */
export function summarizeProfile(profile: Profile, top = 25, window?: string): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  let from = 0;
  let to = profile.samples.length - 1;
  if (window) {
    const inWindow = new Map<number, boolean>();
    const test = (id: number): boolean => {
      const known = inWindow.get(id);
      if (known !== undefined) return known;
      const p = parent.get(id);
      const v = byId.get(id)!.callFrame.url.includes(window) || (p !== undefined && test(p));
      inWindow.set(id, v);
      return v;
    };
    from = profile.samples.findIndex((id) => test(id));
    to = profile.samples.findLastIndex((id) => test(id));
    if (from < 0) return `no sample runs code of ${window}`;
  }
  const self = new Map<number, number>();
  for (let i = from; i <= to; i++) self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || '(anonymous)';
    const file = n.callFrame.url.split('/').slice(-2).join('/');
    const key = n.callFrame.url ? `${name} ${file}:${n.callFrame.lineNumber + 1}` : name;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const pkg = ['(idle)', '(program)', '(garbage collector)'].includes(name) ? name : owner(n.callFrame.url);
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + us);
  }
  const pct = (us: number): string => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms`;
  const lines = [`total sampled ${(total / 1000).toFixed(0)} ms`, '', 'self time by package:'];
  for (const [k, v] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`  ${pct(v)}  ${k}`);
  lines.push('', `self time by function (top ${top}):`);
  for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(v)}  ${k}`);
  return lines.join('\n');
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: profile-summary.ts FILE.cpuprofile [top] [window-url-part]');
    process.exit(2);
  }
  console.log(summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(process.argv[3] ?? 25), process.argv[4]));
}
