// When a topic's first announce starts (transport.ts #firstAnnounceMayStart): not beside a joiner's
// first lookup and dials, but once the first Connection is up or the first lookup ended (bounded by
// `announceDeferMs`). Real libp2p nodes and a bootstrap node on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import { startBootstrapNode } from './bootstrap.js';
import { syncProtocol } from './options.js';
import { Cleanup, eventually, recordingTransport, syncStreams, topicMaker } from './testing/fixtures.js';
import type { DhtTransport } from './transport.js';

const WAIT = 20_000;
const HOUR = 3_600_000;
const PROTOCOL = syncProtocol('/rhizome');
const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const topic = topicMaker('announce-order');

async function bootstrap(): Promise<string> {
  const node = await startBootstrapNode({ listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true });
  cleanup.push(() => node.stop());
  return node.multiaddrs()[0]!;
}

/** What the node's DHT was doing when the transport first called `provide`. */
interface AtProvide {
  lookupEnded: boolean;
  syncStreams: number;
}

/** Wraps the started transport's kad-dht so the state at its first `provide` call is recorded. */
function watchFirstProvide(t: DhtTransport): { at: AtProvide | null } {
  const dht = t.libp2p!.services.dht as unknown as Record<'provide' | 'findProviders', (...args: unknown[]) => AsyncIterable<unknown>>;
  const seen: { at: AtProvide | null } = { at: null };
  let lookupEnded = false;
  const find = dht.findProviders.bind(dht);
  const provide = dht.provide.bind(dht);
  dht.findProviders = async function* (...args: unknown[]) {
    yield* find(...args);
    lookupEnded = true;
  };
  dht.provide = (...args: unknown[]) => {
    seen.at ??= { lookupEnded, syncStreams: syncStreams(t, PROTOCOL) };
    return provide(...args);
  };
  return seen;
}

describe('the first announce of a topic', () => {
  it("waits for the joiner's first Connection or the end of its first lookup (0: at once, as before)", async () => {
    const boot = await bootstrap();
    const t = topic();
    const a = recordingTransport(cleanup, { mdns: false, bootstrap: [boot] }).t;
    await a.connect(t);
    await a.announce(t);
    for (const announceDeferMs of [HOUR, 0]) {
      const b = recordingTransport(cleanup, { mdns: false, bootstrap: [boot], announceDeferMs }).t;
      await b.start();
      const seen = watchFirstProvide(b);
      const conns = (await b.connect(t))[Symbol.asyncIterator]();
      await conns.next();
      await eventually('b to announce', () => seen.at !== null, WAIT);
      if (announceDeferMs > 0) expect(seen.at!.lookupEnded || seen.at!.syncStreams > 0).toBe(true);
      // The control: announced at once, beside the lookup, before it ended. (Not asserted: no sync
      // stream yet — a probe from a, if a DHT query of a's linked the two first, may be open.)
      else expect(seen.at!.lookupEnded).toBe(false);
      await b.disconnect();
    }
  }, 60_000);

  it('of a lone first replica starts when its lookup ends (finding nobody), not after the bound', async () => {
    const boot = await bootstrap();
    const t = topic();
    const lone = recordingTransport(cleanup, { mdns: false, bootstrap: [boot], announceDeferMs: HOUR }).t;
    await lone.connect(t);
    const other = recordingTransport(cleanup, { mdns: false, bootstrap: [boot] }).t;
    // Bounded: 100 lookups at most, each bounded by the transport's timeout, within the test's own.
    let found: string[] = [];
    for (let i = 0; i < 100 && !found.includes(lone.peerId); i++) {
      found = (await other.lookup(t)).map((p) => p.peerId);
      if (!found.includes(lone.peerId)) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(found).toContain(lone.peerId);
  }, 30_000);
});
