// The link monitor (link-monitor.ts) that replaces libp2p's connection monitor in Rhizome peers:
// links our sessions hear from are not pinged, silent ones are, and a link whose ping is not
// answered is aborted. Real libp2p nodes on 127.0.0.1; checks are run by hand (the interval is an
// hour), so nothing here depends on timers firing.
import type { Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import type { DhtTransport } from './transport.js';
import { LinkMonitor, PING_PROTOCOL } from './link-monitor.js';
import { Cleanup, eventually, recordingTransport, topicMaker } from './testing/fixtures.js';

const WAIT = 10_000;
const HOUR = 3_600_000;
const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const topic = topicMaker('link-monitor');

/** Replaces the node's ping handler by one that counts pings and echoes (or, `answer: false`, stays silent). */
async function countPings(t: DhtTransport, answer = true): Promise<{ count: number }> {
  const node = t.libp2p!;
  const counter = { count: 0 };
  await node.unhandle(PING_PROTOCOL);
  await node.handle(
    PING_PROTOCOL,
    async (stream: Stream) => {
      counter.count++;
      if (!answer) return; // reads nothing, answers nothing: a hung peer
      for await (const chunk of stream) stream.send(chunk);
      await stream.close();
    },
    { runOnLimitedConnection: true },
  );
  return counter;
}

describe('LinkMonitor', () => {
  it('skips a link a session on it heard from since the last check, pings it once the session is silent', async () => {
    const a = recordingTransport(cleanup, { mdns: false, linkPingIntervalMs: HOUR }).t;
    const b = recordingTransport(cleanup, { mdns: false, linkPingIntervalMs: HOUR }).t;
    const t = topic();
    const [ia, ib] = await Promise.all([a.connect(t), b.connect(t)]);
    await a.libp2p!.dial(multiaddr(b.multiaddrs()[0]!));
    const ca = (await ia[Symbol.asyncIterator]().next()).value!;
    const cb = (await ib[Symbol.asyncIterator]().next()).value!;
    const pings = await countPings(b);
    // First check of the link: nothing to compare with yet, so it is pinged.
    expect(await a.checkLinks()).toEqual({ pings: 1, skipped: 0 });
    expect(pings.count).toBe(1);
    expect(a.libp2p!.getConnections(b.libp2p!.peerId)[0]!.rtt).toBeTypeOf('number');
    // The session received something: the link is alive by that measure, no ping.
    await cb.send(new Uint8Array([1, 2, 3]));
    expect(await ca.receive()).toEqual(new Uint8Array([1, 2, 3]));
    expect(await a.checkLinks()).toEqual({ pings: 1, skipped: 1 });
    expect(pings.count).toBe(1);
    // Nothing received since: pinged again.
    expect(await a.checkLinks()).toEqual({ pings: 2, skipped: 1 });
    expect(pings.count).toBe(2);
    expect(a.libp2p!.getConnections(b.libp2p!.peerId)[0]!.status).toBe('open');
  });

  it('pings a link that carries no session at every check', async () => {
    const a = recordingTransport(cleanup, { mdns: false, linkPingIntervalMs: HOUR }).t;
    const b = recordingTransport(cleanup, { mdns: false, linkPingIntervalMs: HOUR }).t;
    await Promise.all([a.start(), b.start()]);
    await a.libp2p!.dial(multiaddr(b.multiaddrs()[0]!));
    const pings = await countPings(b);
    for (let i = 1; i <= 3; i++) {
      expect((await a.checkLinks()).pings).toBe(i);
      expect(pings.count).toBe(i);
    }
  });

  it('aborts a link whose ping is not answered within the timeout', async () => {
    const a = recordingTransport(cleanup, { mdns: false, linkPingIntervalMs: HOUR }).t;
    const b = recordingTransport(cleanup, { mdns: false, linkPingIntervalMs: HOUR }).t;
    await Promise.all([a.start(), b.start()]);
    const link = await a.libp2p!.dial(multiaddr(b.multiaddrs()[0]!));
    const pings = await countPings(b, false);
    const dead: Error[] = [];
    const monitor = new LinkMonitor({ links: () => a.libp2p!.getConnections(), heard: () => undefined, timeoutMs: 300, onDead: (_l, e) => dead.push(e) });
    cleanup.push(() => monitor.stop());
    await monitor.check();
    expect(pings.count).toBe(1);
    expect(dead).toHaveLength(1);
    expect(link.status).not.toBe('open');
    await eventually('b to see the link go', () => b.libp2p!.getConnections(a.libp2p!.peerId).length === 0, WAIT);
  });

  it('a peer that does not serve the ping protocol is alive: its link stays', async () => {
    const a = recordingTransport(cleanup, { mdns: false, linkPingIntervalMs: HOUR }).t;
    const b = recordingTransport(cleanup, { mdns: false, linkPingIntervalMs: HOUR }).t;
    await Promise.all([a.start(), b.start()]);
    const link = await a.libp2p!.dial(multiaddr(b.multiaddrs()[0]!));
    await b.libp2p!.unhandle(PING_PROTOCOL);
    const dead: Error[] = [];
    const monitor = new LinkMonitor({ links: () => a.libp2p!.getConnections(), heard: () => undefined, timeoutMs: 5_000, onDead: (_l, e) => dead.push(e) });
    cleanup.push(() => monitor.stop());
    await monitor.check();
    expect(monitor.pings).toBe(1);
    expect(dead).toEqual([]);
    expect(link.status).toBe('open');
  });
});
