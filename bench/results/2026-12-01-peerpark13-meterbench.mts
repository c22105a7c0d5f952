// CPU of a PeerMeter's per-frame bookkeeping (received/sent, rates read now and then): ns per call.
const dir = process.argv[2]!;
const { PeerMeter } = await import(`${dir}/packages/sync/src/health.ts`);
function run(n: number, bytes: () => number): number {
  const meters = Array.from({ length: 64 }, () => new PeerMeter(0, 0));
  let now = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const m = meters[i & 63];
    now += 0.01;
    if (i & 1) m.received(bytes(), now);
    else m.sent(bytes(), now);
    if ((i & 4095) === 0) m.rates(now);
  }
  return Number(process.hrtime.bigint() - t0) / n;
}
let x = 1;
const small = () => 60;
const large = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff), 60 + (x % 9000));
for (let round = 0; round < 3; round++) {
  console.log(`small frames ${run(5_000_000, small).toFixed(1)} ns/call; mixed frames ${run(5_000_000, large).toFixed(1)} ns/call`);
}
