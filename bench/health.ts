// The cost of the health machinery (sealed pings, per-peer meters, the monitor's timer):
// 1. idle CPU per peer session with health on (defaults) and off, same run, same replicas;
// 2. live update throughput between two replicas through a real relay, health on vs off.
//
// npm run bench -- --only health [--quick]
// or: npm exec -- node --conditions=rhizome-source --import tsx bench/health.ts [--quick]
import { generateDatabaseId } from '@rhizome/core';
import type { HealthOptions } from '@rhizome/sync';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { createRelayServer } from '@rhizome/relay';
import { createContext, fmt, fmtStats, machineLine, repeat } from './harness.js';
import type { BenchContext } from './harness.js';
import { uniqueHub, untilSize } from '../test/sync-helpers.js';

const ON: HealthOptions = { enabled: true };
const OFF: HealthOptions = { enabled: false };

/** CPU (user + system) of this process in µs while `ms` pass idle. */
async function idleCpuUs(ms: number): Promise<number> {
  const start = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

/** `replicas` replicas of one database in a full mesh over the memory transport, synced. */
async function mesh(replicas: number, health: HealthOptions): Promise<Database[]> {
  const hub = uniqueHub('bench-health');
  const id = generateDatabaseId();
  const dbs: Database[] = [];
  for (let i = 0; i < replicas; i++) dbs.push(await openDatabase({ id, transport: { mode: 'memory', hub, peerId: `r${i}` }, health }));
  await Promise.all(dbs.map((d) => d.whenSynced({ minPeers: replicas - 1, timeoutMs: 60_000 })));
  return dbs;
}

export async function run(ctx: BenchContext): Promise<void> {
  // ---- 1. idle CPU per session ---------------------------------------------------------------
  const R = ctx.quick ? 8 : 16;
  const windowMs = ctx.quick ? 6_000 : 15_000;
  const sessions = R * (R - 1);
  const idle = { on: [] as number[], off: [] as number[] };
  // Alternate the two setups so drift on the machine hits both alike.
  for (let i = 0; i < ctx.runs; i++) {
    for (const [name, health] of [['off', OFF], ['on', ON]] as const) {
      const dbs = await mesh(R, health);
      // Let the first pings (sent right after sync) settle before measuring.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      idle[name].push(await idleCpuUs(windowMs) / (windowMs / 1000) / sessions);
      await Promise.all(dbs.map((d) => d.close()));
    }
  }
  const on = idle.on.sort((a, b) => a - b)[Math.floor(idle.on.length / 2)] as number;
  const off = idle.off.sort((a, b) => a - b)[Math.floor(idle.off.length / 2)] as number;
  ctx.table(`Idle CPU per peer session (${R} replicas in a full mesh = ${sessions} sessions, ${windowMs / 1000} s window, memory transport)`, [
    { health: 'off', 'CPU µs/s per session': fmt(off, 2) },
    { health: 'on (defaults: ping every 5 s, check every 1 s)', 'CPU µs/s per session': fmt(on, 2) },
    { health: 'cost of health', 'CPU µs/s per session': fmt(on - off, 2) },
  ]);

  // ---- 2. stream throughput through a relay ---------------------------------------------------
  const N = ctx.quick ? 5_000 : 40_000;
  const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  try {
    const stream = async (health: HealthOptions): Promise<number> => {
      const id = generateDatabaseId();
      const a = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url }, health });
      const b = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url }, health });
      await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 30_000 }), b.whenSynced({ minPeers: 1, timeoutMs: 30_000 })]);
      const t0 = performance.now();
      // 100 puts per macrotask, as an app writing steadily would.
      for (let i = 0; i < N; i += 100) {
        for (let j = i; j < i + 100 && j < N; j++) a.put(`n${j}`, { n: j });
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await untilSize(b, N, 120_000);
      const rate = (N / (performance.now() - t0)) * 1000;
      await Promise.all([a.close(), b.close()]);
      return rate;
    };
    const rates = { on: [] as number[], off: [] as number[] };
    for (let i = 0; i < ctx.runs; i++) {
      rates.off.push(await stream(OFF));
      rates.on.push(await stream(ON));
    }
    const sOn = (await repeat(rates.on.length, async (i) => rates.on[i] as number));
    const sOff = (await repeat(rates.off.length, async (i) => rates.off[i] as number));
    ctx.table(`Live updates A → relay → B (${N.toLocaleString('en-US')} puts, 100 per macrotask)`, [
      { health: 'off', 'updates/s': fmtStats(sOff, 0), ratio: '1.00' },
      { health: 'on', 'updates/s': fmtStats(sOn, 0), ratio: (sOn.median / sOff.median).toFixed(3) },
    ]);
    ctx.note(`Targets: throughput cost under 3% (ratio ≥ 0.97); idle cost under 1 µs/s per peer session.`);
  } finally {
    await relay.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  console.log(machineLine());
  await run(createContext(quick, quick ? 1 : 3));
}
