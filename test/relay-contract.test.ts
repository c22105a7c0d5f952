// The transport contract from @rhizome/core, run against a real relay on 127.0.0.1 port 0.
import { runTransportContract } from '@rhizome/core/testing';
import { createTransport } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';
import { RelayTransport } from '@rhizome/transport-relay';

runTransportContract('relay', async () => {
  const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  return {
    createTransport: async () => new RelayTransport({ url: relay.url, timeoutMs: 5000 }),
    close: () => relay.close(),
  };
}, { broadcast: true });

// The same suite through core's lazily loading createTransport({ mode: 'relay' }).
runTransportContract('relay via createTransport', async () => {
  const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  return {
    createTransport: async () => createTransport({ mode: 'relay', relayUrl: relay.url, timeoutMs: 5000 }),
    close: () => relay.close(),
  };
}, { broadcast: true });

// The browser code path: the WHATWG WebSocket (Node 22's global one stands in for a browser's).
runTransportContract('relay with the global WebSocket', async () => {
  const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  return {
    createTransport: async () => new RelayTransport({ url: relay.url, timeoutMs: 5000, implementation: 'global' }),
    close: () => relay.close(),
  };
}, { broadcast: true });
