// whenDelivered over a relay (issue 10, found by the receiver burst): live updates to relay peers
// leave through the topic's broadcast group (sync/src/broadcast.ts), not the session queue that
// carries the acknowledgement's step 1. The step 1 could overtake updates still queued in the
// group, so whenDelivered resolved (and a writer closed) while the peer lacked the tail of the
// burst. Now the step 1 is queued only once the group has handed those updates to the relay.
import { afterEach, expect, it } from 'vitest';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';

const open: Array<Database | RelayServer> = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close().catch(() => undefined);
});

it('whenDelivered resolves only once the peer holds every update put before it, also those still queued for the relay broadcast', async () => {
  const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
  open.push(relay);
  const id = `delivered-broadcast-${process.pid}`;
  const a = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url } });
  open.push(a);
  const b = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url } });
  open.push(b);
  await a.whenSynced({ minPeers: 1, timeoutMs: 30_000 });
  // Several rounds: each puts 400 nodes of 8 KiB in one tick (about 3 MiB: several broadcast
  // frames of at most 1 MiB), then asks for delivery at once.
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 400; i++) a.put(`r${round}-n${i}`, { body: `${round}:${i}:`.padEnd(8192, 'x') });
    await a.whenDelivered({ minPeers: 1, timeoutMs: 60_000 });
    let missing = 0;
    for (let i = 0; i < 400; i++) if (b.get(`r${round}-n${i}`) === undefined) missing++;
    expect(missing, `round ${round}: nodes the peer lacked when whenDelivered resolved`).toBe(0);
  }
}, 120_000);
