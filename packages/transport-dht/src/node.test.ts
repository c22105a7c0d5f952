// The libp2p node as Rhizome configures it: kad-dht adds a contact that reached it over an open
// connection without pinging it first (skipPingOfConnectedContacts). Real nodes on 127.0.0.1.
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import { generatePrivateKey } from './keys.js';
import { createRhizomeNode, deferStartupRefresh, skipPingOfConnectedContacts, type RhizomeLibp2p } from './node.js';
import { Cleanup, eventually, recordingTransport } from './testing/fixtures.js';

const WAIT = 10_000;
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** kad-dht's routing table (internal, not in its public types): its size and its events. */
function routingTable(node: RhizomeLibp2p): EventTarget & { size: number } {
  return (node.services.dht as unknown as { routingTable: EventTarget & { size: number } }).routingTable;
}

describe('Rhizome libp2p node', () => {
  it('kad-dht adds a connected contact to its routing table without pinging it first', async () => {
    const a = recordingTransport(cleanup, { mdns: false }).t;
    const b = recordingTransport(cleanup, { mdns: false }).t;
    await Promise.all([a.start(), b.start()]);
    const pings: string[] = [];
    const table = routingTable(a.libp2p!);
    table.addEventListener('peer:ping', (event) => pings.push(String((event as CustomEvent).detail)));
    expect(table.size).toBe(0);
    await a.libp2p!.dial(multiaddr(b.multiaddrs()[0]!));
    // identify runs, kad-dht's topology sees a peer speaking its protocol and adds it.
    await eventually('b in a\'s routing table', () => table.size === 1, WAIT);
    expect(pings).toEqual([]);
  });

  it('a contact with no open connection is still pinged before it is added (kad-dht\'s own check)', async () => {
    const a = recordingTransport(cleanup, { mdns: false }).t;
    const b = recordingTransport(cleanup, { mdns: false }).t;
    await Promise.all([a.start(), b.start()]);
    const table = routingTable(a.libp2p!) as EventTarget & { size: number; add(peer: unknown): Promise<void> };
    const pings: string[] = [];
    table.addEventListener('peer:ping', (event) => pings.push(String((event as CustomEvent).detail)));
    // a learns b's address (as from a DHT answer naming it) but holds no connection to it.
    await a.libp2p!.peerStore.merge(b.libp2p!.peerId, { multiaddrs: [multiaddr(b.multiaddrs()[0]!)] });
    expect(a.libp2p!.getConnections(b.libp2p!.peerId)).toEqual([]);
    await table.add(b.libp2p!.peerId);
    expect(pings).toEqual([b.libp2p!.peerId.toString()]);
    expect(table.size).toBe(1);
  });

  it('the hook reports when kad-dht does not have the shape it expects (then nothing is changed)', () => {
    expect(skipPingOfConnectedContacts({ services: { dht: {} } } as unknown as RhizomeLibp2p)).toBe(false);
    expect(deferStartupRefresh({ services: { dht: {} } } as unknown as RhizomeLibp2p, 1000)).toBe(false);
  });

  it("kad-dht's start-up routing-table refresh waits startupWalkDelayMs (the installed kad-dht has the hooked shape)", async () => {
    const node = await createRhizomeNode({
      privateKey: generatePrivateKey(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      protocolPrefix: '/rhizome',
      dhtClientMode: false,
      allowPrivateAddresses: true,
      dialTimeoutMs: 5000,
      pingTimeoutMs: 30_000,
    });
    cleanup.push(() => node.stop());
    const refresh = (node.services.dht as unknown as { routingTableRefresh: { refreshTable: (force?: boolean) => void } }).routingTableRefresh;
    const calls: Array<boolean | undefined> = [];
    const original = refresh.refreshTable;
    refresh.refreshTable = (force?: boolean) => {
      calls.push(force);
      original.call(refresh, force);
    };
    // Hooked over the recording wrapper: the start-up call is held for an hour, so it never reaches it.
    expect(deferStartupRefresh(node, 3_600_000)).toBe(true);
    await node.start();
    expect(calls).toEqual([]);
  });
});
