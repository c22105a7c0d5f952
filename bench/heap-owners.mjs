// What each part of a process's heap costs per replica, from V8 heap snapshots (BENCHMARKS.md §
// Issue 12, Session 10 (clidb)): every object is charged to its nearest *named* dominator (an
// instance of a class, a named closure, a native wrapper), so a Map's table, a Set's table or a
// string counts for the class instance that alone keeps it alive.
//
//   node bench/heap-owners.mjs A.heapsnapshot nA B.heapsnapshot nB
//     bytes per replica by owner and by owner <- kind, (B - A) / (nB - nA)
//   node bench/heap-owners.mjs --intercept k2a n k2b n k10a n k10b n
//     per database (intercept) and per remote replica (slope) by owner, from snapshots with 2 and
//     10 replicas per document (bench/client-memory.mjs --per-doc 2|10 --snapshot FILE)
//
// Snapshots come from `node --expose-gc bench/client-memory.mjs --replicas N --per-doc k --snapshot F`
// (after `npm run build`). Needs a few GiB of heap for large snapshots: run with
// --max-old-space-size=8000 if it runs out.
import { readFileSync } from 'node:fs';

const GENERIC = new Set(['Object', 'Array', 'Map', 'Set', '']);

/** Sizes by owner and by owner <- kind for one snapshot. */
function load(file) {
  const s = JSON.parse(readFileSync(file, 'utf8'));
  const m = s.snapshot.meta;
  const f = m.node_fields;
  const types = m.node_types[0];
  const ef = m.edge_fields;
  const etypes = m.edge_types[0];
  const nf = f.length;
  const enf = ef.length;
  const [iType, iName, iSize, iEc] = ['type', 'name', 'self_size', 'edge_count'].map((x) => f.indexOf(x));
  const [eT, eTo] = ['type', 'to_node'].map((x) => ef.indexOf(x));
  const N = s.nodes;
  const E = s.edges;
  const n = N.length / nf;
  const weak = etypes.indexOf('weak');
  const shortcut = etypes.indexOf('shortcut');
  const firstEdge = new Uint32Array(n + 1);
  for (let i = 0, e = 0; i < n; i++) {
    firstEdge[i] = e;
    e += N[i * nf + iEc] * enf;
  }
  firstEdge[n] = E.length;
  const strong = (e) => E[e + eT] !== weak && E[e + eT] !== shortcut;
  // Predecessors (strong edges only).
  const predStart = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += enf) if (strong(e)) predStart[E[e + eTo] / nf + 1]++;
  for (let i = 0; i < n; i++) predStart[i + 1] += predStart[i];
  const preds = new Uint32Array(predStart[n]);
  const fill = predStart.slice();
  for (let i = 0; i < n; i++) for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += enf) if (strong(e)) preds[fill[E[e + eTo] / nf]++] = i;
  // Post-order from the root, iteratively.
  const postNum = new Int32Array(n).fill(-1);
  const rpo = [];
  const visited = new Uint8Array(n);
  const stack = [0];
  const it = [firstEdge[0]];
  visited[0] = 1;
  while (stack.length > 0) {
    const v = stack[stack.length - 1];
    let e = it[it.length - 1];
    let pushed = false;
    while (e < firstEdge[v + 1]) {
      const t = E[e + eTo] / nf;
      const ok = strong(e);
      e += enf;
      if (ok && !visited[t]) {
        visited[t] = 1;
        it[it.length - 1] = e;
        stack.push(t);
        it.push(firstEdge[t]);
        pushed = true;
        break;
      }
    }
    if (!pushed) {
      stack.pop();
      it.pop();
      postNum[v] = rpo.length;
      rpo.push(v);
    }
  }
  // Dominators (Cooper, Harvey, Kennedy).
  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  for (let changed = true; changed; ) {
    changed = false;
    for (let k = rpo.length - 2; k >= 0; k--) {
      const b = rpo[k];
      let nd = -1;
      for (let p = predStart[b]; p < predStart[b + 1]; p++) {
        const q = preds[p];
        if (idom[q] === -1) continue;
        if (nd === -1) nd = q;
        else {
          let x = q;
          let y = nd;
          while (x !== y) {
            while (postNum[x] < postNum[y]) x = idom[x];
            while (postNum[y] < postNum[x]) y = idom[y];
          }
          nd = x;
        }
      }
      if (nd !== -1 && idom[b] !== nd) {
        idom[b] = nd;
        changed = true;
      }
    }
  }
  const typeOf = (i) => types[N[i * nf + iType]];
  const nameOf = (i) => s.strings[N[i * nf + iName]];
  const isNamed = (i) => {
    const t = typeOf(i);
    const nm = nameOf(i);
    return (t === 'object' && !GENERIC.has(nm) && !nm.startsWith('system /')) || (t === 'closure' && nm !== '') || (t === 'synthetic' && nm.startsWith('Node /'));
  };
  const ownerOf = new Int32Array(n).fill(-2);
  const owner = (i) => {
    const path = [];
    let x = idom[i];
    while (x > 0 && !isNamed(x) && ownerOf[x] === -2) {
      path.push(x);
      x = idom[x];
    }
    const o = x <= 0 ? -1 : isNamed(x) ? x : ownerOf[x];
    for (const p of path) ownerOf[p] = o;
    return o;
  };
  const byOwner = new Map();
  const byPair = new Map();
  for (let i = 0; i < n; i++) {
    const size = N[i * nf + iSize];
    if (!visited[i] || size === 0) continue;
    const o = isNamed(i) ? i : owner(i);
    const on = o < 0 ? '(root)' : (typeOf(o) === 'closure' ? 'closure ' : '') + nameOf(o);
    byOwner.set(on, (byOwner.get(on) ?? 0) + size);
    const t = typeOf(i);
    const kind = t === 'object' ? nameOf(i) : t === 'closure' ? 'closure' : t === 'array' || t === 'hidden' ? `(${t}) ${nameOf(i).slice(0, 30)}` : `(${t})`;
    const pk = `${on}  <-  ${kind}`;
    byPair.set(pk, (byPair.get(pk) ?? 0) + size);
  }
  return { byOwner, byPair };
}

function perReplica(a, na, b, nb) {
  const A = load(a);
  const B = load(b);
  const d = Number(nb) - Number(na);
  const diff = (which) => {
    const keys = new Set([...A[which].keys(), ...B[which].keys()]);
    return new Map([...keys].map((k) => [k, ((B[which].get(k) ?? 0) - (A[which].get(k) ?? 0)) / d]));
  };
  return { byOwner: diff('byOwner'), byPair: diff('byPair') };
}

const args = process.argv.slice(2);
if (args[0] === '--intercept') {
  const [a2, na2, b2, nb2, a10, na10, b10, nb10] = args.slice(1);
  const t2 = perReplica(a2, na2, b2, nb2).byOwner;
  const t10 = perReplica(a10, na10, b10, nb10).byOwner;
  const keys = new Set([...t2.keys(), ...t10.keys()]);
  const rows = [...keys].map((k) => {
    const p = ((t10.get(k) ?? 0) - (t2.get(k) ?? 0)) / 8;
    return [k, (t2.get(k) ?? 0) - p, p];
  });
  const sum = (i) => rows.reduce((acc, r) => acc + r[i], 0);
  console.log(`per database (intercept) ${sum(1).toFixed(0)} B, per remote replica (slope) ${sum(2).toFixed(0)} B`);
  console.log('  per db  per peer  owner');
  for (const [k, d, p] of rows.sort((x, y) => y[1] - x[1]).slice(0, 80)) if (Math.abs(d) >= 8 || Math.abs(p) >= 8) console.log(d.toFixed(0).padStart(8), p.toFixed(0).padStart(9), ' ', k);
} else {
  const [a, na, b, nb] = args;
  const { byOwner, byPair } = perReplica(a, na, b, nb);
  for (const [title, map, top] of [['by owner', byOwner, 80], ['by owner <- kind', byPair, 120]]) {
    const rows = [...map].sort((x, y) => y[1] - x[1]);
    console.log(`== ${title}: ${rows.reduce((acc, r) => acc + r[1], 0).toFixed(0)} B per replica`);
    for (const [k, v] of rows.slice(0, top)) if (Math.abs(v) >= 8) console.log(v.toFixed(0).padStart(7), k);
  }
}
