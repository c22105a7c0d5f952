// Relay soak (not in CI): a real relay process under churn, joins, leaves, floods, idle sockets,
// unread Connections and normal sync for a long time; its RSS and its responsiveness are sampled.
// Pass mark: flat RSS after warm-up (the last quarter's median within 15 % + 16 MiB of the
// median just after warm-up), every sync pair converged, and the relay still answering.
//
//   npm run soak:relay -- --minutes 30 [--warmup 5] [--out soak.jsonl]
//
// Prints one JSON line per sample and a summary line (`SOAK PASS` / `SOAK FAIL`); exit code 0/1.
import { appendFileSync, readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { deriveTopic, type Connection } from '@rhizome/core';
import { floodFromChildProcess, startRelayProcess } from '@rhizome/relay/testing';
import { RelayTransport } from '@rhizome/transport-relay';
import { openDatabase, type Database } from '@rhizome/sync';

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '30' }, warmup: { type: 'string', default: '5' }, out: { type: 'string' }, sample: { type: 'string', default: '10' } },
});
const MINUTES = Number(values.minutes);
const WARMUP_MS = Number(values.warmup) * 60_000;
const SAMPLE_MS = Number(values.sample) * 1000;
const MiB = 1024 * 1024;
/** How long the unread-Connection abuse waits on a writer held by flow control. */
const UNREAD_HOLD_MS = 5_000;

const relay = await startRelayProcess(['--port', '0', '--host', '127.0.0.1']);
// The soak's time starts once the relay serves (starting it takes seconds on a loaded machine).
const END = Date.now() + MINUTES * 60_000;
// rhizome-relay runs with the relay's Node flags (it re-launches itself with them, same pid): the
// RSS figures below are those of the relay operators run. Printed first and in the summary.
const relayNodeFlags = readFileSync(`/proc/${relay.child.pid}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--max-semi-space-size'));
console.log(JSON.stringify({ relay: { pid: relay.child.pid, nodeFlags: relayNodeFlags } }));
const httpUrl = relay.url.replace(/^ws/, 'http');
const counts = { churned: 0, joins: 0, leaves: 0, floods: 0, floodCloses: {} as Record<string, number>, idleSockets: 0, unreadOverflows: 0, unreadHeld: 0, puts: 0, syncChecks: 0, syncFailures: 0, errors: 0 };
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
const running = (): boolean => Date.now() < END;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A pause of a loop: `ms`, or less when the soak ends sooner (a short soak ends on time). */
const pause = (ms: number): Promise<void> => sleep(Math.max(0, Math.min(ms, END - Date.now())));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

function transport(): RelayTransport {
  return new RelayTransport({ url: relay.url, timeoutMs: 10_000, reconnect: { initialDelayMs: 100, maxDelayMs: 2000 }, onError: () => void counts.errors++ });
}

/** Churn: short-lived clients join one of 50 topics, exchange a few messages, and leave. */
async function churn(): Promise<void> {
  const topics = Array.from({ length: 50 }, (_, i) => deriveTopic(`soak churn ${i}`));
  while (running()) {
    const t = transport();
    const ac = new AbortController();
    try {
      const conns = await t.connect(pick(topics), { signal: ac.signal });
      counts.joins++;
      const it = conns[Symbol.asyncIterator]();
      const first = await Promise.race([it.next(), sleep(300).then(() => null)]);
      if (first && !first.done) await first.value.send(new Uint8Array(256)).catch(() => undefined);
      ac.abort();
      counts.leaves++;
    } catch {
      counts.errors++;
    }
    await t.disconnect();
    counts.churned++;
    await sleep(50 + Math.random() * 100);
  }
}

/** Normal sync: pairs of databases write continuously; every 20 s each pair must agree. */
async function syncPairs(): Promise<void> {
  const pairs: Array<[Database, Database]> = [];
  for (let i = 0; i < 3; i++) {
    const id = `soak-sync-${i}-${process.pid}`;
    pairs.push([await openDatabase({ id, transport: transport() }), await openDatabase({ id, transport: transport() })]);
  }
  let n = 0;
  let lastCheck = Date.now();
  while (running()) {
    for (const [a, b] of pairs) {
      a.put(`a-${n % 2000}`, { n, at: Date.now() });
      b.put(`b-${n % 2000}`, { n });
      counts.puts += 2;
    }
    n++;
    if (Date.now() - lastCheck > 20_000) {
      lastCheck = Date.now();
      for (const [a, b] of pairs) {
        counts.syncChecks++;
        const ok = await agree(a, b);
        if (!ok) counts.syncFailures++;
      }
    }
    await sleep(20);
  }
  for (const [a, b] of pairs) {
    counts.syncChecks++;
    if (!(await agree(a, b))) counts.syncFailures++;
    await a.close();
    await b.close();
  }
}

async function agree(a: Database, b: Database): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const la = JSON.stringify(a.list());
    if (la === JSON.stringify(b.list())) return true;
    await sleep(100);
  }
  return false;
}

/** Floods: a frame flooder and a byte flooder in child processes, one after the other, now and then. */
async function floods(): Promise<void> {
  while (running()) {
    await pause(45_000);
    if (!running()) break;
    for (const mode of ['frames', 'bytes'] as const) {
      try {
        const code = await floodFromChildProcess(relay.url, mode, 60_000);
        counts.floodCloses[code] = (counts.floodCloses[code] ?? 0) + 1;
      } catch {
        counts.errors++;
      }
      counts.floods++;
    }
  }
}

/** Sockets that never upgrade, and an app Connection that is never read while its peer floods it. */
async function abuse(): Promise<void> {
  while (running()) {
    const sockets: Socket[] = [];
    for (let i = 0; i < 50; i++) {
      const s = netConnect(relay.port, '127.0.0.1');
      s.on('error', () => {});
      s.resume();
      sockets.push(s);
      counts.idleSockets++;
    }
    const [reader, writer] = [transport(), transport()];
    try {
      const topic = deriveTopic(`soak unread ${Date.now()}`);
      const first = async (t: RelayTransport): Promise<Connection> => {
        const r = await (await t.connect(topic))[Symbol.asyncIterator]().next();
        if (r.done) throw new Error('ended');
        return r.value;
      };
      const [, w] = await Promise.all([first(reader), first(writer)]);
      // The writer is either cut off (the reader's Connection overflows: ERR_SLOW_CONSUMER) or held
      // by flow control: with the relay's per-Connection credit (WINDOW) a reader that never reads
      // grants nothing, and a send then waits for room until the Connection closes — so the
      // flooding is bounded in time and counted as held (a wait without bound kept a short soak
      // from ever ending).
      const flooding = (async () => {
        for (let i = 0; i < 9000 && !w.closed; i++) {
          await w.send(new Uint8Array(64)).catch(() => undefined);
          if (i % 500 === 0) await sleep(1);
        }
        for (let i = 0; i < 40 && !w.closed; i++) await sleep(50);
      })();
      const held = await Promise.race([flooding.then(() => false), sleep(UNREAD_HOLD_MS).then(() => true)]);
      if (w.closed) counts.unreadOverflows++;
      else if (held) counts.unreadHeld++;
      await reader.disconnect();
      await writer.disconnect();
      await flooding; // its waiting send ends with the Connection
    } catch {
      counts.errors++;
    }
    await reader.disconnect();
    await writer.disconnect();
    await pause(15_000);
    for (const s of sockets) s.destroy();
  }
}

interface Sample {
  t: number;
  rssMiB: number;
  healthzMs: number;
  driverEldP99Ms: number;
  connections: number;
}
const samples: Sample[] = [];
const start = Date.now();
async function sample(): Promise<void> {
  while (running()) {
    await sleep(SAMPLE_MS);
    const t0 = performance.now();
    let connections = -1;
    try {
      const res = await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(10_000) });
      connections = ((await res.json()) as { connections: number }).connections;
    } catch {
      counts.errors++;
    }
    const s: Sample = {
      t: Math.round((Date.now() - start) / 1000),
      rssMiB: Math.round((relay.memory().rss / MiB) * 10) / 10,
      healthzMs: Math.round((performance.now() - t0) * 10) / 10,
      driverEldP99Ms: Math.round(eld.percentile(99) / 1e5) / 10,
      connections,
    };
    eld.reset();
    samples.push(s);
    const line = JSON.stringify({ ...s, counts });
    console.log(line);
    if (values.out) appendFileSync(values.out, `${line}\n`);
  }
}

await Promise.all([churn(), syncPairs(), floods(), abuse(), sample()]);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const after = samples.filter((s) => s.t * 1000 >= WARMUP_MS);
const early = median(after.slice(0, Math.max(1, Math.floor(after.length / 4))).map((s) => s.rssMiB));
const late = median(after.slice(-Math.max(1, Math.floor(after.length / 4))).map((s) => s.rssMiB));
const peak = relay.memory().peak / MiB;
const flat = late <= early * 1.15 + 16;
const pass = flat && counts.syncFailures === 0 && after.length > 0;
const summary = {
  minutes: MINUTES,
  relayNodeFlags,
  rssStartMiB: samples[0]?.rssMiB,
  rssAfterWarmupMiB: early,
  rssEndMiB: late,
  rssPeakMiB: Math.round(peak),
  healthzMaxMs: Math.max(...samples.map((s) => s.healthzMs)),
  healthzMedianMs: median(samples.map((s) => s.healthzMs)),
  driverEldP99MaxMs: Math.max(...samples.map((s) => s.driverEldP99Ms)),
  ...counts,
};
console.log(`${pass ? 'SOAK PASS' : 'SOAK FAIL'} ${JSON.stringify(summary)}`);
if (values.out) appendFileSync(values.out, `${pass ? 'SOAK PASS' : 'SOAK FAIL'} ${JSON.stringify(summary)}\n`);
await relay.stop();
process.exit(pass ? 0 : 1);
