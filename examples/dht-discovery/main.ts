// Two peers that find each other on a libp2p Kademlia DHT, with no relay in the data path:
// a bootstrap node gets them into the DHT, one announces the database's topic (a provider
// record), the other looks it up and dials it directly. Everything runs on 127.0.0.1 here,
// which is why `allowPrivateAddresses` is on; on the internet leave it off, and give peers the
// multiaddrs of your `rhizome dht-bootstrap` nodes.
// Run: npm exec -- tsx --conditions=rhizome-source examples/dht-discovery/main.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDatabaseId, type TransportConfig } from '@rhizome/core';
import { openDatabase } from '@rhizome/sync';
import { startBootstrapNode } from '@rhizome/transport-dht';

const dir = mkdtempSync(join(tmpdir(), 'rhizome-dht-discovery-'));
const bootstrap = await startBootstrapNode({ listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true });
const bootstrapAddrs = bootstrap.multiaddrs();
console.log(`bootstrap node ${bootstrap.peerId} on ${bootstrapAddrs.join(', ')}`);

const dht = (keyFile: string): Partial<TransportConfig> => ({
  mode: 'dht',
  bootstrap: bootstrapAddrs,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  allowPrivateAddresses: true,
  keyFile: join(dir, keyFile), // the peer id survives restarts
});

try {
  const id = generateDatabaseId();
  const a = await openDatabase({ id, path: join(dir, 'a.db'), transport: dht('a.key') });
  a.put('sensor-1', { celsius: 21.5 });
  const b = await openDatabase({ id, path: join(dir, 'b.db'), transport: dht('b.key') });
  console.log('both peers announced the topic; waiting for them to find each other');
  await Promise.all([a.whenSynced({ minPeers: 1, timeoutMs: 30_000 }), b.whenSynced({ minPeers: 1, timeoutMs: 30_000 })]);
  console.log(`b found a (${a.transport.name}): peers ${JSON.stringify(b.peers().map((p) => p.peerId))}`);
  console.log(`b has sensor-1: ${JSON.stringify(b.get('sensor-1'))}`);
  await Promise.all([a.close(), b.close()]);
  console.log('done');
} finally {
  await bootstrap.stop();
  rmSync(dir, { recursive: true, force: true });
}
