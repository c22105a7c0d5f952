// NAT traversal benchmark, in real network namespaces (needs root, ip and iptables):
//
//   npm run bench -- --only nat [--quick] [--parts pairs,holepunch,join] [--joins N]
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
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDatabaseId } from '@rhizome/core';
import { LineChild, Topology, canUseNetns } from '../test/netns.js';
import { fmt, fmtStats, summarize, type BenchContext } from './harness.js';

const WAIT = 120_000;
/** Bound on one hole-punch attempt's waits (the pair opening and syncing), and the upgrade watch after. */
const ATTEMPT_BOUND_MS = 45_000;
const UPGRADE_WATCH_MS = 5_000;
/** Bound on the 31 online replicas finding a first peer before the joiners come. */
const SETTLE_MS = 180_000;
/** `--parts pairs,holepunch,join` runs only those parts (default: all). */
const PARTS = ((): string[] => {
  const i = process.argv.indexOf('--parts');
  return i >= 0 ? (process.argv[i + 1] ?? '').split(',') : ['pairs', 'holepunch', 'join'];
})();
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

/** How one hole-punch attempt ended. */
type Outcome = 'upgraded' | 'stayed circuit' | 'direct from the start' | 'not synced in time' | 'error';

/**
 * One pair: A opens, then B; returns B's open → first synced (ms) and the paths B's peers ended
 * on. Every wait is bounded by `boundMs`; with `watchUpgradeMs` it then watches B's stats that
 * long for a relayed path to become direct (DCUtR).
 */
async function pair(
  net: Net,
  scenario: Scenario,
  dir: string,
  options: { watchUpgradeMs?: number; boundMs?: number } = {},
): Promise<{ ms: number; paths: string[] }> {
  const bound = options.boundMs ?? WAIT;
  const id = generateDatabaseId();
  const [nsA, nsB] = net.sides[scenario];
  const dht = scenario === 'lan' ? { bootstrap: [] } : { bootstrap: net.bootstrap, mdns: false };
  const a = new LineChild(net.topo.spawnNode(nsA, 'nat-replica.ts', { id, path: join(dir, `${id}-a.db`), dht }), `${scenario}-a`);
  let b: LineChild | null = null;
  try {
    await a.waitFor('A ready', (l) => l.type === 'ready', bound);
    b = new LineChild(net.topo.spawnNode(nsB, 'nat-replica.ts', { id, path: join(dir, `${id}-b.db`), dht }), `${scenario}-b`);
    const ready = await b.waitFor('B ready', (l) => l.type === 'ready', bound);
    const synced = await b.waitFor('B synced', (l) => l.type === 'synced', bound);
    const ms = (synced.t ?? 0) - (ready['openAt'] as number);
    let stats = await b.stats();
    const watch = options.watchUpgradeMs ?? 0;
    if (watch > 0) {
      const deadline = Date.now() + watch;
      for (let i = 0; i < 100 && Date.now() < deadline && (stats['peers'] as PeerLine[]).every((p) => p.path === 'circuit'); i++) {
        const from = b.lines.length;
        await b.waitFor('an event', () => true, 250, from).catch(() => undefined);
        stats = await b.stats();
      }
    }
    return { ms, paths: (stats['peers'] as PeerLine[]).map((p) => p.path) };
  } finally {
    await Promise.all([a, b].map((c) => (c ? kill(c) : undefined)));
  }
}

/** SIGKILLs a fixture and waits for it to be gone (its namespace's sockets with it). */
function kill(child: LineChild): Promise<void> {
  return new Promise<void>((resolve) => {
    const proc = child.proc;
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
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
    if (PARTS.includes('pairs')) for (const [scenario, label] of [
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
    if (PARTS.includes('pairs')) ctx.table(`Open → first synced at the joining replica (${runs} run(s) each, one process per replica)`, rows);

    const attempts = !PARTS.includes('holepunch') ? 0 : ctx.quick ? 3 : 20;
    const outcomes: Array<{ outcome: Outcome; ms: number | null; detail: string }> = [];
    for (let i = 0; i < attempts; i++) {
      try {
        const r = await pair(net, 'eim', dir, { watchUpgradeMs: UPGRADE_WATCH_MS, boundMs: ATTEMPT_BOUND_MS });
        const outcome: Outcome = r.paths.some((p) => p === 'holepunched')
          ? 'upgraded'
          : r.paths.every((p) => p === 'circuit')
            ? 'stayed circuit'
            : r.paths.some((p) => p === 'direct')
              ? 'direct from the start'
              : 'stayed circuit';
        outcomes.push({ outcome, ms: r.ms, detail: r.paths.join(', ') });
      } catch (error) {
        const message = (error as Error).message;
        outcomes.push({ outcome: /timed out/.test(message) ? 'not synced in time' : 'error', ms: null, detail: message.slice(0, 160) });
      }
    }
    if (attempts > 0) ctx.table(`Hole punching (DCUtR over TCP) behind endpoint-independent NATs: ${attempts} fresh pairs, each bounded at ${ATTEMPT_BOUND_MS / 1000} s to sync + ${UPGRADE_WATCH_MS / 1000} s watching for an upgrade`, outcomes.map((o, i) => ({
      attempt: i + 1,
      outcome: o.outcome,
      'relayed sync ready (ms)': o.ms === null ? '-' : fmt(o.ms, 0),
      'paths at the joiner / error': o.detail,
    })));
    const count = (what: Outcome): number => outcomes.filter((o) => o.outcome === what).length;
    const synced = outcomes.filter((o) => o.ms !== null).map((o) => o.ms!);
    if (attempts > 0) ctx.table('Hole punching: summary', [
      {
        attempts,
        upgraded: count('upgraded'),
        'stayed circuit': count('stayed circuit'),
        'not synced in time': count('not synced in time'),
        error: count('error'),
        'success rate (upgraded / attempts)': `${count('upgraded')}/${attempts} (${fmt((100 * count('upgraded')) / attempts, 0)}%)`,
        'relayed sync ready (ms, median)': synced.length ? fmt(summarize(synced).median, 0) : '-',
      },
    ]);
  } finally {
    await net.topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What one join measured at the joiner, in ms from its `openDatabase`. */
interface JoinTimes {
  bootstrap: number;
  firstLink: number;
  first: number;
  synced: number;
  /** CPU time (ms) of the joiner process from open to its first Connection. */
  joinerCpu: number;
  /** CPU time (ms) of the bootstrap node(s) over the same wall-clock window. */
  bootstrapCpu: number;
  /** libp2p connections the joiner had opened when its first Connection came. */
  linksAtFirst: number;
}

/** A way the joiner runs (the online replicas always run the defaults). */
interface JoinVariant {
  label: string;
  /** Extra DHT options of the joiner. */
  dht?: Record<string, unknown>;
}

/** CPU time (user + system) of a process so far, in ms, from /proc (0 once it is gone). */
function procCpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
/** USER_HZ of /proc/<pid>/stat times (100 on Linux). */
const CLOCK_TICKS = 100;
/** Idle sampling window (the network formed, no joiner). */
const IDLE_WINDOW_MS = 10_000;
/** Pause after the mesh formed, and after each joiner left, before the next joiner opens. */
const PAUSE_MS = 3_000;

/**
 * `count − 1` replicas online, each its own process (started a few at a time, so a 2-core box
 * is not swamped by 31 cold starts at once), `bootstraps` bootstrap nodes, each its own process
 * too (the second and later join the first). Once every online replica is connected to every
 * other (bounded; the table says how many were) and the network has idled, joiners open one
 * after another, cycling through `variants` (A, B, A, B, ...: the variants share one network and
 * the same load), each killed before the next (and the others given time to see it leave). The
 * joiner traces its libp2p connections, so the time splits into: the bootstrap dial, the first
 * connection to another replica (the DHT query found it and the dial completed), the topic
 * handshake (first Connection), and the first full sync exchange.
 */
async function joinWith(
  count: number,
  joins: number,
  variants: JoinVariant[],
  bootstraps = 1,
  replicaDht: Record<string, unknown> = {},
): Promise<{ byVariant: Map<string, { times: JoinTimes[]; failures: string[] }>; settled: number; meshed: number; idle: { bootstrap: number; replica: number; total: number } }> {
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-bench-join-'));
  // The bootstrap nodes in their own processes too, as deployed (not in this one, which waits on 32 children).
  const infras: LineChild[] = [];
  const bootAddrs: string[] = [];
  const children: LineChild[] = [];
  const spawnInfra = (k: number): LineChild =>
    new LineChild(
      spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', join(ROOT, 'test', 'fixtures', 'nat-infra.ts'), JSON.stringify({ address: '127.0.0.1', port: 0, bootstrap: [...bootAddrs] })], {
        cwd: ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
      `bootstrap${k}`,
    );
  const id = generateDatabaseId();
  const start = (k: number, trace = false, extra: Record<string, unknown> = {}, tag = ''): LineChild => {
    const proc = spawn(
      process.execPath,
      [
        '--conditions=rhizome-source',
        '--import',
        'tsx',
        join(ROOT, 'test', 'fixtures', 'nat-replica.ts'),
        JSON.stringify({
          id,
          path: join(dir, `r${k}.db`),
          trace,
          ...(trace && process.env['NAT_JOIN_PROFILE'] ? { profile: `${process.env['NAT_JOIN_PROFILE']}-${count}-${k}${tag}.cpuprofile` } : {}),
          dht: { bootstrap: bootAddrs, listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, ...extra, extra: { ...replicaDht, ...((extra['extra'] as Record<string, unknown> | undefined) ?? {}) } },
        }),
      ],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: trace && process.env['NAT_JOIN_DEBUG'] ? { ...process.env, DEBUG: process.env['NAT_JOIN_DEBUG'] } : process.env },
    );
    const child = new LineChild(proc, `r${k}`);
    children.push(child);
    if (trace && process.env['NAT_JOIN_DEBUG']) proc.once('exit', () => writeFileSync(`/tmp/nat-join-${count}-${k}${tag}.log`, JSON.stringify(child.lines) + '\n' + child.stderr.join('')));
    return child;
  };
  const peersOf = (c: LineChild): Set<string> => {
    const up = new Set<string>();
    for (const l of c.lines) {
      if (l.type === 'peer-connected') up.add(l['peerId'] as string);
      else if (l.type === 'peer-disconnected') up.delete(l['peerId'] as string);
    }
    return up;
  };
  const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  try {
    for (let k = 0; k < bootstraps; k++) {
      const infra = spawnInfra(k);
      infras.push(infra);
      bootAddrs.push((await infra.waitFor('bootstrap ready', (l) => l.type === 'ready', WAIT))['bootstrap'] as string);
    }
    const bootIds = new Set(bootAddrs.map((a) => a.split('/p2p/')[1] ?? ''));
    const online: LineChild[] = [];
    for (let k = 0; k < count - 1; k += 4) {
      const batch = Array.from({ length: Math.min(4, count - 1 - k) }, (_, j) => start(k + j));
      await Promise.all(batch.map((c) => c.waitFor('ready', (l) => l.type === 'ready', 300_000)));
      online.push(...batch);
    }
    // Let the network form: every online replica connected to every other (bounded; on a loaded
    // box a few may still be looking, which the table reports), then idle a moment.
    const deadline = Date.now() + SETTLE_MS;
    const meshedCount = (): number => online.filter((c) => peersOf(c).size >= online.length - 1).length;
    while (Date.now() < deadline && meshedCount() < online.length) await wait(250);
    const settled = online.filter((c) => peersOf(c).size > 0 || online.length === 1).length;
    const meshed = meshedCount();
    await wait(PAUSE_MS);
    // Idle CPU of the formed network (no joiner): what each process spends keeping it up.
    const pids = [...infras, ...online].map((c) => c.proc.pid);
    const before = pids.map(procCpuMs);
    // NAT_IDLE_PROFILE=<prefix>: a V8 CPU profile of two online replicas over the idle window.
    const idleProfile = process.env['NAT_IDLE_PROFILE'];
    if (idleProfile) online.slice(0, 2).forEach((c, i) => c.send({ cmd: 'profile', ms: IDLE_WINDOW_MS, file: `${idleProfile}-${count}-${bootstraps}b-idle${i}.cpuprofile` }));
    const t0 = performance.now();
    await wait(IDLE_WINDOW_MS);
    const elapsed = performance.now() - t0;
    const share = pids.map((pid, i) => (100 * (procCpuMs(pid) - before[i]!)) / elapsed);
    const replicaShares = share.slice(infras.length);
    const idle = {
      bootstrap: summarize(share.slice(0, infras.length)).median,
      replica: summarize(replicaShares).median,
      total: share.reduce((a, b) => a + b, 0),
    };
    // Progress on stderr, so a run cut short still leaves its figures.
    process.stderr.write(`[nat join] ${count} replicas, ${bootstraps} bootstrap(s) ${JSON.stringify(replicaDht)}: meshed ${meshed}/${online.length}, idle CPU % of a core: bootstrap ${idle.bootstrap.toFixed(1)}, replica median ${idle.replica.toFixed(1)}, all ${idle.total.toFixed(0)}\n`);
    const byVariant = new Map(variants.map((v) => [v.label, { times: [] as JoinTimes[], failures: [] as string[] }]));
    let k = count - 1;
    for (let run = 0; run < joins; run++) {
      for (const variant of variants) {
        const result = byVariant.get(variant.label)!;
        const bootCpu0 = infras.reduce((sum, c) => sum + procCpuMs(c.proc.pid), 0);
        const joiner = start(k++, true, variant.dht ?? {}, variants.length > 1 ? `-${variants.indexOf(variant)}` : '');
        let joinerId: string | null = null;
        try {
          const ready = await joiner.waitFor('joiner ready', (l) => l.type === 'ready', WAIT);
          joinerId = ready['peerId'] as string;
          const first = await joiner.waitFor('joiner first connection', (l) => l.type === 'peer-connected', WAIT);
          const bootstrapCpu = infras.reduce((sum, c) => sum + procCpuMs(c.proc.pid), 0) - bootCpu0;
          const synced = await joiner.waitFor('joiner first synced', (l) => l.type === 'synced', WAIT);
          const openAt = ready['openAt'] as number;
          const links = joiner.lines.filter((l) => l.type === 'link');
          const since = (pred: (l: { peer: string }) => boolean): number =>
            Math.min(...links.filter((l) => pred(l as unknown as { peer: string })).map((l) => l['sinceOpen'] as number));
          result.times.push({
            bootstrap: since((l) => bootIds.has(l.peer)),
            firstLink: since((l) => !bootIds.has(l.peer)),
            first: (first.t ?? 0) - openAt,
            synced: (synced.t ?? 0) - openAt,
            joinerCpu: (first['cpuMs'] as number) - (ready['openCpuMs'] as number),
            bootstrapCpu,
            linksAtFirst: links.filter((l) => (l['sinceOpen'] as number) <= (first.t ?? 0) - openAt).length,
          });
          process.stderr.write(`[nat join] ${count}/${bootstraps} ${variant.label}: ${JSON.stringify(result.times.at(-1))}\n`);
        } catch (error) {
          result.failures.push((error as Error).message.slice(0, 300));
        } finally {
          await kill(joiner);
        }
        // The others see it leave before the next one opens (bounded), then a pause.
        if (joinerId !== null) {
          const gone = Date.now() + 20_000;
          while (Date.now() < gone && online.some((c) => peersOf(c).has(joinerId!))) await wait(100);
        }
        await wait(PAUSE_MS);
      }
    }
    return { byVariant, settled, meshed, idle };
  } finally {
    await Promise.all([...children, ...infras].map(kill));
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * 31 replicas online, each its own process; a 32nd joins. Baseline in the same run: a joiner with
 * one replica online. In the 32-replica network the joiners alternate between the defaults and a
 * joiner that dials every provider at once (`dialConcurrency: Infinity`, the behaviour before
 * session 6): an A/B on one network under one load.
 */
async function join32(ctx: BenchContext): Promise<void> {
  const count = Number(process.env['NAT_JOIN_REPLICAS']) || (ctx.quick ? 8 : 32);
  const joinsArg = process.argv.indexOf('--joins');
  const joins = joinsArg >= 0 ? Math.max(1, Math.min(20, Number(process.argv[joinsArg + 1]) || 1)) : ctx.quick ? 1 : ctx.runs;
  const rows: Array<Record<string, string | number>> = [];
  const idleRows: Array<Record<string, string | number>> = [];
  const defaults: JoinVariant = { label: 'defaults' };
  const before: JoinVariant = { label: 'dialConcurrency: Infinity (all providers at once, as before)', dht: { unboundedDials: true } };
  // Development A/B runs: NAT_JOIN_VARIANTS='[{"label":"…","dht":{…}}]' replaces the joiner variants of
  // the 32-replica network; NAT_NETWORK_VARIANTS='[{"label":"…","dht":{…}}]' runs that network once per
  // entry with those DHT options on every replica (joiners included); `--join-cases 2x1,32x1,32x3`
  // picks networks (replicas x bootstrap nodes); NAT_JOIN_REPLICAS=N sets the large network's size.
  // Options go through the fixture's `extra`.
  const devVariants = process.env['NAT_JOIN_VARIANTS'] ? (JSON.parse(process.env['NAT_JOIN_VARIANTS']) as JoinVariant[]) : null;
  const networks = process.env['NAT_NETWORK_VARIANTS'] ? (JSON.parse(process.env['NAT_NETWORK_VARIANTS']) as JoinVariant[]) : [{ label: '' }];
  const casesArg = process.argv.indexOf('--join-cases');
  const picked = casesArg >= 0 ? (process.argv[casesArg + 1] ?? '').split(',') : null;
  const cases: Array<{ n: number; bootstraps: number; variants: JoinVariant[]; network: JoinVariant }> = [
    { n: 2, bootstraps: 1, variants: [defaults], network: { label: '' } },
    ...networks.map((network) => ({ n: count, bootstraps: 1, variants: devVariants ?? [defaults, before], network })),
    { n: count, bootstraps: 3, variants: [defaults], network: { label: '' } },
  ].filter((c) => picked === null || picked.includes(`${c.n === count ? 'N' : c.n}x${c.bootstraps}`) || picked.includes(`${c.n}x${c.bootstraps}`));
  for (const { n, bootstraps, variants, network } of cases) {
    const { byVariant, settled, meshed, idle } = await joinWith(n, joins, variants, bootstraps, network.dht ?? {});
    const net = `${n} replicas, ${bootstraps} bootstrap node${bootstraps > 1 ? 's' : ''}${network.label ? ` (${network.label})` : ''}`;
    idleRows.push({
      network: net,
      'online replicas with a peer / with all': `${settled}/${n - 1} / ${meshed}/${n - 1}`,
      'bootstrap node CPU (% of a core, median)': fmt(idle.bootstrap, 1),
      'one replica CPU (% of a core, median)': fmt(idle.replica, 1),
      'all processes (% of a core)': fmt(idle.total, 0),
    });
    for (const variant of variants) {
      const { times, failures } = byVariant.get(variant.label)!;
      for (const f of failures) ctx.note(`${net} (${variant.label}): a joiner failed: ${f}`);
      const col = (f: (t: JoinTimes) => number): string => (times.length ? fmtStats(summarize(times.map(f)), 0) : '-');
      rows.push({
        network: net,
        joiner: variant.label,
        'joins completed': `${times.length}/${joins}`,
        'open → bootstrap connected': col((t) => t.bootstrap),
        'open → first libp2p connection to a replica': col((t) => t.firstLink),
        'open → first Connection (peer-connected)': col((t) => t.first),
        'open → first synced': col((t) => t.synced),
        'joiner CPU, open → first Connection': col((t) => t.joinerCpu),
        'bootstrap CPU in that time': col((t) => t.bootstrapCpu),
        'joiner libp2p links by then': col((t) => t.linksAtFirst),
      });
    }
  }
  ctx.table(`DHT join, one process per replica (127.0.0.1), ms at the joiner, median (min–max) of ${joins}; target < 1000 ms to the first connection`, rows);
  ctx.table(`Idle CPU of the formed network before the joiners (${IDLE_WINDOW_MS / 1000} s window, /proc)`, idleRows);
}

export async function run(ctx: BenchContext): Promise<void> {
  if (PARTS.includes('pairs') || PARTS.includes('holepunch')) await namespaces(ctx);
  if (PARTS.includes('join')) await join32(ctx);
}

