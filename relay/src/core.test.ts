// The routing core on in-memory WebSocket-like sockets: routing rules, zero-copy forwarding,
// pairing, takeover, limits. (Real sockets: test/relay-*.test.ts.)
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  CloseCode,
  DATA_HEADER_BYTES,
  FrameType,
  decodePeers,
  encodeDataFrame,
  encodeHello,
  encodeLookup,
  encodePing,
  encodeTopicFrame,
  readU32,
  RelayErrorCode,
  utf8,
} from '@rhizome/transport-relay/protocol';
import { RelayCore, type RelaySocket } from './core.js';

/** A socket that records what the core sends and how it closes it. */
class FakeSocket extends EventEmitter {
  bufferedAmount = 0;
  sent: Uint8Array[] = [];
  closedWith: number | null = null;
  terminated = false;
  pings = 0;
  send(data: Uint8Array): void {
    this.sent.push(data);
  }
  close(code?: number): void {
    if (this.closedWith !== null) return;
    this.closedWith = code ?? 1005;
    queueMicrotask(() => this.emit('close'));
  }
  terminate(): void {
    this.terminated = true;
    if (this.closedWith === null) {
      this.closedWith = 1006;
      queueMicrotask(() => this.emit('close'));
    }
  }
  ping(): void {
    this.pings++;
  }
  /** Delivers a frame to the core as `ws` would (a Buffer it owns). */
  input(frame: Uint8Array): void {
    this.emit('message', Buffer.from(frame), true);
  }
  frames(type: number): Uint8Array[] {
    return this.sent.filter((f) => f[0] === type);
  }
}

const topic = new Uint8Array(32).fill(1);

function client(core: RelayCore, id: string, ip = '10.0.0.1', sessionKey: Uint8Array | null = null): FakeSocket {
  const s = new FakeSocket();
  core.attach(s as unknown as RelaySocket, { ip });
  s.input(encodeHello(utf8(id), null, sessionKey));
  return s;
}

function session(s: FakeSocket): number {
  return readU32(s.frames(FrameType.WELCOME)[0]!, 2);
}

function join(s: FakeSocket, t = topic): number {
  s.input(encodeTopicFrame(FrameType.JOIN, t));
  const joined = s.frames(FrameType.JOINED).at(-1)!;
  return readU32(joined, 1);
}

describe('RelayCore', () => {
  it('pairs members both ways and forwards SEND as DELIVER, rewriting the header in place', async () => {
    const core = new RelayCore();
    const a = client(core, 'a');
    const b = client(core, 'b');
    const tid = join(a);
    expect(join(b)).toBe(tid);
    // Each side heard about the other exactly once.
    expect(a.frames(FrameType.PEER_JOINED).map((f) => readU32(f, 5))).toEqual([session(b)]);
    expect(b.frames(FrameType.PEER_JOINED).map((f) => readU32(f, 5))).toEqual([session(a)]);
    expect(new TextDecoder().decode(a.frames(FrameType.PEER_JOINED)[0]!.subarray(10))).toBe('b');

    const incoming = Buffer.from(encodeDataFrame(FrameType.SEND, tid, session(b), utf8('payload')));
    a.emit('message', incoming, true);
    const delivered = b.frames(FrameType.DELIVER);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toBe(incoming); // the very buffer received: no copy
    expect(readU32(delivered[0]!, 1)).toBe(tid);
    expect(readU32(delivered[0]!, 5)).toBe(session(a));
    expect(new TextDecoder().decode(delivered[0]!.subarray(DATA_HEADER_BYTES))).toBe('payload');
    expect(core.stats()).toMatchObject({ connections: 2, topics: 1 });
    await core.close();
  });

  it('BROADCAST reaches every other member with one buffer', async () => {
    const core = new RelayCore();
    const members = ['a', 'b', 'c', 'd'].map((id) => client(core, id));
    const tid = members.map((m) => join(m))[0]!;
    const frame = Buffer.from(encodeDataFrame(FrameType.BROADCAST, tid, 0, utf8('to all')));
    members[0]!.emit('message', frame, true);
    expect(members[0]!.frames(FrameType.DELIVER)).toHaveLength(0);
    for (const m of members.slice(1)) {
      expect(m.frames(FrameType.DELIVER)).toEqual([frame]);
      expect(m.frames(FrameType.DELIVER)[0]).toBe(frame);
    }
    expect(readU32(frame, 5)).toBe(session(members[0]!));
    await core.close();
  });

  it('CLOSE_PEER reaches the remote as PEER_CLOSED; LEAVE as PEER_LEFT; an empty topic is forgotten', async () => {
    const core = new RelayCore();
    const a = client(core, 'a');
    const b = client(core, 'b');
    const tid = join(a);
    join(b);
    a.input(encodeDataFrame(FrameType.CLOSE_PEER, tid, session(b)));
    expect(b.frames(FrameType.PEER_CLOSED).map((f) => readU32(f, 5))).toEqual([session(a)]);
    a.input(encodeTopicFrame(FrameType.LEAVE, topic));
    expect(b.frames(FrameType.PEER_LEFT).map((f) => readU32(f, 5))).toEqual([session(a)]);
    // a is no longer a member: its data frames are refused with a non-fatal ERROR.
    a.input(encodeDataFrame(FrameType.SEND, tid, session(b), utf8('late')));
    expect(a.frames(FrameType.ERROR)).toHaveLength(1);
    expect(b.frames(FrameType.DELIVER)).toHaveLength(0);
    b.input(encodeTopicFrame(FrameType.LEAVE, topic));
    expect(core.stats().topics).toBe(0);
    expect(core.stats().drops.not_joined).toBe(1);
    await core.close();
  });

  it('ANNOUNCE makes a peer findable without pairing; LOOKUP never lists the asker', async () => {
    const core = new RelayCore();
    const a = client(core, 'announcer');
    const b = client(core, 'joiner');
    const c = client(core, 'asker');
    a.input(encodeTopicFrame(FrameType.ANNOUNCE, topic));
    expect(a.frames(FrameType.JOINED)).toHaveLength(1);
    join(b);
    expect(b.frames(FrameType.PEER_JOINED)).toHaveLength(0); // announcers are not paired
    c.input(encodeLookup(99, topic));
    const reply = decodePeers(c.frames(FrameType.PEERS)[0]!);
    expect(reply.requestId).toBe(99);
    expect(reply.peers.map((p) => new TextDecoder().decode(p.peerId)).sort()).toEqual(['announcer', 'joiner']);
    b.input(encodeLookup(100, topic));
    expect(decodePeers(b.frames(FrameType.PEERS)[0]!).peers.map((p) => new TextDecoder().decode(p.peerId))).toEqual(['announcer']);
    await core.close();
  });

  it('a HELLO with a peer id in use and without its session key is refused (4031); the holder stays', async () => {
    const core = new RelayCore();
    const key = new Uint8Array(16).fill(3);
    const holder = client(core, 'same', '10.0.0.1', key);
    join(holder);
    const noKey = client(core, 'same', '10.0.0.2');
    const wrongKey = client(core, 'same', '10.0.0.3', new Uint8Array(16).fill(4));
    expect(noKey.closedWith).toBe(CloseCode.PEER_ID_TAKEN);
    expect(wrongKey.closedWith).toBe(CloseCode.PEER_ID_TAKEN);
    expect(holder.closedWith).toBeNull();
    expect(core.stats().drops).toMatchObject({ peer_id_taken: 2 });
    // A holder without a key can never be taken over either.
    const keyless = client(core, 'keyless');
    expect(client(core, 'keyless').closedWith).toBe(CloseCode.PEER_ID_TAKEN);
    expect(keyless.closedWith).toBeNull();
    await core.close();
  });

  it('a second HELLO with the same peer id and session key replaces the older session (4030)', async () => {
    const core = new RelayCore();
    const key = new Uint8Array(16).fill(9);
    const old = client(core, 'same', '10.0.0.1', key);
    const other = client(core, 'other');
    join(old);
    join(other);
    const fresh = client(core, 'same', '10.0.0.1', key);
    expect(old.closedWith).toBe(CloseCode.REPLACED);
    expect(other.frames(FrameType.PEER_LEFT).map((f) => readU32(f, 5))).toEqual([session(old)]);
    join(fresh);
    expect(other.frames(FrameType.PEER_JOINED).map((f) => readU32(f, 5))).toEqual([session(old), session(fresh)]);
    await core.close();
  });

  it('a connection on one, several, then one topic again: the topic limit counts what is left, closing leaves them all', async () => {
    const core = new RelayCore({ maxTopicsPerConnection: 2 });
    const t = [1, 2, 3, 4].map((i) => new Uint8Array(32).fill(40 + i));
    const a = client(core, 'a');
    const b = client(core, 'b'); // on t[0], t[1]
    const d = client(core, 'd'); // on t[2], t[3]
    t.forEach((x, i) => join(i < 2 ? b : d, x));
    join(a, t[0]);
    join(a, t[1]);
    a.input(encodeTopicFrame(FrameType.LEAVE, t[0]!));
    join(a, t[2]); // two again: t[1], t[2]
    expect(a.closedWith).toBeNull();
    a.input(encodeTopicFrame(FrameType.LEAVE, t[2]!));
    a.input(encodeTopicFrame(FrameType.LEAVE, t[2]!)); // not listed any more: nothing happens
    join(a, t[3]); // t[1], t[3]
    expect(a.closedWith).toBeNull();
    const left = (): number[] => [b, d].map((x) => x.frames(FrameType.PEER_LEFT).length);
    expect(left()).toEqual([1, 1]); // the LEAVEs of t[0] and t[2]
    a.close();
    await new Promise((resolve) => setImmediate(resolve));
    // Closing leaves the two topics a was still on (t[1] with b, t[3] with d), and only those.
    expect(left()).toEqual([2, 2]);
    expect(b.closedWith).toBeNull();
    expect(d.closedWith).toBeNull();
    const c = client(core, 'c');
    join(c, t[0]);
    join(c, t[1]);
    c.input(encodeTopicFrame(FrameType.JOIN, t[2]!));
    expect(c.closedWith).toBe(CloseCode.TOO_MANY_TOPICS);
    await core.close();
  });

  it('limits: topics per connection, connections per address and in total', async () => {
    const core = new RelayCore({ maxTopicsPerConnection: 3, maxConnectionsPerIp: 2, maxConnections: 3 });
    const a = client(core, 'a');
    for (let i = 0; i < 3; i++) join(a, new Uint8Array(32).fill(10 + i));
    join(a, new Uint8Array(32).fill(10)); // joining a topic again is not a new topic
    expect(a.closedWith).toBeNull();
    a.input(encodeTopicFrame(FrameType.JOIN, new Uint8Array(32).fill(99)));
    expect(a.closedWith).toBe(CloseCode.TOO_MANY_TOPICS);
    expect(core.stats().topics).toBe(0);
    client(core, 'b');
    const c = client(core, 'c'); // third from 10.0.0.1 while a is still counted
    expect(c.closedWith).toBe(CloseCode.TOO_MANY_CONNECTIONS_PER_IP);
    client(core, 'd', '10.0.0.2');
    const e = client(core, 'e', '10.0.0.3');
    expect(e.closedWith).toBe(CloseCode.TOO_MANY_CONNECTIONS);
    await core.close();
  });

  it('rate limits: frames per second and bytes per second', async () => {
    const core = new RelayCore({ maxFramesPerSecond: 10, frameBurst: 20, maxBytesPerSecond: 1000, byteBurst: 200_000, maxFrameSize: 100_000 });
    const a = client(core, 'a');
    for (let i = 0; i < 40 && a.closedWith === null; i++) a.input(encodeLookup(i, topic));
    expect(a.closedWith).toBe(CloseCode.FRAME_RATE_EXCEEDED);
    const b = client(core, 'b');
    const tid = join(b);
    for (let i = 0; i < 5 && b.closedWith === null; i++) b.input(encodeDataFrame(FrameType.BROADCAST, tid, 0, new Uint8Array(60_000)));
    expect(b.closedWith).toBe(CloseCode.BYTE_RATE_EXCEEDED);
    await core.close();
  });

  it('a JOIN to a full topic only announces, with ERROR TOPIC_FULL', async () => {
    const core = new RelayCore({ maxPeersPerTopic: 2 });
    const [a, b, c] = ['a', 'b', 'c'].map((id) => client(core, id));
    join(a!);
    join(b!);
    const tid = join(c!);
    const error = c!.frames(FrameType.ERROR);
    expect(error).toHaveLength(1);
    expect((error[0]![1]! << 8) | error[0]![2]!).toBe(RelayErrorCode.TOPIC_FULL);
    expect(readU32(error[0]!, 3)).toBe(tid);
    expect(c!.frames(FrameType.PEER_JOINED)).toHaveLength(0);
    expect(a!.frames(FrameType.PEER_JOINED)).toHaveLength(1); // b only
    c!.input(encodeLookup(1, topic));
    expect(decodePeers(c!.frames(FrameType.PEERS)[0]!).peers).toHaveLength(2);
    expect(core.stats().drops.topic_full).toBe(1);
    await core.close();
  });

  it('fan-out is charged to whoever causes it: a broadcast to many costs many frames', async () => {
    const core = new RelayCore({ maxFramesPerSecond: 1, frameBurst: 30 });
    const members = Array.from({ length: 8 }, (_, i) => client(core, `m${i}`));
    // Joining costs 2 frames per existing member: the last joiners pay the most.
    const tid = members.map((m) => join(m))[0]!;
    const sender = members[0]!;
    expect(sender.closedWith).toBeNull();
    // Each broadcast reaches 7 members: 7 frames of the sender's budget, not 1.
    for (let i = 0; i < 10 && sender.closedWith === null; i++) sender.input(encodeDataFrame(FrameType.BROADCAST, tid, 0, utf8('x')));
    expect(sender.closedWith).toBe(CloseCode.FRAME_RATE_EXCEEDED);
    expect(members[1]!.frames(FrameType.DELIVER).length).toBeLessThan(10);
    await core.close();
  });

  it('a recipient whose send buffer passes maxBufferedBytes is cut (4025); the sender is not', async () => {
    const core = new RelayCore({ maxFrameSize: 1000, maxBufferedBytes: 5000 });
    const a = client(core, 'a');
    const b = client(core, 'b');
    const tid = join(a);
    join(b);
    b.bufferedAmount = 4990;
    a.input(encodeDataFrame(FrameType.SEND, tid, session(b), new Uint8Array(100)));
    b.bufferedAmount = 5100;
    a.input(encodeDataFrame(FrameType.SEND, tid, session(b), new Uint8Array(100)));
    expect(b.closedWith).toBe(CloseCode.SLOW_CONSUMER);
    expect(a.closedWith).toBeNull();
    expect(a.frames(FrameType.PEER_LEFT)).toHaveLength(1);
    await core.close();
  });

  it('text, empty, unknown and malformed frames, and frames before HELLO, get their codes', async () => {
    const core = new RelayCore();
    const cases: Array<[(s: FakeSocket) => void, number]> = [
      [(s) => s.emit('message', Buffer.from('{"json":1}'), false), CloseCode.UNSUPPORTED_DATA],
      [(s) => s.input(new Uint8Array(0)), CloseCode.MALFORMED_FRAME],
      [(s) => s.input(Uint8Array.from([0x7e, 1])), CloseCode.UNKNOWN_FRAME_TYPE],
      [(s) => s.input(Uint8Array.from([FrameType.JOIN, 1, 2])), CloseCode.MALFORMED_FRAME],
      [(s) => s.input(encodeHello(utf8('again'), null)), CloseCode.HELLO_REQUIRED],
    ];
    for (const [act, code] of cases) {
      const s = client(core, `p${code}`);
      act(s);
      expect(s.closedWith).toBe(code);
    }
    const otherVersion = new FakeSocket();
    core.attach(otherVersion as unknown as RelaySocket, { ip: '1.1.1.1' });
    otherVersion.input(Uint8Array.from([FrameType.HELLO, 9, 1, 65, 0, 0]));
    expect(otherVersion.closedWith).toBe(CloseCode.VERSION_MISMATCH);
    const early = new FakeSocket();
    core.attach(early as unknown as RelaySocket, { ip: '1.1.1.1' });
    early.input(encodeTopicFrame(FrameType.JOIN, topic));
    expect(early.closedWith).toBe(CloseCode.HELLO_REQUIRED);
    await core.close();
  });

  it('PING is answered by PONG with the same nonce', async () => {
    const core = new RelayCore();
    const a = client(core, 'a');
    a.input(encodePing(FrameType.PING, 0xabcdef01));
    const pong = a.frames(FrameType.PONG);
    expect(pong).toHaveLength(1);
    expect(readU32(pong[0]!, 1)).toBe(0xabcdef01);
    await core.close();
  });

  it('a token, when set, is required', async () => {
    const core = new RelayCore({ token: 'tok' });
    const bad = new FakeSocket();
    core.attach(bad as unknown as RelaySocket, { ip: '1' });
    bad.input(encodeHello(utf8('x'), utf8('nope')));
    expect(bad.closedWith).toBe(CloseCode.UNAUTHORIZED);
    const good = new FakeSocket();
    core.attach(good as unknown as RelaySocket, { ip: '1' });
    good.input(encodeHello(utf8('y'), utf8('tok')));
    expect(good.frames(FrameType.WELCOME)).toHaveLength(1);
    await core.close();
  });

  it('no HELLO in time: 4004; close() says going away (1001) and refuses newcomers', async () => {
    const core = new RelayCore({ helloTimeoutMs: 40, heartbeatIntervalMs: 0 });
    const silent = new FakeSocket();
    core.attach(silent as unknown as RelaySocket, { ip: '1' });
    await new Promise<void>((resolve) => silent.once('close', () => resolve()));
    expect(silent.closedWith).toBe(CloseCode.HELLO_TIMEOUT);
    const live = client(core, 'live');
    await core.close();
    expect(live.closedWith).toBe(CloseCode.GOING_AWAY);
    const late = new FakeSocket();
    core.attach(late as unknown as RelaySocket, { ip: '1' });
    expect(late.closedWith).toBe(CloseCode.GOING_AWAY);
  });

  it('rejects bad limits with ERR_INVALID_CONFIG naming the field', () => {
    expect(() => new RelayCore({ maxFrameSize: 10 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', field: 'maxFrameSize' }));
    expect(() => new RelayCore({ maxTopicsPerConnection: 0 })).toThrow(expect.objectContaining({ field: 'maxTopicsPerConnection' }));
    expect(() => new RelayCore({ byteBurst: 10 })).toThrow(expect.objectContaining({ field: 'byteBurst' }));
    expect(() => new RelayCore({ token: '' })).toThrow(expect.objectContaining({ field: 'token' }));
    expect(() => new RelayCore({ maxLookupPeers: 70_000 })).toThrow(expect.objectContaining({ field: 'maxLookupPeers' }));
  });
});
