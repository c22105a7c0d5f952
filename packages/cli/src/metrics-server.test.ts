// The replica's Prometheus registry, and the Grafana dashboard under examples/: every metric the
// dashboard queries is one a relay or a replica really serves.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { RelayCore, createMetricsRegistry } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';
import { createReplicaRegistry } from './metrics-server.js';

const DASHBOARD = join(import.meta.dirname, '../../../examples/grafana/rhizome-dashboard.json');

const open: Database[] = [];
const cores: RelayCore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
  await Promise.all(cores.splice(0).map((c) => c.close()));
});

/** Names of the samples in Prometheus text. */
function sampleNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (m && !line.startsWith('#')) names.add(m[1] as string);
  }
  return names;
}

describe('replica registry', () => {
  it('reads db.stats() at scrape time', async () => {
    const db = await openDatabase({ id: generateDatabaseId() });
    open.push(db);
    const registry = createReplicaRegistry(db);
    expect(await registry.metrics()).toMatch(/^rhizome_replica_nodes 0$/m);
    db.put('a', { v: 1 });
    db.put('b', { v: 2 });
    const text = await registry.metrics();
    expect(text).toMatch(/^rhizome_replica_nodes 2$/m);
    expect(text).toMatch(/^rhizome_replica_local_updates_total 2$/m);
    expect(text).toMatch(/^rhizome_replica_health\{state="healthy"\} 1$/m);
  });
});

describe('examples/grafana dashboard', () => {
  it('queries only metrics that relays and replicas serve', async () => {
    const db = await openDatabase({ id: generateDatabaseId() });
    open.push(db);
    const core = new RelayCore();
    cores.push(core);
    const served = new Set([
      ...sampleNames(await createReplicaRegistry(db).metrics()),
      ...sampleNames(await createMetricsRegistry(() => core.stats()).metrics()),
    ]);
    // Labelled series (per peer, per drop reason) only appear once they have a value; their
    // metric names are declared all the same.
    const declared = new Set([
      ...served,
      ...(await createReplicaRegistry(db).getMetricsAsJSON()).map((m) => m.name),
      ...(await createMetricsRegistry(() => core.stats()).getMetricsAsJSON()).map((m) => m.name),
    ]);
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
    const queried = new Set<string>();
    for (const panel of dashboard.panels) for (const t of panel.targets ?? []) for (const m of t.expr.matchAll(/\brhizome_[a-z_]+/g)) queried.add(m[0]);
    expect(queried.size).toBeGreaterThan(15);
    const unknown = [...queried].filter((name) => !declared.has(name));
    expect(unknown).toEqual([]);
  });
});
