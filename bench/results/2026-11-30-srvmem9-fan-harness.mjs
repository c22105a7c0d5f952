// Relay CPU per delivery, deterministic load: usage: node fan.mjs <worktree> [rounds]
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
const root = process.argv[2];
const rounds = Number(process.argv[3] ?? 40);
if (process.argv[4] === 'server') {
  const { createRelayServer } = await import(`${root}/relay/dist/index.js`);
  const s = await createRelayServer({ port: 0, host: '127.0.0.1', maxConnectionsPerIp: 20000, maxConnections: 20000 });
  process.on('message', (m) => { if (m === 'cpu') { const c = process.cpuUsage(); process.send({ cpu: c.user + c.system }); } else if (m === 'exit') process.exit(0); });
  process.send({ port: s.port });
} else {
  const child = fork(new URL(import.meta.url).pathname, [root, String(rounds), 'server']);
  const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
  const cpu = () => new Promise((r) => { child.once('message', (m) => r(m.cpu)); child.send('cpu'); });
  const { RawClient } = await import(`${root}/relay/dist/testing/index.js`);
  const { encodeDataFrame, encodeTopicFrame, FrameType, readU32 } = await import(`${root}/packages/transport-relay/dist/protocol.js`);
  const url = `ws://127.0.0.1:${port}`;
  const T = 50, P = 4;
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
  const payload = randomBytes(90);
  const perRound = 5;
  const expected = T * P * (P - 1) * perRound;
  // warm-up
  for (const w of writers) for (let k = 0; k < perRound; k++) w.c.send(encodeDataFrame(FrameType.BROADCAST, w.tid, 0, payload));
  while (delivered < expected) await new Promise((r) => setTimeout(r, 5));
  delivered = 0;
  const c0 = await cpu();
  for (let r = 0; r < rounds; r++) {
    const target = (r + 1) * expected;
    for (const w of writers) for (let k = 0; k < perRound; k++) w.c.send(encodeDataFrame(FrameType.BROADCAST, w.tid, 0, payload));
    const deadline = Date.now() + 20000;
    while (delivered < target && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  }
  const c1 = await cpu();
  console.log(JSON.stringify({ root, delivered, usPerDelivery: +((c1 - c0) / delivered).toFixed(3) }));
  child.send('exit');
  for (const w of writers) w.c.close();
  process.exit(0);
}
