// One side of the receiver-burst measurement (scripts/burst.ts): a database on its own SQLite
// file over a real relay.
//   writer: puts <count> nodes, <perTick> per macrotask, waits until a peer acknowledged them,
//           prints `written <count>` and exits.
//   receiver: prints `sample <json>` (RSS, VmHWM, heap, nodes held) every <sampleMs> ms, and
//             `done <json>` once it holds <count> nodes, is flushed, and has settled.
// usage: burst-peer.ts writer|receiver <file> <database-id> <relay-url> <count> <perTick> [sampleMs]
// env BURST_VALUE_BYTES=N: each put also carries an N-byte string field (default 0).
import { readFileSync } from 'node:fs';
import { RelayTransport } from '@rhizome/transport-relay';
import { openDatabase, NODES_MAP } from '@rhizome/sync';

const [role, path, id, url, countArg, perTickArg, sampleArg] = process.argv.slice(2);
const count = Number(countArg);
const perTick = Number(perTickArg);
if ((role !== 'writer' && role !== 'receiver') || !path || !id || !url || !(count > 0) || !(perTick > 0)) {
  process.stderr.write('usage: burst-peer.ts writer|receiver <file> <database-id> <relay-url> <count> <perTick> [sampleMs]\n');
  process.exit(2);
}
const sampleMs = Number(sampleArg ?? 100);
const out = (line: string): void => void process.stdout.write(`${line}\n`);
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function memory(): { rss: number; hwm: number; heap: number; external: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  const m = process.memoryUsage();
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), heap: m.heapUsed, external: m.external + m.arrayBuffers };
}

const transport = new RelayTransport({ url, timeoutMs: 60_000 });
const db = await openDatabase({ id, path, transport });
// `_map.size`, not `size`: Y.Map#size builds an array of every live entry on each call, whose
// garbage would inflate the very RSS this measures (no node is deleted here).
const nodes = db.doc.getMap(NODES_MAP)._map;

const valueBytes = Number(process.env.BURST_VALUE_BYTES ?? 0);
/** A distinct string of `valueBytes` characters per node. */
const body = (i: number): string => `${i}:`.padEnd(valueBytes, 'abcdefghijklmnopqrstuvwxyz');

if (role === 'writer') {
  await db.whenSynced({ minPeers: 1, timeoutMs: 60_000 });
  out('ready');
  for (let i = 0; i < count; ) {
    const end = Math.min(count, i + perTick);
    // One put = one Yjs transaction = one update, as an app calling put() in a loop does.
    for (; i < end; i++) db.put(`n${i}`, valueBytes > 0 ? { i, title: `node ${i}`, done: i % 2 === 0, body: body(i) } : { i, title: `node ${i}`, done: i % 2 === 0 });
    await tick();
  }
  await db.whenDelivered({ minPeers: 1, timeoutMs: 600_000 });
  out(`written ${count}`);
  await db.close();
  await transport.disconnect();
  process.exit(0);
} else {
  // BURST_RECEIVER=events: the receiver also consumes db.events (as an app or `rhizome sync` does);
  // BURST_RECEIVER=list: it polls db.list() (as a naive app counting its nodes does);
  // BURST_RECEIVER=size: it polls the nodes map's Y.Map#size (which copies every entry per call).
  const mode = process.env.BURST_RECEIVER ?? 'plain';
  let upserts = 0;
  if (mode === 'events') {
    void (async () => {
      for await (const event of db.events.subscribe()) if (event.type === 'node-upsert') upserts++;
    })();
  }
  if (mode === 'size') {
    const map = db.doc.getMap(NODES_MAP);
    const poll = setInterval(() => void (upserts = map.size), 50);
    poll.unref();
  }
  if (mode === 'list') {
    const poll = setInterval(() => void (upserts = db.list().length), 500);
    poll.unref();
  }
  const start = memory();
  out(`sample ${JSON.stringify({ t: 0, nodes: 0, ...start })}`);
  const t0 = Date.now();
  let peak = start.rss;
  const timer = setInterval(() => {
    const m = memory();
    peak = Math.max(peak, m.rss);
    out(`sample ${JSON.stringify({ t: Date.now() - t0, nodes: nodes.size, ...m })}`);
  }, sampleMs);
  await db.whenSynced({ minPeers: 1, timeoutMs: 60_000 });
  out('ready');
  const deadline = Date.now() + 900_000;
  while (nodes.size < count && Date.now() < deadline) await sleep(50);
  const receivedMs = Date.now() - t0;
  // Profiling aid (npm run burst -- --heap-prof): exit here, so that --heap-prof records what is
  // alive while the burst is being absorbed.
  if (process.env.BURST_EXIT_AFTER_MS) {
    await sleep(Number(process.env.BURST_EXIT_AFTER_MS));
    process.exit(0);
  }
  await db.flush();
  // Settle: let pending persistence and compaction finish, then take the steady state as the
  // median of 10 samples over 2 s.
  await sleep(3000);
  const steady: number[] = [];
  for (let i = 0; i < 10; i++) {
    steady.push(memory().rss);
    await sleep(200);
  }
  steady.sort((a, b) => a - b);
  clearInterval(timer);
  const m = memory();
  out(`done ${JSON.stringify({ mode, upserts, nodes: nodes.size, receivedMs, steady: steady[5], peakSampled: Math.max(peak, m.rss), hwm: m.hwm, startRss: start.rss })}`);
  await db.close();
  await transport.disconnect();
  process.exit(nodes.size >= count ? 0 : 1);
}
