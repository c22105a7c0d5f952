// A flooding client, run as its own process by the relay tests so its CPU use does not slow the
// process whose latency they measure. Usage: flood.ts URL frames|bytes
// Prints `CLOSED <code>` when the relay closes it, then exits.
import { deriveTopic } from '@rhizome/core';
import { encodeDataFrame, FrameType } from '@rhizome/transport-relay/protocol';
import { WebSocket } from 'ws';
import { RawClient } from './index.js';

const [url, mode] = process.argv.slice(2);
if (!url || (mode !== 'frames' && mode !== 'bytes')) {
  process.stderr.write('usage: flood.ts URL frames|bytes\n');
  process.exit(2);
}
const client = await RawClient.open(url);
const topicId = await client.join(deriveTopic(`flood ${mode} ${process.pid}`));
void client.closed.then(({ code }) => {
  process.stdout.write(`CLOSED ${code}\n`);
  process.exit(0);
});
if (mode === 'frames') {
  const small = encodeDataFrame(FrameType.BROADCAST, topicId, 0, new Uint8Array(64));
  for (let i = 0; i < 1_000_000 && client.ws.readyState === WebSocket.OPEN; i++) {
    client.send(small);
    if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
  }
} else {
  const big = encodeDataFrame(FrameType.BROADCAST, topicId, 0, new Uint8Array(1024 * 1024));
  for (let i = 0; i < 1000 && client.ws.readyState === WebSocket.OPEN; i++) {
    await new Promise<void>((r) => client.send(big, () => r()));
    // Back to the event loop after every frame: while the relay reads as fast as this writes,
    // each write completes at once and its callback runs as a microtask, so without this the
    // loop never polls the socket: the relay's 4024 close frame sits unread until the relay
    // destroys the socket after its close grace (2 s), and the client reports 1006 (seen under
    // load: BENCHMARKS.md § Issue 12, Session 11 (flake)).
    await new Promise((r) => setImmediate(r));
  }
}
await client.closed;
