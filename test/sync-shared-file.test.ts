// Issue 11 item 4: a running `rhizome sync` replicates writes that another process appends to its
// file. `rhizome put --db h.db` (no network flag) writes to the file the daemon holds open; the
// daemon's store watch (PRAGMA data_version, every 250 ms) reads the write in and sends it out, so
// a replica on the relay receives it while the daemon keeps running.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import type { SyncEvent } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import { Running, rhizome, tempDir } from './cli-helpers.js';
import { nextEvent } from './sync-helpers.js';

let relay: RelayServer;
let dir: string;
let cleanup: () => void;
const running: Running[] = [];
const open: Database[] = [];

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('rhizome-shared-sync-'));
  relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await Promise.all(running.map((r) => r.stop('SIGKILL')));
  await Promise.all(open.map((d) => d.close().catch(() => undefined)));
  await relay.close();
  cleanup();
});

describe('rhizome sync and another process on the same file', () => {
  it('a put by another process to the daemon\'s file reaches a relay replica while the daemon runs', async () => {
    const id = generateDatabaseId();
    const shared = join(dir, 'h.db');
    const daemon = new Running(['sync', id, '--db', shared, '--relay', relay.url, '--json']);
    running.push(daemon);
    await daemon.waitForJson((e) => e['type'] === 'ready', 'the daemon to be ready');

    const remote = await openDatabase({ id, path: join(dir, 'remote.db'), transport: { mode: 'relay', relayUrl: relay.url } });
    open.push(remote);
    await remote.whenSynced({ minPeers: 1, timeoutMs: 20_000 });

    const arrived = nextEvent(remote, (e: SyncEvent) => e.type === 'node-upsert' && e.id === 'from-cli', 'from-cli at the relay replica', 20_000);
    const put = await rhizome(['put', id, 'from-cli', '{"title":"written beside the daemon"}', '--db', shared, '--json']);
    expect(put.code, put.stderr).toBe(0);
    const event = await arrived;
    expect(event).toMatchObject({ type: 'node-upsert', id: 'from-cli', data: { title: 'written beside the daemon' }, origin: 'remote' });
    expect(remote.get('from-cli')).toEqual({ title: 'written beside the daemon' });

    // The daemon reports the write it read from its file, and is still running.
    await daemon.waitForJson((e) => e['type'] === 'node-upsert' && e['id'] === 'from-cli', 'the daemon to print from-cli');
    expect(daemon.child.exitCode).toBeNull();

    // The other way round too: a write arriving over the relay lands in the shared file, where a
    // one-shot get (another process) reads it.
    remote.put('from-remote', { v: 2 });
    await daemon.waitForJson((e) => e['type'] === 'node-upsert' && e['id'] === 'from-remote', 'from-remote at the daemon');
    const got = await rhizome(['get', id, 'from-remote', '--db', shared, '--json']);
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout)).toEqual({ id: 'from-remote', data: { v: 2 } });
    await daemon.stop('SIGTERM');
  }, 60_000);
});
