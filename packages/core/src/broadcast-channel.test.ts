// The BroadcastChannel transport passes the transport contract in Node (whose BroadcastChannel
// delivers between instances of one process, as a browser's does between tabs); the browser
// case (two tabs of one origin) is in test/browser/pages.test.ts.
import { runTransportContract } from './testing/index.js';
import { BroadcastChannelTransport } from './broadcast-channel.js';

let run = 0;
runTransportContract('broadcast-channel', async () => {
  // A prefix per harness: transports of two tests never meet.
  const prefix = `rhizome-contract-${process.pid}-${run++}:`;
  return { createTransport: async () => new BroadcastChannelTransport({ prefix }), close: async () => {} };
});
