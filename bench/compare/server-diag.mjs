// Memory diagnostics of a server under test (bench/compare/relay-server.ts, bench/peers/server.mjs),
// on only when BENCH_SERVER_DIAG=<dir> is set: one JSON line per event in <dir>/<kind>-<pid>.jsonl.
// - every GC (PerformanceObserver 'gc': kind, duration) with V8's space sizes just after it, so the
//   young generation's growth during a connect burst shows when and by how much it happened;
// - at every stats mark: the spaces, process.memoryUsage() and /proc/self/smaps summed by kind of
//   mapping, before the GCs, after the plain full GCs and after the memory-reducing one.
// Plain JavaScript (both servers load it; the peers' server is not TypeScript). Not for figures
// of record: the observer and the file writes cost a little memory themselves.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';

const DIR = process.env.BENCH_SERVER_DIAG;

/** Space sizes in KiB: [committed, physical, used] per space, and V8's total malloced memory. */
function spaces() {
  const out = {};
  for (const s of getHeapSpaceStatistics()) {
    out[s.space_name.replace('_space', '')] = [s.space_size >> 10, s.physical_space_size >> 10, s.space_used_size >> 10];
  }
  const h = getHeapStatistics();
  out.malloced = h.malloced_memory >> 10;
  out.external = h.external_memory >> 10;
  return out;
}

/** /proc/self/smaps Rss summed by kind of mapping, KiB. */
function smaps() {
  const out = { heap: 0, anon: 0, file: 0, stack: 0, other: 0 };
  let kind = 'other';
  try {
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+(?:\s+(.*))?$/.exec(line);
      if (head) {
        const name = head[1] ?? '';
        kind = name === '[heap]' ? 'heap' : name === '' ? 'anon' : name.startsWith('/') ? 'file' : name.startsWith('[stack') ? 'stack' : 'other';
        continue;
      }
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss) out[kind] += Number(rss[1]);
    }
  } catch {
    // not Linux
  }
  return out;
}

const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/**
 * Starts the diagnostics for a server named `kind`; returns `mark(name, phase)` (a no-op when off).
 * @param {string} kind
 * @returns {(name: string, phase: string) => void}
 */
export async function serverDiag(kind) {
  if (!DIR) return () => {};
  // BENCH_SERVER_V8_FLAGS='--trace-gc-nvp' etc.: V8 flags for this diagnostic run only (stdout is
  // saved by bench/compare.ts next to the other files).
  if (process.env.BENCH_SERVER_V8_FLAGS) setFlagsFromString(process.env.BENCH_SERVER_V8_FLAGS);
  const file = join(DIR, `${kind}-${process.pid}.jsonl`);
  const t0 = performance.now();
  const write = (o) => appendFileSync(file, JSON.stringify({ t: Math.round(performance.now() - t0), ...o }) + '\n');
  // BENCH_SERVER_WRITES=1: count socket writes, and those still in flight when write() returns
  // (libuv could not write them at once: their buffers and write requests live on).
  const writes = { calls: 0, pending: 0 };
  if (process.env.BENCH_SERVER_WRITES) {
    const { Socket } = await import('node:net');
    const write = Socket.prototype.write;
    Socket.prototype.write = function (...args) {
      const r = write.apply(this, args);
      writes.calls++;
      if (this.writableLength > 0) writes.pending++;
      return r;
    };
  }
  let last = '';
  let minors = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const s = spaces();
      const key = `${s.new?.[0]}/${s.old?.[0]}/${s.code?.[0]}`;
      // Every major GC, and a minor one only when a space's committed size changed.
      const kindName = KINDS[e.detail?.kind] ?? String(e.detail?.kind);
      if (kindName === 'minor') minors++;
      if (kindName === 'minor' && key === last) continue;
      last = key;
      write({ gc: kindName, minors, ms: Math.round(e.duration * 10) / 10, rss: process.memoryUsage.rss() >> 10, spaces: s });
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  // BENCH_SERVER_SAMPLING=all|survivors: V8's sampling heap profiler from the end of mark 2 (the
  // half, settled) to the start of mark 3 (before its GCs): 'all' keeps every sampled allocation,
  // 'survivors' drops those a scavenge collected (what survived at least one scavenge, or lives).
  const sampling = process.env.BENCH_SERVER_SAMPLING;
  let session;
  const post = (method, params, on = session) => new Promise((resolve, reject) => on.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
  return (name, phase) => {
    if (sampling && name === '2' && phase === 'memory-reducing GC') {
      void import('node:inspector').then(({ Session }) => {
        session = new Session();
        session.connect();
        return post('HeapProfiler.startSampling', {
          samplingInterval: 1024,
          includeObjectsCollectedByMajorGC: sampling !== 'live',
          includeObjectsCollectedByMinorGC: sampling === 'all',
        });
      });
    }
    // 'survivors' stops after one more scavenge (what is left in the young generation then survived
    // one); 'live' after the plain full GCs (what the connections keep).
    if (sampling && name === '3' && phase === (sampling === 'live' ? 'plain GC' : 'before GC') && session) {
      if (sampling === 'survivors') globalThis.gc?.({ type: 'minor' });
      const s = session;
      session = undefined;
      void post('HeapProfiler.stopSampling', {}, s).then((res) => {
        appendFileSync(join(DIR, `${kind}-${process.pid}-${sampling}.heapprofile`), JSON.stringify(res.profile));
        s.disconnect();
      });
    }
    // BENCH_SERVER_SMAPS=1: the whole /proc/self/smaps at each mark and phase, for a diff by mapping.
    if (process.env.BENCH_SERVER_SMAPS) {
      try {
        writeFileSync(join(DIR, `${kind}-${process.pid}-smaps-${name}-${phase.replace(/ /g, '_')}.txt`), readFileSync('/proc/self/smaps', 'utf8'));
      } catch {
        // not Linux
      }
    }
    const m = process.memoryUsage();
    write({ mark: name, phase, writes: { ...writes }, rss: m.rss >> 10, heapUsed: m.heapUsed >> 10, spaces: spaces(), smaps: smaps() });
  };
}
