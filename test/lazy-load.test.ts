// Importing @rhizome/core and using the disabled and memory transports must not load libp2p
// (nor ws): checked in a fresh child process that records every module it resolves.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const PROBE = `
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); loaded.push(r.url); return r; } });
const core = await import('@rhizome/core');
const topic = core.deriveTopic('lazy');
const d = core.createTransport({ mode: 'disabled' });
const m = core.createTransport({ mode: 'memory', hub: 'lazy' });
await m.announce(topic);
await m.lookup(topic);
await m.connect(topic);
core.createTransport({ mode: 'relay', relayUrl: 'ws://127.0.0.1:9' });
core.createTransport({ mode: 'dht' });
await d.disconnect(); await m.disconnect();
process.stdout.write(JSON.stringify(loaded));
`;

describe('lazy loading', () => {
  it('importing core and creating transports does not load libp2p or ws', () => {
    // The probe must resolve workspace packages, so it lives inside the repository's test dir.
    const probe = join(import.meta.dirname, `.lazy-probe-${process.pid}.mjs`);
    writeFileSync(probe, PROBE);
    try {
      const r = spawnSync(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', probe], {
        encoding: 'utf8',
        cwd: join(import.meta.dirname, '..'),
        timeout: 30_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const urls = JSON.parse(r.stdout) as string[];
      expect(urls.some((u) => u.includes('/packages/core/src/'))).toBe(true);
      const heavy = urls.filter((u) => /libp2p|\/ws\/|transport-relay|transport-dht/.test(u));
      expect(heavy).toEqual([]);
    } finally {
      rmSync(probe, { force: true });
    }
  });
});
