// The transport contract, run against the DHT transport as apps get it:
// createTransport({ mode: 'dht', ... }) from @rhizome/core, which loads this package lazily.
import { createTransport } from '@rhizome/core';
import { runTransportContract } from '@rhizome/core/testing';
import { startBootstrapNode } from './bootstrap.js';

runTransportContract('dht', async () => {
  const bootstrap = await startBootstrapNode({ listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true });
  const addr = bootstrap.multiaddrs()[0]!;
  return {
    createTransport: async () =>
      createTransport({ mode: 'dht', bootstrap: [addr], listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true }),
    close: () => bootstrap.stop(),
  };
});
