// bytes allocated per ping round per peer by PeerMeter (newPing, pingSent, pong), no GC in between
const { PeerMeter } = await import(process.argv[2] + '/packages/sync/dist/health.js');
const N = 20000;
const meters = Array.from({ length: N }, () => new PeerMeter(0, 0));
const results = [];
for (let r = 0; r < 12; r++) {
  globalThis.gc();
  const t = 1000 * (r + 1);
  const h0 = process.memoryUsage().heapUsed;
  for (const m of meters) { const id = m.newPing(r, t); m.pingSent(id, t + 0.25); }
  const h1 = process.memoryUsage().heapUsed;
  for (const m of meters) { m.pong(m.pingsSent, t + 1.5); }
  const h2 = process.memoryUsage().heapUsed;
  results.push([(h1 - h0) / N, (h2 - h0) / N]);
}
const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
console.log(process.argv[2], 'B/peer held while in flight', med(results.map((x) => x[0])).toFixed(1), 'allocated per round', med(results.map((x) => x[1])).toFixed(1), 'rtt', meters[0].rttMs);
