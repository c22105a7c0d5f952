// Receiver memory in a put burst (issue 10): `npm run burst -- --count 300000 --per-tick 1000`.
// A writer process, a relay process and a receiver process with an SQLite file (see
// scripts/burst-run.ts). Prints the receiver's start, steady and peak RSS and the ratio.
//   --samples  also print every RSS sample (one JSON line each)
//   --heap-prof  run the receiver with --heap-prof (profiles land in the current directory)
//   --stall-ms N  freeze the receiver (SIGSTOP) for N ms once it holds a quarter of the nodes
//   --receiver plain|events|list|size  what the receiver does besides syncing (burst-peer.ts)
//   --value-bytes N  each put also carries an N-byte string field
import { parseArgs } from 'node:util';
import { runBurst } from './burst-run.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '300000' },
    'per-tick': { type: 'string', default: '1000' },
    samples: { type: 'boolean', default: false },
    'heap-prof': { type: 'boolean', default: false },
    'stall-ms': { type: 'string', default: '0' },
    receiver: { type: 'string', default: 'plain' },
    'value-bytes': { type: 'string', default: '0' },
  },
});
const MiB = 1024 * 1024;
const report = await runBurst({
  count: Number(values.count),
  perTick: Number(values['per-tick']),
  stallMs: Number(values['stall-ms']),
  receiver: values.receiver as 'plain' | 'events' | 'list' | 'size',
  valueBytes: Number(values['value-bytes']),
  receiverNodeArgs: values['heap-prof'] ? ['--heap-prof', `--heap-prof-dir=${process.cwd()}`] : [],
});
if (values.samples) for (const s of report.samples) process.stdout.write(`${JSON.stringify(s)}\n`);
const f = (b: number): string => `${(b / MiB).toFixed(0)} MiB`;
process.stdout.write(
  `burst ${report.count} puts of ${values['value-bytes']} extra bytes, ${report.perTick}/tick, receiver ${values.receiver}${report.stallMs ? `, stalled ${report.stallMs} ms` : ''}: receiver start ${f(report.startRss)}, steady ${f(report.steady)}, ` +
    `peak (VmHWM) ${f(report.peak)}, peak/steady ${report.ratio.toFixed(2)}x, received in ${(report.receivedMs / 1000).toFixed(1)} s; relay peak ${f(report.relayPeak)}\n`,
);
