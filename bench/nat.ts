// NAT traversal benchmark, in real network namespaces (needs root, ip and iptables):
//
//   npm run bench -- --only nat [--quick]
//
// 1. Time from `openDatabase` to the first `synced` event at a joining replica, for a pair on an
//    open (routed, no NAT) network, behind two endpoint-independent NATs, behind two symmetric
//    NATs, and on a LAN with no route out (mDNS, no bootstrap). Each replica is its own process
//    in its own namespace (test/fixtures/nat-replica.ts), the bootstrap node (circuit relay v2)
//    in the "internet" namespace. Baseline in the same run: the open-network pair.
// 2. Hole punching: 20 fresh pairs behind endpoint-independent NATs; after they synced through the
//    relay, how many got a direct (DCUtR) connection within 5 s.
// 3. The 32-replica DHT join as deployed: one process per replica on 127.0.0.1, a bootstrap node,
//    31 replicas online; a 32nd opens: time to its first connection and its first sync.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDatabaseId } from '@rhizome/core';
import { startBootstrapNode } from '@rhizome/transport-dht';
import { LineChild, Topology, canUseNetns } from '../test/netns.js';
import { fmt, fmtStats, summarize, type BenchContext } from './harness.js';

const WAIT = 120_000;
const ROOT = join(import.meta.dirname, '..');

type Scenario = 'open' | 'eim' | 'symmetric' | 'lan';

interface Net {
  topo: Topology;
  bootstrap: string[];
  /** Namespaces of the two sides of each scenario. */
  sides: Record<Scenario, [string, string]>;
}

function build(): Net & { inet: string } {
  const topo = new Topology();
  const inet = topo.ns('inet');
  topo.forward(inet);
  topo.exec(inet, 'ip', ['addr', 'add', '198.18.0.1/32', 'dev', 'lo']);
  const sides = {} as Record<Scenario, [string, string]>;
  const homes: Array<{ n: number; scenario: Scenario; kind: 'eim' | 'symmetric' | null }> = [
    { n: 1, scenario: 'open', kind: null },
    { n: 2, scenario: 'open', kind: null },
    { n: 3, scenario: 'eim', kind: 'eim' },
    { n: 4, scenario: 'eim', kind: 'eim' },
    { n: 5, scenario: 'symmetric', kind: 'symmetric' },
    { n: 6, scenario: 'symmetric', kind: 'symmetric' },
  ];
  for (const { n, scenario, kind } of homes) {
    const r = topo.ns(`r${n}`);
    topo.link(inet, `e${n}`, `198.18.${n}.1/24`, r, 'wan', `198.18.${n}.2/24`);
    topo.exec(r, 'ip', ['route', 'add', 'default', 'via', `198.18.${n}.1`]);
    let host = r;
    if (kind !== null) {
      host = topo.ns(`h${n}`);
      topo.link(r, 'lan', `10.${n}.0.1/24`, host, 'eth0', `10.${n}.0.2/24`);
      topo.exec(host, 'ip', ['route', 'add', 'default', 'via', `10.${n}.0.1`]);
      topo.nat(r, 'wan', kind);
    }
    (sides[scenario] ??= [] as unknown as [string, string]).push(host);
  }
  const lanA = topo.ns('lan-a');
  const lanB = topo.ns('lan-b');
  topo.link(lanA, 'eth0', '10.77.0.1/24', lanB, 'eth0', '10.77.0.2/24');
  for (const ns of [lanA, lanB]) topo.exec(ns, 'ip', ['route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
  sides.lan = [lanA, lanB];
  return { topo, inet, bootstrap: [], sides };
}

type PeerLine = { path: string; synced: boolean };

/** One pair: A opens, then B; returns B's open → first synced (ms) and the path both ended on. */
async function pair(net: Net, scenario: Scenario, dir: string, watchUpgradeMs = 0): Promise<{ ms: number; paths: string[] }> {
  const id = generateDatabaseId();
  const [nsA, nsB] = net.sides[scenario];
  const dht = scenario === 'lan' ? { bootstrap: [] } : { bootstrap: net.bootstrap, mdns: false };
  const a = new LineChild(net.topo.spawnNode(nsA, 'nat-replica.ts', { id, path: join(dir, `${id}-a.db`), dht }), `${scenario}-a`);
  await a.waitFor('A ready', (l) => l.type === 'ready', WAIT);
  const b = new LineChild(net.topo.spawnNode(nsB, 'nat-replica.ts', { id, path: join(dir, `${id}-b.db`), dht }), `${scenario}-b`);
  try {
    const ready = await b.waitFor('B ready', (l) => l.type === 'ready', WAIT);
    const synced = await b.waitFor('B synced', (l) => l.type === 'synced', WAIT);
    const ms = (synced.t ?? 0) - (ready['openAt'] as number);
    let stats = await b.stats();
    if (watchUpgradeMs > 0) {
      const deadline = Date.now() + watchUpgradeMs;
      while (Date.now() < deadline && (stats['peers'] as PeerLine[]).every((p) => p.path === 'circuit')) {
        const from = b.lines.length;
        await b.waitFor('an event', () => true, 250, from).catch(() => undefined);
        stats = await b.stats();
      }
    }
    return { ms, paths: (stats['peers'] as PeerLine[]).map((p) => p.path) };
  } finally {
    for (const c of [a, b]) c.proc.kill('SIGKILL');
  }
}

async function namespaces(ctx: BenchContext): Promise<void> {
  if (!canUseNetns()) {
    ctx.note('skipped the namespace part: needs root with `ip netns` and iptables');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-bench-nat-'));
  const net = build();
  try {
    const infra = new LineChild(net.topo.spawnNode(net.inet, 'nat-infra.ts', { address: '198.18.0.1' }), 'infra');
    net.bootstrap = [(await infra.waitFor('bootstrap', (l) => l.type === 'ready', WAIT))['bootstrap'] as string];
    const runs = ctx.quick ? 1 : ctx.runs;
    const rows: Array<Record<string, string | number>> = [];
    let baseline = 0;
    for (const [scenario, label] of [
      ['open', 'open network (routed, no NAT)'],
      ['eim', 'both behind endpoint-independent NATs'],
      ['symmetric', 'both behind symmetric NATs'],
      ['lan', 'one LAN, no route out (mDNS, no bootstrap)'],
    ] as Array<[Scenario, string]>) {
      const times: number[] = [];
      let paths: string[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await pair(net, scenario, dir);
        times.push(r.ms);
        paths = r.paths;
      }
      const s = summarize(times);
      if (scenario === 'open') baseline = s.median;
      rows.push({ pair: label, 'open → first synced (ms)': fmtStats(s, 0), 'vs open network': `${fmt(s.median / baseline, 2)}x`, path: paths.join(', ') });
    }
    ctx.table(`Open → first synced at the joining replica (${runs} run(s) each, one process per replica)`, rows);

    const attempts = ctx.quick ? 3 : 20;
    let upgraded = 0;
    const upgradeTimes: number[] = [];
    for (let i = 0; i < attempts; i++) {
      const r = await pair(net, 'eim', dir, 5000);
      upgradeTimes.push(r.ms);
      if (r.paths.some((p) => p === 'holepunched' || p === 'direct')) upgraded++;
    }
    ctx.table('Hole punching (DCUtR over TCP) behind endpoint-independent NATs', [
      { attempts, 'upgraded to direct within 5 s': upgraded, 'success rate': `${fmt((100 * upgraded) / attempts, 0)}%`, 'relayed sync ready (ms, median)': fmt(summarize(upgradeTimes).median, 0) },
    ]);
  } finally {
    await net.topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** 31 replicas online, each its own process; a 32nd joins. */
async function join32(ctx: BenchContext): Promise<void> {
  const count = ctx.quick ? 8 : 32;
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-bench-join-'));
  const boot = await startBootstrapNode({ listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true });
  const id = generateDatabaseId();
  const children: LineChild[] = [];
  const start = (k: number): LineChild => {
    const proc = spawn(
      process.execPath,
      ['--conditions=rhizome-source', '--import', 'tsx', join(ROOT, 'test', 'fixtures', 'nat-replica.ts'), JSON.stringify({ id, path: join(dir, `r${k}.db`), dht: { bootstrap: boot.multiaddrs(), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false } })],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const child = new LineChild(proc, `r${k}`);
    children.push(child);
    return child;
  };
  try {
    const online = Array.from({ length: count - 1 }, (_, k) => start(k));
    await Promise.all(online.map((c) => c.waitFor('ready', (l) => l.type === 'ready', 300_000)));
    // Let the network settle: every online replica connected to at least one other.
    await Promise.all(online.map((c) => c.waitFor('a peer', (l) => l.type === 'peer-connected', 300_000)));
    const joins: Array<{ first: number; synced: number }> = [];
    for (let run = 0; run < (ctx.quick ? 1 : ctx.runs); run++) {
      const joiner = start(count - 1 + run);
      const ready = await joiner.waitFor('joiner ready', (l) => l.type === 'ready', WAIT);
      const first = await joiner.waitFor('joiner first connection', (l) => l.type === 'peer-connected', WAIT);
      const synced = await joiner.waitFor('joiner first synced', (l) => l.type === 'synced', WAIT);
      const openAt = ready['openAt'] as number;
      joins.push({ first: (first.t ?? 0) - openAt, synced: (synced.t ?? 0) - openAt });
      joiner.proc.kill('SIGKILL');
    }
    ctx.table(`DHT join with ${count} replicas, one process per replica (127.0.0.1, one bootstrap node)`, [
      {
        replicas: count,
        "joiner's open → first connection (ms)": fmtStats(summarize(joins.map((j) => j.first)), 0),
        "joiner's open → first synced (ms)": fmtStats(summarize(joins.map((j) => j.synced)), 0),
        target: '< 1000 ms to the first connection',
      },
    ]);
  } finally {
    for (const c of children) c.proc.kill('SIGKILL');
    await boot.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(ctx: BenchContext): Promise<void> {
  await namespaces(ctx);
  await join32(ctx);
}

