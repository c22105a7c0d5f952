import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CloseCode,
  DATA_HEADER_BYTES,
  FrameType,
  closeCodeName,
  decodePeers,
  encodeDataFrame,
  encodeError,
  encodeHello,
  helloSessionKey,
  encodeJoined,
  encodeLookup,
  encodePing,
  encodePeerJoined,
  encodePeers,
  encodeTopicFrame,
  encodeWelcome,
  isDataFrame,
  isErrorFrame,
  isFatalCloseCode,
  isHelloFrame,
  isJoinedFrame,
  isLookupFrame,
  isPairFrame,
  isPeerJoinedFrame,
  isPeersFrame,
  isPingFrame,
  isTopicFrame,
  isWelcomeFrame,
  readU32,
  utf8,
  writeU32,
  encodeWindow,
  isWindowFrame,
  encodeLimits,
  decodeLimits,
  isLimitsFrame,
  LIMITS_FLAG_WINDOW,
} from './protocol.js';

const topic = Uint8Array.from({ length: 32 }, (_, i) => i * 7);

describe('relay protocol', () => {
  it('u32 fields round-trip, big-endian', () => {
    const b = new Uint8Array(6);
    for (const v of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x01020304]) {
      writeU32(b, 1, v);
      expect(readU32(b, 1)).toBe(v);
    }
    writeU32(b, 0, 0x01020304);
    expect([...b.subarray(0, 4)]).toEqual([1, 2, 3, 4]);
  });

  it('each encoder produces a frame its guard accepts, and truncation or extension breaks it', () => {
    const frames: Array<[string, Uint8Array, (b: Uint8Array) => boolean]> = [
      ['HELLO', encodeHello(utf8('peer-1'), utf8('token')), isHelloFrame],
      ['HELLO without token', encodeHello(utf8('p'), null), isHelloFrame],
      ['HELLO with a session key', encodeHello(utf8('p'), utf8('t'), new Uint8Array(16).fill(7)), isHelloFrame],
      ['JOIN', encodeTopicFrame(FrameType.JOIN, topic), isTopicFrame],
      ['LOOKUP', encodeLookup(7, topic), isLookupFrame],
      ['CLOSE_PEER', encodeDataFrame(FrameType.CLOSE_PEER, 1, 2), isPairFrame],
      ['WELCOME', encodeWelcome(5, 1 << 20), isWelcomeFrame],
      ['JOINED', encodeJoined(9, topic), isJoinedFrame],
      ['PEER_JOINED', encodePeerJoined(9, 3, utf8('someone')), isPeerJoinedFrame],
      ['PEERS', encodePeers(4, [{ session: 1, peerId: utf8('a') }, { session: 2, peerId: utf8('bb') }]), isPeersFrame],
      ['PEERS empty', encodePeers(4, []), isPeersFrame],
      ['PING', encodePing(FrameType.PING, 1), isPingFrame],
      ['WINDOW', encodeWindow(3, 4, 1 << 20), isWindowFrame],
    ];
    for (const [name, frame, guard] of frames) {
      expect(guard(frame), name).toBe(true);
      expect(guard(frame.subarray(0, frame.length - 1)), `${name} truncated`).toBe(false);
      const longer = new Uint8Array(frame.length + 1);
      longer.set(frame);
      expect(guard(longer), `${name} with a trailing byte`).toBe(false);
    }
    // Data frames carry any payload, down to none.
    expect(isDataFrame(encodeDataFrame(FrameType.SEND, 1, 2))).toBe(true);
    expect(isDataFrame(encodeDataFrame(FrameType.SEND, 1, 2).subarray(0, DATA_HEADER_BYTES - 1))).toBe(false);
    expect(isErrorFrame(encodeError(1, 2, 'x'))).toBe(true);
  });

  it('HELLO carries its session key; an over-long key is refused', () => {
    const key = Uint8Array.from([1, 2, 3]);
    expect([...helloSessionKey(encodeHello(utf8('peer'), utf8('tok'), key))]).toEqual([1, 2, 3]);
    expect(helloSessionKey(encodeHello(utf8('peer'), null)).length).toBe(0);
    expect(isHelloFrame(encodeHello(utf8('peer'), null, new Uint8Array(65)))).toBe(false);
  });

  it('HELLO rejects an empty or over-long peer id', () => {
    expect(isHelloFrame(Uint8Array.from([FrameType.HELLO, 1, 0, 0, 0]))).toBe(false);
    const long = new Uint8Array(4 + 65);
    long[0] = FrameType.HELLO;
    long[1] = 1;
    long[2] = 65;
    expect(isHelloFrame(long)).toBe(false);
  });

  it('data frames put topic id and peer in the header, the payload after it', () => {
    const f = encodeDataFrame(FrameType.SEND, 0xdeadbeef, 42, utf8('hi'));
    expect(f[0]).toBe(FrameType.SEND);
    expect(readU32(f, 1)).toBe(0xdeadbeef);
    expect(readU32(f, 5)).toBe(42);
    expect(new TextDecoder().decode(f.subarray(DATA_HEADER_BYTES))).toBe('hi');
    const peers = decodePeers(encodePeers(77, [{ session: 9, peerId: utf8('z') }]));
    expect(peers.requestId).toBe(77);
    expect(peers.peers.map((p) => [p.session, new TextDecoder().decode(p.peerId)])).toEqual([[9, 'z']]);
  });

  it('LIMITS round-trips, clamps to u32, accepts a longer frame (newer relays) and refuses a zero rate', () => {
    const limits = { maxFramesPerSecond: 5000, frameBurst: 20_000, maxBytesPerSecond: 16 << 20, byteBurst: 2 ** 40 };
    const f = encodeLimits(limits, LIMITS_FLAG_WINDOW);
    expect(isLimitsFrame(f)).toBe(true);
    expect(decodeLimits(f)).toEqual({ ...limits, byteBurst: 0xffffffff, flags: LIMITS_FLAG_WINDOW });
    expect(isLimitsFrame(f.subarray(0, 17))).toBe(false);
    const longer = new Uint8Array(30);
    longer.set(f);
    expect(isLimitsFrame(longer)).toBe(true);
    const zero = f.slice();
    zero.fill(0, 10, 14);
    expect(isLimitsFrame(zero)).toBe(false);
  });

  it('frame types and close codes are unique, named, and written down in ARCHITECTURE.md', () => {
    const types = Object.values(FrameType);
    expect(new Set(types).size).toBe(types.length);
    for (const [name, t] of Object.entries(FrameType)) expect(t < 0x80, name).toBe(['HELLO', 'JOIN', 'LEAVE', 'ANNOUNCE', 'LOOKUP', 'SEND', 'BROADCAST', 'CLOSE_PEER', 'PING', 'WINDOW'].includes(name));
    const codes = Object.values(CloseCode);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [name, code] of Object.entries(CloseCode)) expect(closeCodeName(code)).toBe(name);
    expect(closeCodeName(4999)).toBeUndefined();
    expect(isFatalCloseCode(CloseCode.UNAUTHORIZED)).toBe(true);
    expect(isFatalCloseCode(CloseCode.SLOW_CONSUMER)).toBe(false);
    expect(isFatalCloseCode(CloseCode.GOING_AWAY)).toBe(false);

    const doc = readFileSync(new URL('../../../ARCHITECTURE.md', import.meta.url), 'utf8');
    const relay = doc.slice(doc.indexOf('## Relay\n'), doc.indexOf('\n## ', doc.indexOf('## Relay\n') + 5));
    for (const [name, t] of Object.entries(FrameType)) {
      expect(relay, `frame ${name} in ARCHITECTURE.md`).toMatch(new RegExp(`\\| \`0x${t.toString(16).padStart(2, '0')}\` \\| ${name} \\|`));
    }
    for (const [name, code] of Object.entries(CloseCode)) {
      expect(relay, `close code ${name} in ARCHITECTURE.md`).toMatch(new RegExp(`\\| ${code} \\| ${name}\\b`));
    }
  });
});
