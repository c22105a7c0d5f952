// Probing (`probePeers`, on by default): a peer met over libp2p that speaks the sync protocol is
// offered the topic handshake at once, without a DHT lookup listing it. The nodes here run kad-dht
// in client mode and have no bootstrap peer, so no DHT lookup can find anyone: every Connection
// below comes from a probe. Everything runs on 127.0.0.1.
import { multiaddr } from '@multiformats/multiaddr';
import type { Connection, RhizomeError } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { syncProtocol } from './options.js';
import { Cleanup, eventually as eventuallyWithin, recordingTransport, syncStreams as syncStreamsOf, topicMaker } from './testing/fixtures.js';
import { DhtTransport } from './transport.js';

const PROTOCOL = syncProtocol('/rhizome');
const WAIT = 10_000;

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const freshTopic = topicMaker('dht-probe');

/** A transport whose DHT cannot find anyone (client mode, no bootstrap, no mDNS); it records its errors. */
function isolated(options: ConstructorParameters<typeof DhtTransport>[0] = {}): { t: DhtTransport; errors: RhizomeError[] } {
  return recordingTransport(cleanup, { dhtClientMode: true, mdns: false, handshakeTimeoutMs: 2000 }, options);
}

/** Opens a plain libp2p connection from one node to the other (as a DHT query or mDNS would). */
async function link(from: DhtTransport, to: DhtTransport): Promise<void> {
  await from.libp2p!.dial(multiaddr(to.multiaddrs()[0]!));
}

const syncStreams = (t: DhtTransport): number => syncStreamsOf(t, PROTOCOL);
const eventually = (what: string, cond: () => boolean): Promise<void> => eventuallyWithin(what, cond, WAIT);

async function next(it: AsyncIterator<Connection>, what: string): Promise<Connection> {
  const r = await within(WAIT, what, it.next());
  if (r.done) throw new Error(`${what}: the iterable ended`);
  return r.value;
}

describe('DhtTransport probing', () => {
  it('a libp2p link between two members of a topic becomes one Connection per side, with no DHT lookup', async () => {
    const { t: a, errors: ea } = isolated();
    const { t: b, errors: eb } = isolated();
    const topic = freshTopic();
    const ia = (await a.connect(topic))[Symbol.asyncIterator]();
    const ib = (await b.connect(topic))[Symbol.asyncIterator]();
    // Both sides probe the new link at once: the tie-break keeps one connection for the pair.
    await link(b, a);
    const [ca, cb] = await Promise.all([next(ia, 'the connection at a'), next(ib, 'the connection at b')]);
    expect(ca.peerId).toBe(b.peerId);
    expect(cb.peerId).toBe(a.peerId);
    await cb.send(new Uint8Array([7]));
    expect(await within(WAIT, 'a message', ca.receive())).toEqual(new Uint8Array([7]));
    await ca.send(new Uint8Array([8]));
    expect(await within(WAIT, 'a reply', cb.receive())).toEqual(new Uint8Array([8]));
    // The losing handshake is gone: one sync stream on each side, the pair's.
    await eventually('one sync stream per side', () => syncStreams(a) === 1 && syncStreams(b) === 1);
    expect([...ea, ...eb].map((e) => e.code)).toEqual([]);
  });

  it('a probe of a peer that has not joined the topic is refused quietly; joining later while linked connects', async () => {
    const { t: a, errors: ea } = isolated();
    const { t: c, errors: ec } = isolated();
    const topic = freshTopic();
    const ia = (await a.connect(topic))[Symbol.asyncIterator]();
    // c is in another topic only: a's probe for `topic` gets UNKNOWN_TOPIC, c's probe for its own
    // topic gets UNKNOWN_TOPIC from a. No Connection, no error on either side.
    const other = (await c.connect(freshTopic()))[Symbol.asyncIterator]();
    await link(c, a);
    await eventually('the refused probes to close', () => syncStreams(a) === 0 && syncStreams(c) === 0 && a.libp2p!.getConnections().length === 1);
    expect([...ea, ...ec].map((e) => e.code)).toEqual([]);
    // c joins the topic while the link is up: it probes the peers it is connected to.
    const ic = (await c.connect(topic))[Symbol.asyncIterator]();
    const [ca, cc] = await Promise.all([next(ia, 'the connection at a'), next(ic, 'the connection at c')]);
    expect(ca.peerId).toBe(c.peerId);
    expect(cc.peerId).toBe(a.peerId);
    await cc.send(new Uint8Array([9]));
    expect(await within(WAIT, 'a message', ca.receive())).toEqual(new Uint8Array([9]));
    expect([...ea, ...ec].map((e) => e.code)).toEqual([]);
    void other;
  });

  it('with probePeers false, a link alone makes no Connection (handshakes go to providers and LAN peers only)', async () => {
    const { t: a } = isolated({ probePeers: false });
    const { t: b } = isolated({ probePeers: false });
    const topic = freshTopic();
    await a.connect(topic);
    await b.connect(topic);
    await link(b, a);
    // identify has run on both sides (each knows the other speaks the sync protocol), and a ping
    // went both ways after it; yet no sync stream was opened.
    for (const [t, peer] of [[a, b], [b, a]] as const) {
      for (let i = 0; ; i++) {
        const known = await t.libp2p!.peerStore.get(peer.libp2p!.peerId).catch(() => null);
        if (known?.protocols.includes(PROTOCOL)) break;
        if (i > WAIT / 20) throw new Error('timed out waiting for identify');
        await new Promise((r) => setTimeout(r, 20));
      }
      await t.libp2p!.services.ping.ping(peer.libp2p!.peerId);
    }
    expect(syncStreams(a) + syncStreams(b)).toBe(0);
  });

  it('a lost peer is redialed at its known addresses while the topic has other connections (no DHT lookup)', async () => {
    const { t: a } = isolated();
    const { t: b } = isolated();
    const { t: c } = isolated();
    const topic = freshTopic();
    const iterate = async (t: DhtTransport): Promise<AsyncIterator<Connection>> => (await t.connect(topic))[Symbol.asyncIterator]();
    const [ia, ib, ic] = await Promise.all([iterate(a), iterate(b), iterate(c)]);
    await Promise.all([link(a, b), link(a, c), link(b, c)]);
    const conns = new Map<string, Connection>();
    for (const [name, it] of [['a', ia], ['a', ia], ['b', ib], ['b', ib], ['c', ic], ['c', ic]] as const) {
      const conn = await next(it, `a connection at ${name}`);
      conns.set(`${name}-${conn.peerId}`, conn);
    }
    const ab = conns.get(`a-${b.peerId}`)!;
    // Cut a's libp2p link to b (as a broken network path would): a and b still have c, and no
    // DHT can find anyone here, so only a direct redial brings the pair back.
    for (const l of a.libp2p!.getConnections(b.libp2p!.peerId)) l.abort(new Error('link cut by the test'));
    expect(await within(WAIT, 'the close at a', ab.receive())).toBeNull();
    const [na, nb] = await Promise.all([next(ia, 'the new connection at a'), next(ib, 'the new connection at b')]);
    expect(na.peerId).toBe(b.peerId);
    expect(nb.peerId).toBe(a.peerId);
    await na.send(new Uint8Array([5]));
    expect(await within(WAIT, 'a message on the new pair', nb.receive())).toEqual(new Uint8Array([5]));
  });

  it('probePeers must be a boolean', () => {
    expect(() => new DhtTransport({ probePeers: 'yes' as unknown as boolean })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }));
  });
});
