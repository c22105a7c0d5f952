// The broadcast group's hand-over sequence: a health ping on a member session may only
// acknowledge local updates the group has already handed to its channel (they leave before the
// ping on the same connection); updates still queued behind it are not vouched for.
import { describe, expect, it } from 'vitest';
import { deriveTopic } from '@rhizome/core';
import type { TopicBroadcast } from '@rhizome/core';
import { UpdateRouter } from './broadcast.js';
import { TurnScheduler } from './coalesce.js';
import { FrameSealer, keyMaterial } from './seal.js';
import type { PeerSession } from './session.js';

/** A channel whose sends stay pending until released, like a transport under backpressure. */
class GatedChannel implements TopicBroadcast {
  readonly maxMessageSize = 1 << 20;
  readonly closed = false;
  readonly sent: Uint8Array[] = [];
  #release: Array<() => void> = [];
  send(data: Uint8Array): Promise<void> {
    this.sent.push(data);
    return new Promise((resolve) => this.#release.push(resolve));
  }
  releaseAll(): void {
    for (const r of this.#release.splice(0)) r();
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('UpdateRouter.pingSeq', () => {
  it('acknowledges only what the channel has taken', async () => {
    let localSeq = 0;
    const channel = new GatedChannel();
    const router = new UpdateRouter({
      sealer: new FrameSealer(keyMaterial('db'), deriveTopic('db')),
      scheduler: new TurnScheduler((fn) => setImmediate(fn)),
      maxFrameBytes: 1 << 20,
      maxQueuedBytes: 1 << 24,
      reportError: (error) => {
        throw error;
      },
      localSeq: () => localSeq,
    });
    // The router only reads the member's connection's broadcast channel.
    const member = { conn: { broadcast: channel } } as unknown as PeerSession;
    const other = { conn: {} } as unknown as PeerSession;
    router.attach(member);
    expect(router.pingSeq(member, localSeq)).toBe(0);

    for (let i = 0; i < 3; i++) {
      localSeq++;
      router.route(new Uint8Array([i]), 'local', []);
    }
    // Queued, not yet sent: a ping now must not acknowledge these three.
    expect(router.pingSeq(member, localSeq)).toBe(0);
    // A session outside any group acknowledges everything queued on itself.
    expect(router.pingSeq(other, localSeq)).toBe(3);

    await turn();
    await turn();
    expect(channel.sent.length).toBe(1);
    localSeq++;
    router.route(new Uint8Array([9]), 'local', []);
    // Sent but the send has not resolved: still not acknowledged.
    expect(router.pingSeq(member, localSeq)).toBe(0);

    channel.releaseAll();
    await turn();
    // The first frame (updates 1-3) is on the wire; update 4 waits for the next frame.
    expect(router.pingSeq(member, localSeq)).toBe(3);
    await turn();
    await turn();
    channel.releaseAll();
    await turn();
    expect(router.pingSeq(member, localSeq)).toBe(4);
  });
});

/** A channel whose every send fails, like a relay session lost mid-send. */
class FailingChannel implements TopicBroadcast {
  readonly maxMessageSize = 1 << 20;
  readonly closed = false;
  send(): Promise<void> {
    return Promise.reject(new Error('refused'));
  }
}

describe('BroadcastGroup members (each session holds its group; no set per peer)', () => {
  it('a failed send queues a catch-up on every member found among the host sessions, and on no one else', async () => {
    const channel = new FailingChannel();
    const caughtUp: string[] = [];
    const session = (name: string, broadcast: TopicBroadcast | undefined) =>
      ({ name, conn: { broadcast }, broadcastGroup: null, catchUp: () => caughtUp.push(name), sendUpdate: () => undefined }) as unknown as PeerSession;
    const a = session('a', channel);
    const b = session('b', channel);
    const loner = session('loner', undefined);
    const reported: Error[] = [];
    const router = new UpdateRouter({
      sealer: new FrameSealer(keyMaterial('db'), deriveTopic('db')),
      scheduler: new TurnScheduler((fn) => setImmediate(fn)),
      maxFrameBytes: 1 << 20,
      maxQueuedBytes: 1 << 24,
      reportError: (error) => reported.push(error),
      sessions: () => [a, b, loner],
    });
    for (const s of [a, b, loner]) router.attach(s);
    const [group] = [...router.groups()];
    expect(group?.members).toBe(2);
    expect(a.broadcastGroup).toBe(group);
    expect(loner.broadcastGroup).toBeNull();

    router.route(new Uint8Array([1]), 'local', [a, b, loner]);
    await turn();
    await turn();
    expect(reported.map((e) => e.message)).toEqual(['refused']);
    expect(caughtUp.sort()).toEqual(['a', 'b']);

    // Members leave: the last one retires the group (its counters kept).
    router.detach(a);
    expect(a.broadcastGroup).toBeNull();
    expect(group?.members).toBe(1);
    router.detach(b);
    expect([...router.groups()]).toEqual([]);
    router.detach(b); // twice: nothing
  });
});
