// What an idle relay reads (issue 12, relay memory per connection): a replica's WINDOW(0) to a new
// peer leaves in the same socket write as its opening messages to peers, not in a write of its
// own — and still leaves, within the hold, on a Connection that never sends.
import { Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deriveTopic, generateDatabaseId, type Connection } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { firstConnection } from './sync-helpers.js';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { RelayTransport, type RelayConnection } from '@rhizome/transport-relay';
import { FrameType, readU32 } from '@rhizome/transport-relay/protocol';
import { openDatabase } from '@rhizome/sync';
import { NetLink } from '../packages/transport-relay/src/net-link.js';

const WAIT = 15_000;
const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

async function relay(): Promise<RelayServer> {
  const r = await createRelayServer({ port: 0, host: '127.0.0.1' });
  cleanup.push(() => r.close());
  return r;
}

function transport(url: string): RelayTransport {
  const t = new RelayTransport({ url, timeoutMs: WAIT });
  cleanup.push(() => t.disconnect());
  return t;
}


describe('a replica opening sessions through the relay', () => {
  it('sends each WINDOW(0) in the same socket write as data frames, never in a write of its own', async () => {
    const r = await relay();
    // Every client frame handed to the link (Node's default: the net link, net-link.ts), and every
    // write that reaches a socket, in order. A frame's socket is the one its link writes it to
    // (the first socket write made inside the link's send).
    type Event = { socket: object; frame?: Uint8Array };
    const events: Event[] = [];
    const clientSockets = new Set<object>();
    let sending: Uint8Array | null = null;
    const send = NetLink.prototype.send;
    vi.spyOn(NetLink.prototype, 'send').mockImplementation(function (this: NetLink, data: Uint8Array) {
      sending = Uint8Array.from(data);
      try {
        send.call(this, data);
      } finally {
        sending = null;
      }
    });
    const socketWrite = Socket.prototype.write;
    vi.spyOn(Socket.prototype, 'write').mockImplementation(function (this: Socket, ...args: unknown[]) {
      if (sending !== null) {
        clientSockets.add(this);
        events.push({ socket: this, frame: sending });
        sending = null;
      }
      return (socketWrite as (...a: unknown[]) => boolean).apply(this, args);
    });
    const proto = Socket.prototype as unknown as Record<'_writev' | '_write', (...args: unknown[]) => void>;
    for (const method of ['_writev', '_write'] as const) {
      const original = proto[method];
      vi.spyOn(proto, method).mockImplementation(function (this: Socket, ...args: unknown[]) {
        events.push({ socket: this });
        return original.apply(this, args);
      });
    }

    const id = generateDatabaseId();
    const dbs = await Promise.all([0, 1, 2, 3].map(() => openDatabase({ id, transport: { mode: 'relay', relayUrl: r.url } })));
    for (const d of dbs) cleanup.push(() => d.close());
    await within(WAIT, 'all synced', Promise.all(dbs.map((d) => d.whenSynced({ minPeers: 3 }))));
    vi.restoreAllMocks();

    // Per client socket, the frames of each write: those handed to the link since its previous write.
    let windowsSeen = 0;
    const alone: string[] = [];
    for (const socket of clientSockets) {
      let group: Uint8Array[] = [];
      for (const e of events) {
        if (e.socket !== socket) continue;
        if (e.frame !== undefined) {
          group.push(e.frame);
          continue;
        }
        const windows = group.filter((f) => f[0] === FrameType.WINDOW && readU32(f, 9) === 0).length;
        windowsSeen += windows;
        if (windows > 0 && !group.some((f) => f[0] === FrameType.SEND)) alone.push(group.map((f) => `0x${f[0]!.toString(16)}`).join(' '));
        group = [];
      }
    }
    // Four replicas, three peers each: twelve pairings, each said WINDOW(0) once.
    expect(windowsSeen).toBe(12);
    expect(alone).toEqual([]);
  });

  it('a Connection that never sends still says WINDOW(0) to its peer', async () => {
    const r = await relay();
    const topic = deriveTopic('silent pair');
    const [a, b] = await Promise.all([firstConnection(transport(r.url), topic, WAIT), firstConnection(transport(r.url), topic, WAIT)]);
    // Neither side sends anything: each hears the other's WINDOW(0) once the hold ends.
    const deadline = Date.now() + WAIT;
    while (!((a as RelayConnection).sendWindow.negotiated && (b as RelayConnection).sendWindow.negotiated) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((a as RelayConnection).sendWindow.negotiated).toBe(true);
    expect((b as RelayConnection).sendWindow.negotiated).toBe(true);
  });
});
