// Replicas behind NATs and on LANs, in real network namespaces (issue 13). The test builds:
//
//   inet (198.18.0.1: bootstrap node with circuit relay v2 on tcp/4001, WebSocket relay on 443,
//        replica D with dht + relay)
//     ├── r1 (MASQUERADE: endpoint-independent mapping) ── h1 10.1.0.2  replica A (dht)
//     ├── r2 (MASQUERADE --random-fully: symmetric)      ── h2 10.2.0.2  replica B (dht)
//     └── r3 (MASQUERADE, only tcp/443 forwarded out)    ── h3 10.3.0.2  replica C (dht + relay)
//   lan-a 10.77.0.1 ── lan-b 10.77.0.2 (no route out): replicas L1, L2 (dht, mDNS, no bootstrap)
//
// Every replica is a child process in its namespace. Namespaces, links, rules and processes
// are removed in afterAll, also when a test fails.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { LineChild, Topology, canUseNetns, type Line } from './netns.js';
import { tempDir } from './sync-helpers.js';

const WAIT = 60_000;
type PeerLine = { peerId: string; transport: string; path: string; rttMs: number | null; synced: boolean; replicaId: string | null };
const peersOf = (s: Line): PeerLine[] => s['peers'] as PeerLine[];
const nodesOf = (s: Line): string[] => s['nodes'] as string[];

if (!canUseNetns()) throw new Error('the NAT tests need root with `ip netns` and iptables (CI installs iptables; run as root)');

describe('NAT traversal and LANs in network namespaces', () => {
  const topo = new Topology();
  const tmp = tempDir('rhizome-nat-');
  let inet: string;
  let r3: string;
  let infra: LineChild;
  const replicas: Record<string, LineChild> = {};
  const natId = generateDatabaseId();
  const lanId = generateDatabaseId();
  const webId = generateDatabaseId();

  function replica(name: string, ns: string, arg: Record<string, unknown>): LineChild {
    const child = new LineChild(topo.spawnNode(ns, 'nat-replica.ts', { path: join(tmp.dir, `${name}.db`), ...arg }), name);
    replicas[name] = child;
    return child;
  }

  beforeAll(async () => {
    inet = topo.ns('inet');
    topo.forward(inet);
    topo.exec(inet, 'ip', ['addr', 'add', '198.18.0.1/32', 'dev', 'lo']);
    const homes: Array<{ n: number; kind: 'eim' | 'symmetric' }> = [
      { n: 1, kind: 'eim' },
      { n: 2, kind: 'symmetric' },
      { n: 3, kind: 'eim' },
    ];
    const hosts: string[] = [];
    for (const { n, kind } of homes) {
      const r = topo.ns(`r${n}`);
      const h = topo.ns(`h${n}`);
      topo.link(inet, `e${n}`, `198.18.${n}.1/24`, r, 'wan', `198.18.${n}.2/24`);
      topo.link(r, 'lan', `10.${n}.0.1/24`, h, 'eth0', `10.${n}.0.2/24`);
      topo.exec(r, 'ip', ['route', 'add', 'default', 'via', `198.18.${n}.1`]);
      topo.exec(h, 'ip', ['route', 'add', 'default', 'via', `10.${n}.0.1`]);
      topo.nat(r, 'wan', kind);
      hosts.push(h);
      if (n === 3) r3 = r;
    }
    // Home 3 lets only TCP to port 443 out (and the answers in).
    topo.exec(r3, 'iptables', ['-A', 'FORWARD', '-i', 'lan', '-p', 'tcp', '--dport', '443', '-j', 'ACCEPT']);
    topo.exec(r3, 'iptables', ['-A', 'FORWARD', '-i', 'lan', '-j', 'DROP']);
    // The LAN: two hosts on one link, no default route; multicast stays on the link.
    const lanA = topo.ns('lan-a');
    const lanB = topo.ns('lan-b');
    topo.link(lanA, 'eth0', '10.77.0.1/24', lanB, 'eth0', '10.77.0.2/24');
    for (const ns of [lanA, lanB]) topo.exec(ns, 'ip', ['route', 'add', '224.0.0.0/4', 'dev', 'eth0']);

    infra = new LineChild(topo.spawnNode(inet, 'nat-infra.ts', { relayPort: 443, address: '198.18.0.1' }), 'infra');
    const ready = await infra.waitFor('bootstrap ready', (l) => l.type === 'ready', WAIT);
    const bootstrap = [ready['bootstrap'] as string];
    const relayUrl = ready['relayUrl'] as string;

    replica('A', hosts[0]!, { id: natId, dht: { bootstrap } });
    replica('B', hosts[1]!, { id: natId, dht: { bootstrap } });
    replica('C', hosts[2]!, { id: webId, dht: { bootstrap, lookupIntervalMs: 2000 }, relay: relayUrl });
    replica('D', inet, { id: webId, dht: { bootstrap, lookupIntervalMs: 2000, mdns: false }, relay: relayUrl });
    replica('L1', lanA, { id: lanId, dht: { bootstrap: [] } });
    replica('L2', lanB, { id: lanId, dht: { bootstrap: [] } });
    await Promise.all(Object.values(replicas).map((r) => r.waitFor('ready', (l) => l.type === 'ready', WAIT)));
  }, 120_000);

  afterAll(async () => {
    await topo.destroy();
    tmp.cleanup();
  }, 30_000);

  it('behind an endpoint-independent NAT and a symmetric NAT: both replicas converge through the circuit relay', async () => {
    const { A, B } = replicas as Record<'A' | 'B', LineChild>;
    A!.send({ cmd: 'put', nodeId: 'from-eim', data: { home: 1 } });
    B!.send({ cmd: 'put', nodeId: 'from-symmetric', data: { home: 2 } });
    await A!.waitFor('from-symmetric at A', (l) => l.type === 'node-upsert' && l['id'] === 'from-symmetric', WAIT);
    await B!.waitFor('from-eim at B', (l) => l.type === 'node-upsert' && l['id'] === 'from-eim', WAIT);
    const a = await A!.statsUntil('A has one synced peer', (s) => peersOf(s).length === 1 && peersOf(s)[0]!.synced, WAIT);
    const b = await B!.statsUntil('B has one synced peer', (s) => peersOf(s).length === 1 && peersOf(s)[0]!.synced, WAIT);
    const pathA = peersOf(a)[0]!.path;
    const pathB = peersOf(b)[0]!.path;
    // The measurement (ARCHITECTURE.md § NAT traversal): js-libp2p's DCUtR over TCP does not
    // upgrade here, so the relayed connection carries sync; the suite asserts that, and prints it.
    process.stdout.write(`[nat] EIM-NAT replica path: ${pathA}; symmetric-NAT replica path: ${pathB}; upgraded to direct: ${pathA !== 'circuit' || pathB !== 'circuit'}\n`);
    expect(pathA).toBe('circuit');
    expect(pathB).toBe('circuit');
    expect(nodesOf(a).sort()).toEqual(['from-eim', 'from-symmetric']);
    expect(nodesOf(b).sort()).toEqual(['from-eim', 'from-symmetric']);
    // The relayed libp2p connection is a limited one through the bootstrap node.
    const links = a['links'] as Array<{ addr: string; limited: boolean }>;
    expect(links.some((l) => l.addr.includes('/p2p-circuit') && l.limited)).toBe(true);
  }, WAIT * 3);

  it('a LAN with no route out: two replicas find each other by mDNS and converge', async () => {
    const { L1, L2 } = replicas as Record<'L1' | 'L2', LineChild>;
    L1!.send({ cmd: 'put', nodeId: 'lan-1', data: { v: 1 } });
    L2!.send({ cmd: 'put', nodeId: 'lan-2', data: { v: 2 } });
    await L1!.waitFor('lan-2 at L1', (l) => l.type === 'node-upsert' && l['id'] === 'lan-2', WAIT);
    await L2!.waitFor('lan-1 at L2', (l) => l.type === 'node-upsert' && l['id'] === 'lan-1', WAIT);
    const s = await L1!.statsUntil('L1 synced with L2', (x) => peersOf(x).length === 1 && peersOf(x)[0]!.synced, WAIT);
    expect(peersOf(s)[0]).toMatchObject({ transport: 'dht', path: 'direct' });
    expect(nodesOf(s).sort()).toEqual(['lan-1', 'lan-2']);
  }, WAIT * 3);

  it('only TCP 443 out: dht + relay converge through the WebSocket relay; once the DHT path opens, both move to it with one session each', async () => {
    const { C, D } = replicas as Record<'C' | 'D', LineChild>;
    C!.send({ cmd: 'put', nodeId: 'from-443', data: { v: 1 } });
    D!.send({ cmd: 'put', nodeId: 'from-public', data: { v: 2 } });
    await C!.waitFor('from-public at C', (l) => l.type === 'node-upsert' && l['id'] === 'from-public', WAIT);
    await D!.waitFor('from-443 at D', (l) => l.type === 'node-upsert' && l['id'] === 'from-443', WAIT);
    const before = await C!.statsUntil('C synced over the relay', (s) => peersOf(s).length === 1 && peersOf(s)[0]!.synced, WAIT);
    expect(peersOf(before)[0]).toMatchObject({ transport: 'relay', path: 'relay' });

    // The network opens up: the DHT reaches the bootstrap node and D directly.
    topo.exec(r3, 'iptables', ['-D', 'FORWARD', '-i', 'lan', '-j', 'DROP']);
    const c = await C!.statsUntil('C on the direct path, one session', (s) => peersOf(s).length === 1 && peersOf(s)[0]!.path === 'direct', WAIT);
    const d = await D!.statsUntil('D on the direct path, one session', (s) => peersOf(s).length === 1 && peersOf(s)[0]!.path === 'direct', WAIT);
    expect(peersOf(c)[0]).toMatchObject({ transport: 'dht', path: 'direct' });
    expect(peersOf(d)[0]).toMatchObject({ transport: 'dht', path: 'direct' });
    // Updates keep flowing on the new path.
    C!.send({ cmd: 'put', nodeId: 'after-switch', data: { v: 3 } });
    await D!.waitFor('after-switch at D', (l) => l.type === 'node-upsert' && l['id'] === 'after-switch', WAIT);
    const final = await D!.stats();
    expect(nodesOf(final).sort()).toEqual(['after-switch', 'from-443', 'from-public']);
    expect(peersOf(final)).toHaveLength(1);
  }, WAIT * 4);
});
