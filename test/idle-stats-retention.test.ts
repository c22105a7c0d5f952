// `db.stats()` computes a snapshot and keeps nothing new (BENCHMARKS.md § Issue 12, Session 12
// (statsmem)): an app that polls it (`rhizome status --watch`, the `/metrics` of `rhizome sync`, a
// dashboard) must not make every idle replica hold more per peer. Two heap snapshots taken
// synchronously around stats() calls (no turn of the event loop between them, so no frame, ping or
// timer can change anything): V8 keeps an object's snapshot id across snapshots, so an object in
// the second and not in the first was made by the calls. None of them may be held by a session,
// its database, the database's health monitor, broadcast router or persistence.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { createRelayServer } from '@rhizome/relay';

const cleanup: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await Promise.resolve(fn()).catch(() => undefined);
});

/** The objects that stats() reads and that live as long as the database. */
const HOLDERS = new Set(['PeerSession', 'Database', 'HealthMonitor', 'UpdateRouter', 'BroadcastGroup', 'DocPersistence']);

interface Snapshot {
  ids: Set<number>;
  /** Per holder node: its class name and the (type, name, id, edge name) of what it holds strongly. */
  held: Array<{ holder: string; edge: string; type: string; name: string; id: number }>;
  holders: Map<string, number>;
}

function snapshot(file: string): Snapshot {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const meta = raw.snapshot.meta;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const [type, name, id, edgeCount] = ['type', 'name', 'id', 'edge_count'].map((f) => meta.node_fields.indexOf(f)) as [number, number, number, number];
  const [edgeType, edgeName, toNode] = ['type', 'name_or_index', 'to_node'].map((f) => meta.edge_fields.indexOf(f)) as [number, number, number];
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const { nodes, edges, strings } = raw;
  const ids = new Set<number>();
  const held: Snapshot['held'] = [];
  const holders = new Map<string, number>();
  // Where each node's edges start (edges are listed node by node).
  const firstEdge: number[] = [];
  for (let n = 0, e = 0; n < nodes.length; n += nf) {
    firstEdge.push(e);
    e += nodes[n + edgeCount]! * ef;
  }
  /** What `from` holds strongly, without V8's shared maps and code. */
  const targets = (from: number): Array<{ edge: string; to: number }> => {
    const out: Array<{ edge: string; to: number }> = [];
    const start = firstEdge[from / nf]!;
    for (let k = 0, e = start; k < nodes[from + edgeCount]!; k++, e += ef) {
      const kind = edgeTypes[edges[e + edgeType]!]!;
      if (kind === 'weak' || kind === 'shortcut') continue;
      const to = edges[e + toNode]!;
      const toType = nodeTypes[nodes[to + type]!]!;
      if (toType === 'hidden' || toType === 'code' || toType === 'object shape') continue;
      out.push({ edge: kind === 'element' || kind === 'hidden' ? String(edges[e + edgeName]) : strings[edges[e + edgeName]!]!, to });
    }
    return out;
  };
  for (let n = 0; n < nodes.length; n += nf) {
    ids.add(nodes[n + id]!);
    const nodeName = strings[nodes[n + name]!]!;
    if (nodeTypes[nodes[n + type]!] !== 'object' || !HOLDERS.has(nodeName)) continue;
    holders.set(nodeName, (holders.get(nodeName) ?? 0) + 1);
    for (const { edge, to } of targets(n)) {
      const toType = nodeTypes[nodes[to + type]!]!;
      held.push({ holder: nodeName, edge, type: toType, name: strings[nodes[to + name]!]!, id: nodes[to + id]! });
      // An object's out-of-object properties and elements are a V8 array of their own: a property
      // added to a holder (or an element to its backing store) is held through it.
      if (toType === 'array') {
        for (const inner of targets(to)) {
          const innerType = nodeTypes[nodes[inner.to + type]!]!;
          held.push({ holder: nodeName, edge: `${edge}[${inner.edge}]`, type: innerType, name: strings[nodes[inner.to + name]!]!, id: nodes[inner.to + id]! });
        }
      }
    }
  }
  return { ids, held, holders };
}

async function syncedReplicas(url: string, k: number): Promise<Database[]> {
  const id = generateDatabaseId();
  const dbs: Database[] = [];
  for (let i = 0; i < k; i++) {
    const db = await openDatabase({ id, transport: { mode: 'relay', relayUrl: url } });
    cleanup.push(() => db.close({ flushTimeoutMs: 0 }));
    dbs.push(db);
  }
  await Promise.all(dbs.map((db) => db.whenSynced({ minPeers: k - 1, timeoutMs: 20_000 })));
  return dbs;
}

describe('db.stats() on idle replicas', () => {
  it('keeps no new object on the sessions, the database, its monitor, router or persistence', async () => {
    const server = await createRelayServer({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => server.close());
    // A warm-up document whose stats() runs first: code and shared records (the monitor's frozen
    // healthy state by reason) are made once per process, not per replica.
    for (const db of await syncedReplicas(server.url, 3)) db.stats();
    const dbs = await syncedReplicas(server.url, 3);
    for (const db of dbs) db.peers().forEach((p) => expect(p.peerId).toBeTypeOf('string'));

    const dir = mkdtempSync(join(tmpdir(), 'rhizome-stats-heap-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    // Synchronous from here to the second snapshot: only the stats() calls run in between.
    writeHeapSnapshot(join(dir, 'before.heapsnapshot'));
    const results = [];
    for (const db of dbs) results.push(db.stats(), db.stats());
    writeHeapSnapshot(join(dir, 'after.heapsnapshot'));

    const before = snapshot(join(dir, 'before.heapsnapshot'));
    const after = snapshot(join(dir, 'after.heapsnapshot'));
    // The scan sees what it looks for: 3 + 3 databases with 2 sessions each (and their holders).
    expect(after.holders.get('PeerSession')).toBeGreaterThanOrEqual(12);
    expect(after.holders.get('Database')).toBeGreaterThanOrEqual(6);
    expect(after.held.filter((h) => h.holder === 'PeerSession').length).toBeGreaterThan(12 * 5);
    // The calls did make their results (held by this test): the snapshots tell new objects apart.
    expect(results).toHaveLength(6);
    expect(results.every((r) => r.peers.length === 2)).toBe(true);
    const made = after.ids.size - [...after.ids].filter((i) => before.ids.has(i)).length;
    expect(made).toBeGreaterThan(6);

    const kept = after.held.filter((h) => !before.ids.has(h.id)).map((h) => `${h.holder}.${h.edge} -> ${h.type} ${h.name}`);
    expect(kept).toEqual([]);
  }, 60_000);
});
