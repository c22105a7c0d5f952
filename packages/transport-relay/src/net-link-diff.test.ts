// The net link's frame reader (net-link.ts) against `ws`'s Receiver, on the same byte streams: the
// binary messages delivered, the pings answered, and how the stream ends (the relay's close frame,
// or a framing error and its close code) must be the same. Seeded random streams (fragmented
// messages with control frames between the fragments, reserved bits and opcodes, masked frames
// from the server, 16/64-bit and non-minimal lengths, over-limit and > 2^53 lengths, close codes
// and reasons, invalid UTF-8) split into random chunks, every stream also whole and byte by byte.
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as ws from 'ws';
import type { LinkHandler } from './link-shape.js';
import { prng as random } from '../../../test/prng.js';
import { CLOSE_TIMEOUT_MS, NetLink } from './net-link.js';

/** `ws`'s frame reader (exported by `ws`, not declared by its types). */
const Receiver = (ws as unknown as { Receiver: new (options: object) => NodeJS.WritableStream & NodeJS.EventEmitter }).Receiver;

const MAX_PAYLOAD = 1000;

/** What a reader did with a stream: its events in order, and how it ended. */
interface Outcome {
  events: string[];
  end: string;
}

/** A socket as much as NetLink uses of it: records what the link writes and whether it ended or dropped it. */
class FakeSocket {
  writes: Buffer[] = [];
  ended = false;
  destroyed = false;
  writableLength = 0;
  constructor(private readonly events: string[]) {}
  write(data: Uint8Array, cb?: unknown): boolean {
    const b = Buffer.from(data);
    this.writes.push(b);
    // A control frame the link wrote (one buffer: header with a zero mask, then the payload).
    if (b.length >= 6 && (b[0]! & 0x0f) === 0xa) this.events.push(`pong ${b.subarray(6).toString('hex')}`);
    if (typeof cb === 'function') (cb as () => void)();
    return true;
  }
  cork(): void {}
  uncork(): void {}
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  pause(): void {}
  resume(): void {}
  setNoDelay(): void {}
}

function runNet(chunks: Buffer[]): Outcome {
  const events: string[] = [];
  const socket = new FakeSocket(events);
  let closed = '';
  const link = new NetLink('ws://test', socket as never, MAX_PAYLOAD, null);
  const handler: LinkHandler = {
    onLinkFrame(_l, frame) {
      events.push(`message ${Buffer.from(frame).toString('hex')}`);
    },
    onLinkClose(_l, code, reason) {
      closed = `${code} ${reason}`;
    },
  };
  link.handler = handler;
  link.start();
  for (const c of chunks) link.receive(c);
  let end = 'open';
  const closes = socket.writes.filter((w) => (w[0]! & 0x0f) === 0x8);
  if (link.failureCode !== 0) {
    // A framing error: nothing more read, the relay told why in a close frame (as ws tells it), 1006 reported.
    expect(closes.map((w) => w.subarray(6).readUInt16BE(0))).toEqual([link.failureCode]);
    link.closed();
    expect(closed).toBe('1006 ');
    end = `error ${link.failureCode}`;
  } else if (socket.ended) {
    // The relay's close frame: answered with its code (none for a close without one).
    link.closed();
    end = `close ${closed} | reply ${closes[0]!.subarray(6).toString('hex')}`;
  }
  return { events, end };
}

async function runWs(chunks: Buffer[]): Promise<Outcome> {
  const events: string[] = [];
  const receiver = new Receiver({ binaryType: 'nodebuffer', isServer: false, maxPayload: MAX_PAYLOAD });
  let end = 'open';
  receiver.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) events.push(`message ${data.toString('hex')}`);
  });
  receiver.on('ping', (data: Buffer) => events.push(`pong ${data.toString('hex')}`));
  receiver.on('conclude', (code: number, reason: Buffer) => {
    // (As ws answers: the same code, no code for 1005.)
    end = `close ${code} ${reason.toString('utf8')} | reply ${code === 1005 ? '' : Buffer.from([code >> 8, code & 255]).toString('hex')}`;
  });
  receiver.on('error', (error: Error & Record<symbol, unknown>) => {
    const status = Object.getOwnPropertySymbols(error).map((s) => error[s]).find((v) => typeof v === 'number');
    end = `error ${status}`;
  });
  for (const c of chunks) {
    if (end !== 'open') break;
    await new Promise<void>((resolve) => receiver.write(c, () => resolve()));
  }
  return { events, end };
}

interface RawFrame {
  fin?: boolean;
  rsv?: number;
  opcode: number;
  payload: Uint8Array;
  /** 7, 16 or 64: how the length is written (a longer form than needed is allowed by both). */
  lengthForm?: 7 | 16 | 64 | undefined;
  masked?: boolean;
  /** The length written in the header, when not the payload's (the payload is then not sent). */
  claimed?: number;
}

function encode(f: RawFrame): Buffer {
  const fin = f.fin ?? true;
  const len = f.claimed ?? f.payload.length;
  const form = f.lengthForm ?? (len < 126 ? 7 : len < 0x10000 ? 16 : 64);
  const parts: Buffer[] = [];
  const b0 = (fin ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | f.opcode;
  const m = f.masked ? 0x80 : 0;
  if (form === 7) parts.push(Buffer.from([b0, m | len]));
  else if (form === 16) parts.push(Buffer.from([b0, m | 126, len >> 8, len & 255]));
  else {
    const h = Buffer.alloc(10);
    h[0] = b0;
    h[1] = m | 127;
    h.writeUInt32BE(Math.floor(len / 0x100000000), 2);
    h.writeUInt32BE(len >>> 0, 6);
    parts.push(h);
  }
  if (f.claimed !== undefined) return Buffer.concat(parts);
  if (f.masked) {
    const key = Buffer.from([1, 2, 3, 4]);
    parts.push(key, Buffer.from(f.payload.map((b, i) => b ^ key[i % 4]!)));
  } else parts.push(Buffer.from(f.payload));
  return Buffer.concat(parts);
}

const BAD_UTF8 = [0xc3, 0x28];

function bytes(rand: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

function length(rand: () => number): number {
  return pick(rand, [0, 1, 2, 7, 125, 126, 127, 300, 999, 1000, 1001, 70_000] as const);
}

function form(rand: () => number, len: number): 7 | 16 | 64 | undefined {
  const r = rand();
  if (r < 0.8) return undefined;
  if (r < 0.9 && len < 0x10000) return 16;
  return 64;
}

function control(rand: () => number): RawFrame {
  const opcode = pick(rand, [0x9, 0x9, 0xa] as const);
  const n = rand() < 0.95 ? Math.floor(rand() * 126) : 126;
  return { opcode, payload: bytes(rand, n), lengthForm: n < 126 && rand() < 0.1 ? 16 : undefined };
}

function closeFrame(rand: () => number): RawFrame {
  const r = rand();
  if (r < 0.15) return { opcode: 0x8, payload: new Uint8Array(0) };
  if (r < 0.2) return { opcode: 0x8, payload: Uint8Array.of(3) };
  const code = pick(rand, [1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1014, 1015, 999, 0, 2999, 3000, 4000, 4001, 4999, 5000, 65535] as const);
  const reason = rand() < 0.2 ? Buffer.from(BAD_UTF8) : rand() < 0.5 ? Buffer.from('bye ☃', 'utf8') : Buffer.alloc(0);
  return { opcode: 0x8, payload: Buffer.concat([Buffer.from([code >> 8, code & 255]), reason]) };
}

/** One random stream of frames. */
function stream(rand: () => number): Buffer {
  const frames: RawFrame[] = [];
  const steps = 1 + Math.floor(rand() * 10);
  for (let i = 0; i < steps; i++) {
    const r = rand();
    if (r < 0.3) {
      const n = length(rand);
      frames.push({ opcode: 0x2, payload: bytes(rand, n), lengthForm: form(rand, n) });
    } else if (r < 0.5) {
      // A fragmented message (binary or text), control frames between its fragments.
      const text = rand() < 0.3;
      const parts = 1 + Math.floor(rand() * 4);
      for (let p = 0; p <= parts; p++) {
        const n = pick(rand, [0, 1, 3, 125, 400] as const);
        const payload = text ? (rand() < 0.15 ? Uint8Array.from(BAD_UTF8) : Buffer.from('é'.repeat(n >> 1), 'utf8')) : bytes(rand, n);
        frames.push({ opcode: p === 0 ? (text ? 0x1 : 0x2) : 0x0, fin: p === parts, payload, lengthForm: form(rand, payload.length) });
        if (rand() < 0.3) frames.push(control(rand));
      }
    } else if (r < 0.6) {
      frames.push({ opcode: 0x1, payload: rand() < 0.3 ? Uint8Array.from(BAD_UTF8) : Buffer.from('hello ☃', 'utf8') });
    } else if (r < 0.75) {
      frames.push(control(rand));
    } else if (r < 0.8) {
      frames.push(closeFrame(rand));
    } else {
      // Something a reader must refuse (or must not refuse).
      const bad = Math.floor(rand() * 9);
      const p = bytes(rand, 1 + Math.floor(rand() * 20));
      if (bad === 0) frames.push({ opcode: 0x2, rsv: 1 + Math.floor(rand() * 7), payload: p });
      else if (bad === 1) frames.push({ opcode: 0x2, masked: true, payload: p });
      else if (bad === 2) frames.push({ opcode: pick(rand, [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] as const), payload: p });
      else if (bad === 3) frames.push({ opcode: pick(rand, [0x8, 0x9, 0xa] as const), fin: false, payload: p });
      else if (bad === 4) frames.push({ opcode: 0x0, payload: p, fin: rand() < 0.5 });
      else if (bad === 5) frames.push({ opcode: pick(rand, [0x2, 0x0, 0x9, 0x8] as const), payload: p, claimed: pick(rand, [MAX_PAYLOAD + 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 63] as const), lengthForm: 64 });
      else if (bad === 6) frames.push({ opcode: 0x2, payload: p, claimed: 0x10000 + MAX_PAYLOAD, lengthForm: 64 });
      else if (bad === 7) frames.push({ opcode: pick(rand, [0x8, 0x9] as const), payload: bytes(rand, 130) });
      else frames.push({ opcode: 0x2, payload: p, lengthForm: 64 });
    }
  }
  return Buffer.concat(frames.map(encode));
}

function splits(rand: () => number, data: Buffer): Buffer[][] {
  const whole = [data];
  const bytewise = Array.from({ length: data.length }, (_, i) => data.subarray(i, i + 1));
  const random: Buffer[] = [];
  for (let off = 0; off < data.length; ) {
    const n = 1 + Math.floor(rand() ** 3 * Math.min(data.length, 2000));
    random.push(Buffer.from(data.subarray(off, off + n)));
    off += n;
  }
  return data.length > 5000 ? [whole, random] : [whole, bytewise, random];
}

async function compare(data: Buffer, chunkings: Buffer[][]): Promise<void> {
  const reference = await runWs([data]);
  for (const chunks of chunkings) {
    const mine = runNet(chunks);
    const theirs = chunks.length === 1 ? reference : await runWs(chunks);
    expect(theirs).toEqual(reference);
    if (JSON.stringify(mine) !== JSON.stringify(theirs)) {
      expect({ stream: data.toString('hex').slice(0, 400), chunks: chunks.length, net: mine }).toEqual({ stream: data.toString('hex').slice(0, 400), chunks: chunks.length, net: theirs });
    }
  }
}

describe("the net link's frame reader against ws's Receiver", () => {
  it('agrees on hand-picked streams', async () => {
    const cases: RawFrame[][] = [
      [{ opcode: 0x2, payload: Uint8Array.of(1, 2, 3) }],
      [{ opcode: 0x2, fin: false, payload: Uint8Array.of(1) }, { opcode: 0x9, payload: Uint8Array.of(9) }, { opcode: 0x0, payload: Uint8Array.of(2) }],
      [{ opcode: 0x1, payload: Uint8Array.from(BAD_UTF8) }, { opcode: 0x2, payload: Uint8Array.of(1) }],
      [{ opcode: 0x8, payload: Uint8Array.of(0x03, 0xe8, ...BAD_UTF8) }],
      [{ opcode: 0x8, payload: Uint8Array.of(0x03, 0xee) }],
      [{ opcode: 0x8, payload: Uint8Array.of(0x13, 0x88) }],
      [{ opcode: 0x8, payload: Uint8Array.of(0x0f, 0xa1, 0x68, 0x69) }],
      [{ opcode: 0x8, payload: Uint8Array.of(7) }],
      [{ opcode: 0x9, payload: new Uint8Array(0), claimed: 2 ** 60, lengthForm: 64 }],
      [{ opcode: 0x0, payload: new Uint8Array(0), claimed: 2 ** 60, lengthForm: 64 }],
      [{ opcode: 0x2, fin: false, payload: new Uint8Array(600) }, { opcode: 0x0, payload: new Uint8Array(401) }],
      [{ opcode: 0x2, fin: false, payload: new Uint8Array(600) }, { opcode: 0x0, payload: new Uint8Array(400) }],
    ];
    for (const frames of cases) {
      const data = Buffer.concat(frames.map(encode));
      await compare(data, splits(random(1), data));
    }
  });

  it('agrees on 3,000 random streams, whole, byte by byte and in random chunks', async () => {
    const seed = Number(process.env.RHIZOME_FUZZ_SEED ?? 20261201);
    const rand = random(seed);
    for (let i = 0; i < 3000; i++) {
      const data = stream(rand);
      await compare(data, splits(rand, data));
    }
  }, 120_000);
});

describe('the net link ends a socket the relay does not end (as ws: after CLOSE_TIMEOUT_MS)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    ["the relay's close frame, answered, and no FIN after it", Buffer.from([0x88, 0x02, 0x0f, 0xb5]), 4021],
    ['a FIN without a close frame, and the socket never closing', null, 1006],
  ])('%s', (_name, bytes, code) => {
    vi.useFakeTimers();
    const events: string[] = [];
    const socket = new FakeSocket(events);
    const link = new NetLink('ws://test', socket as never, MAX_PAYLOAD, null);
    let reported: number | undefined;
    link.handler = { onLinkFrame() {}, onLinkClose: (_l, c) => (reported = c) };
    link.start();
    if (bytes !== null) link.receive(bytes);
    else link.ended();
    expect(socket.ended).toBe(true);
    vi.advanceTimersByTime(CLOSE_TIMEOUT_MS - 1);
    expect(socket.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(socket.destroyed).toBe(true);
    link.closed();
    expect(reported).toBe(code);
  });
});
