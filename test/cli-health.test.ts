// `rhizome sync --metrics-port`: a real replica process serves /healthz and Prometheus /metrics;
// the text parses, and its counters move when a write from another process arrives. The relay's
// /metrics carries the frame-size and fan-out histograms.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { Running, rhizome, tempDir } from './cli-helpers.js';

let relay: RelayServer;
let dir: string;
let cleanup: () => void;
const running: Running[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('rhizome-cli-metrics-'));
  relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await Promise.all(running.map((r) => r.stop('SIGKILL')));
  await relay.close();
  cleanup();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Parses Prometheus text exposition (format 0.0.4) strictly: every line is a comment (# HELP /
 * # TYPE with a known type) or `name{labels} value`; every sample belongs to a declared metric.
 */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    const m = sampleLine.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const part of (m[3] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
      const at = part.indexOf('=');
      labels[part.slice(0, at)] = part.slice(at + 2, -1);
    }
    const name = m[1] as string;
    const family = name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(name) && !types.has(family)) throw new Error(`sample of an undeclared metric: ${name}`);
    samples.push({ name, labels, value: Number(m[4]) });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return parsePrometheus(await res.text()).samples;
}

describe('rhizome sync --metrics-port', () => {
  it('serves /healthz and /metrics whose counters move when writes flow', async () => {
    const id = generateDatabaseId();
    const sync = new Running(['sync', id, '--db', join(dir, 'replica.db'), '--relay', relay.url, '--metrics-port', '0', '--json']);
    running.push(sync);
    const ready = await sync.waitForJson((e) => e['type'] === 'ready', 'the ready event');
    const base = ready['metrics'] as string;
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'healthy', severity: 'info', nodes: 0 });

    const before = await scrape(`${base}/metrics`);
    expect(value(before, 'rhizome_replica_nodes')).toBe(0);
    expect(value(before, 'rhizome_replica_remote_updates_total')).toBe(0);
    expect(value(before, 'rhizome_replica_health', { state: 'healthy' })).toBe(1);
    expect(value(before, 'rhizome_replica_uptime_seconds')).toBeGreaterThanOrEqual(0);

    const put = await rhizome(['put', id, 'note-1', '{"title":"measured"}', '--db', join(dir, 'laptop.db'), '--relay', relay.url, '--min-peers', '1', '--json']);
    expect(put.code, put.stderr).toBe(0);
    await sync.waitForJson((e) => e['type'] === 'node-upsert' && e['id'] === 'note-1', 'the write to arrive');

    const after = await scrape(`${base}/metrics`);
    expect(value(after, 'rhizome_replica_nodes')).toBe(1);
    expect(value(after, 'rhizome_replica_remote_updates_total')).toBeGreaterThan(0);
    expect(value(after, 'rhizome_replica_frames_received_total')).toBeGreaterThan(value(before, 'rhizome_replica_frames_received_total') ?? 0);
    expect(value(after, 'rhizome_replica_bytes_received_total')).toBeGreaterThan(value(before, 'rhizome_replica_bytes_received_total') ?? 0);

    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    const stopped = await sync.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it('a bad --metrics-port is a usage error (exit 2) naming the flag', async () => {
    const result = await rhizome(['sync', generateDatabaseId(), '--db', join(dir, 'bad.db'), '--relay', relay.url, '--metrics-port', '70000']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--metrics-port');
  });
});

describe('relay /metrics histograms', () => {
  it('counts frame sizes and broadcast fan-out', async () => {
    const res = await fetch(`${relay.url.replace(/^ws/, 'http')}/metrics`);
    const { samples, types } = parsePrometheus(await res.text());
    expect(types.get('rhizome_relay_frame_bytes')).toBe('histogram');
    expect(types.get('rhizome_relay_broadcast_fanout')).toBe('histogram');
    // The test above sent frames through this relay.
    const count = value(samples, 'rhizome_relay_frame_bytes_count') ?? 0;
    expect(count).toBeGreaterThan(0);
    expect(value(samples, 'rhizome_relay_frame_bytes_bucket', { le: '+Inf' })).toBe(count);
    const buckets = samples.filter((s) => s.name === 'rhizome_relay_frame_bytes_bucket').map((s) => s.value);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(value(samples, 'rhizome_relay_frame_bytes_sum')).toBeGreaterThan(0);
  });
});

describe('rhizome status --watch', () => {
  it('refreshes the peers with their health and RTT until stopped (JSON and text)', async () => {
    const id = generateDatabaseId();
    const sync = new Running(['sync', id, '--db', join(dir, 'watched.db'), '--relay', relay.url, '--json']);
    running.push(sync);
    await sync.waitForJson((e) => e['type'] === 'ready', 'the replica to be ready');

    const watch = new Running(['status', id, '--db', join(dir, 'watcher.db'), '--relay', relay.url, '--watch', '--interval', '200', '--json']);
    running.push(watch);
    // The first refreshes may come before the peer answered a ping, or before it synced, or (on a
    // loaded machine) while its first RTT is still above the degraded threshold: wait for the
    // refresh that shows all of it, as the text half below waits for its healthy row.
    const line = await watch.waitForJson((e) => {
      const peers = e['peers'] as Array<Record<string, unknown>> | undefined;
      const p = peers?.[0];
      return e['type'] === 'status' && peers?.length === 1 && p?.['rttMs'] != null && p['health'] === 'healthy' && p['synced'] === true;
    }, 'a refresh with the peer healthy, synced and its RTT', 30_000);
    const peer = (line['peers'] as Array<Record<string, unknown>>)[0];
    expect(peer).toMatchObject({ transport: 'relay', health: 'healthy', synced: true });
    expect(peer?.['rttMs']).toBeGreaterThanOrEqual(0);
    expect(line['health']).toMatchObject({ health: 'healthy' });
    expect(watch.json.filter((e) => e['type'] === 'status').length).toBeGreaterThan(1);
    expect((await watch.stop('SIGTERM')).code).toBe(0);

    const text = new Running(['status', id, '--db', join(dir, 'watcher.db'), '--relay', relay.url, '--watch', '--interval', '200']);
    running.push(text);
    await text.waitForLine((l) => /^PEER\s+VIA\s+HEALTH\s+RTT/.test(l), 'the table header');
    await text.waitForLine((l) => /\srelay(\/\w+)?\s+healthy\s/.test(l), 'a healthy relay peer row', 30_000);
    expect((await text.stop('SIGINT')).code).toBe(0);
    await sync.stop('SIGTERM');
    // Four processes start one after another here: on a loaded machine that alone takes ~20 s.
  }, 90_000);
});
