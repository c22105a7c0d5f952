// The `rhizome` command over the DHT on 127.0.0.1: `dht-bootstrap` prints its multiaddr, a
// `sync --dht` replica receives what `put --dht` wrote in another process, and both stop on
// SIGTERM with exit code 0.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';
import { Running, rhizome, tempDir } from './cli-helpers.js';

let dir: string;
let cleanup: () => void;
const running: Running[] = [];

beforeAll(() => {
  ({ dir, cleanup } = tempDir('rhizome-cli-dht-'));
});

afterAll(async () => {
  await Promise.all(running.map((r) => r.stop('SIGKILL')));
  cleanup();
});

describe('rhizome over the DHT', () => {
  it('dht-bootstrap, then a sync --dht replica receives a put --dht from another process', async () => {
    const boot = new Running(['dht-bootstrap', '--listen', '/ip4/127.0.0.1/tcp/0', '--allow-private-addresses', '--json']);
    running.push(boot);
    const listening = await boot.waitForJson((e) => e['type'] === 'listening', 'the bootstrap multiaddrs');
    const addrs = listening['multiaddrs'] as string[];
    expect(addrs[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+$/);
    const local = ['--dht', '--bootstrap', addrs[0] as string, '--listen', '/ip4/127.0.0.1/tcp/0', '--allow-private-addresses'];

    const id = generateDatabaseId();
    const sync = new Running(['sync', id, '--db', join(dir, 'replica.db'), ...local, '--key-file', join(dir, 'replica.key'), '--json']);
    running.push(sync);
    await sync.waitForJson((e) => e['type'] === 'ready', 'the replica ready');

    const put = await rhizome(['put', id, 'sensor-1', '{"celsius":21.5}', '--db', join(dir, 'writer.db'), ...local, '--min-peers', '1', '--timeout', '30000', '--json'], { timeoutMs: 45_000 });
    expect(put.code, put.stderr).toBe(0);
    expect(JSON.parse(put.stdout)).toEqual({ id: 'sensor-1', data: { celsius: 21.5 }, peers: 1, delivered: true });
    const upsert = await sync.waitForJson((e) => e['type'] === 'node-upsert' && e['id'] === 'sensor-1', 'sensor-1 at the replica');
    expect(upsert).toMatchObject({ data: { celsius: 21.5 }, origin: 'remote' });
    const connected = sync.json.find((e) => e['type'] === 'peer-connected');
    expect(connected?.['peerId']).toMatch(/^12D3KooW/);

    const [s, b] = await Promise.all([sync.stop('SIGTERM'), boot.stop('SIGTERM')]);
    expect(s.code, sync.stderr).toBe(0);
    expect(b.code, boot.stderr).toBe(0);
    expect(boot.json.at(-1)).toEqual({ type: 'stopped' });
  }, 90_000);

  it('dht-bootstrap started with --allow-private-addresses says peers join with the same flag (their lookups find nobody without it)', async () => {
    const boot = new Running(['dht-bootstrap', '--listen', '/ip4/127.0.0.1/tcp/0', '--allow-private-addresses']);
    running.push(boot);
    const line = await boot.waitForLine((l) => l.startsWith('Peers join with:'), 'the join line', 40_000);
    expect(line).toMatch(/^Peers join with: --dht --bootstrap \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+ --allow-private-addresses$/);
  });

  it('--dht and --relay together: status shows one peer per replica, on the direct path', async () => {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
    try {
      const boot = new Running(['dht-bootstrap', '--listen', '/ip4/127.0.0.1/tcp/0', '--allow-private-addresses', '--json']);
      running.push(boot);
      const listening = await boot.waitForJson((e) => e['type'] === 'listening', 'the bootstrap multiaddrs');
      const both = ['--dht', '--bootstrap', (listening['multiaddrs'] as string[])[0] as string, '--listen', '/ip4/127.0.0.1/tcp/0', '--allow-private-addresses', '--no-mdns', '--relay', relay.url];
      const id = generateDatabaseId();
      const sync = new Running(['sync', id, '--db', join(dir, 'both.db'), ...both, '--json']);
      running.push(sync);
      const ready = await sync.waitForJson((e) => e['type'] === 'ready', 'the replica ready');
      expect(String(ready['network'])).toContain(`relay ${relay.url}`);
      expect(String(ready['network'])).toContain('DHT via');

      const put = await rhizome(['put', id, 'n', '{"v":1}', '--db', join(dir, 'both-writer.db'), ...both, '--key-file', join(dir, 'writer.key'), '--min-peers', '1', '--timeout', '30000', '--json'], { timeoutMs: 45_000 });
      expect(put.code, put.stderr).toBe(0);
      await sync.waitForJson((e) => e['type'] === 'node-upsert' && e['id'] === 'n', 'n at the replica');
      // The one-shot status waits for a synced peer, and lists one entry per replica. (It reuses
      // the writer's key, so the DHT has no stale record of an exited peer to wait for.)
      const status = await rhizome(['status', id, '--db', join(dir, 'both-status.db'), ...both, '--key-file', join(dir, 'writer.key'), '--min-peers', '1', '--timeout', '30000', '--json'], { timeoutMs: 45_000 });
      expect(status.code, status.stderr).toBe(0);
      const s = JSON.parse(status.stdout) as { transport: string; peers: Array<{ transport: string; path: string; synced: boolean }> };
      expect(s.transport).toBe('multi');
      expect(s.peers.length).toBe(1);
      expect(['dht', 'relay']).toContain(s.peers[0]!.transport);
      expect(['direct', 'relay']).toContain(s.peers[0]!.path);
      const [r, b] = await Promise.all([sync.stop('SIGTERM'), boot.stop('SIGTERM')]);
      expect(r.code, sync.stderr).toBe(0);
      expect(b.code, boot.stderr).toBe(0);
    } finally {
      await relay.close();
    }
  }, 90_000);
});
