// Relay CPU per delivery with and without the relay's Node flags, deterministic load (after
// bench/results/2026-11-30-srvmem9-fan-harness.mjs). The relay runs from <worktree>'s dist/ in a
// child process started with SERVER_FLAGS (space-separated Node flags, e.g. "--max-semi-space-size=2");
// raw clients in this process BROADCAST in topics of P members; the relay's CPU (user + system)
// over all rounds is divided by the deliveries.
// usage: SERVER_FLAGS='...' node relay-cpu.mjs <worktree> <shape> [rounds]
//   shape fan:   50 topics x 4 members, 5 x 90 B per member per round   (the fan-out workload's shape)
//   shape pair:  100 topics x 2 members, 20 x 90 B per member per round (a stream between two replicas)
//   shape large: 10 topics x 2 members, 2 x 64 KiB per member per round (a cold sync's big frames)
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
globalThis.__v8 = v8;
const root = process.argv[2];
const shape = process.argv[3] ?? 'fan';
const rounds = Number(process.argv[4] ?? 40);
if (process.argv[5] === 'server') {
  const { createRelayServer } = await import(`${root}/relay/dist/index.js`);
  const s = await createRelayServer({ port: 0, host: '127.0.0.1', maxConnectionsPerIp: 20000, maxConnections: 20000 });
  const { PerformanceObserver } = await import('node:perf_hooks');
  const gcs = { n: 0, ms: 0 };
  new PerformanceObserver((list) => { for (const e of list.getEntries()) { gcs.n++; gcs.ms += e.duration; } }).observe({ entryTypes: ['gc'] });
  process.on('message', (m) => {
    if (m === 'cpu') {
      const c = process.cpuUsage();
      const young = (await_v8()).getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
      process.send({ cpu: c.user + c.system, newSpaceKiB: young.space_size >> 10, gcs: gcs.n, gcMs: gcs.ms });
    } else if (m === 'exit') process.exit(0);
  });
  process.send({ port: s.port });
} else {
  const flags = (process.env.SERVER_FLAGS ?? '').split(' ').filter(Boolean);
  const child = fork(new URL(import.meta.url).pathname, [root, shape, String(rounds), 'server'], { execArgv: flags });
  const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
  const cpu = () => new Promise((r) => { child.once('message', (m) => r(m)); child.send('cpu'); });
  const { RawClient } = await import(`${root}/relay/dist/testing/index.js`);
  const { encodeDataFrame, FrameType } = await import(`${root}/packages/transport-relay/dist/protocol.js`);
  const url = `ws://127.0.0.1:${port}`;
  const [T, P, perRound, size] = { fan: [50, 4, 5, 90], pair: [100, 2, 20, 90], large: [10, 2, 2, 65536] }[shape];
  let delivered = 0;
  const writers = [];
  for (let t = 0; t < T; t++) {
    const topic = randomBytes(32);
    for (let p = 0; p < P; p++) {
      const c = await RawClient.open(url);
      c.ws.on('message', (d) => { if (d[0] === FrameType.DELIVER) delivered++; });
      const tid = await c.join(topic);
      writers.push({ c, tid });
    }
  }
  await new Promise((r) => setTimeout(r, 500));
  const payload = randomBytes(size);
  const expected = T * P * (P - 1) * perRound;
  const round = async (target) => {
    for (const w of writers) for (let k = 0; k < perRound; k++) w.c.send(encodeDataFrame(FrameType.BROADCAST, w.tid, 0, payload));
    const deadline = Date.now() + 20000;
    while (delivered < target && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  };
  await round(expected); // warm-up
  delivered = 0;
  const c0 = await cpu();
  for (let r = 0; r < rounds; r++) await round((r + 1) * expected);
  const c1 = await cpu();
  console.log(JSON.stringify({ flags: flags.join(' ') || '(none)', shape, delivered, usPerDelivery: +((c1.cpu - c0.cpu) / delivered).toFixed(3), gcs: c1.gcs - c0.gcs, gcUsPerDelivery: +(((c1.gcMs - c0.gcMs) * 1000) / delivered).toFixed(3), newSpaceKiB: c1.newSpaceKiB }));
  child.send('exit');
  for (const w of writers) w.c.close();
  process.exit(0);
}
function await_v8() { return globalThis.__v8; }
