// RelayWebSocket's own receive path against ws's: the same bytes, cut into the same reads, must give
// the same events (messages, pings, pongs, errors with their codes, close) and the same bytes back.
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { prng } from '../../test/prng.js';
import { RelayWebSocket } from './relay-websocket.js';

/** A socket whose reads the test makes (one push = one 'data' chunk) and whose writes it keeps. */
class FakeSocket extends Duplex {
  readonly written: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.written.push(Buffer.from(chunk));
    cb();
  }
}

type Factory = (address: null, protocols: undefined, options: object) => WebSocket;

/** Feeds `chunks` to a server-side socket of class `Ws` and returns what it did, in order. */
async function run(Ws: Factory, chunks: Buffer[], maxPayload: number, server = true): Promise<string[]> {
  const socket = new FakeSocket();
  const ws = Ws(null, undefined, { autoPong: true, closeTimeout: 30_000 });
  // A client's socket (RelayWebSocket is exported, and can be made with a URL): ws's own check applies.
  if (!server) (ws as unknown as { _isServer: boolean })._isServer = false;
  const log: string[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => log.push(`message ${isBinary ? 'b' : 't'} ${Buffer.from(data).toString('hex')}`));
  ws.on('ping', (data: Buffer) => log.push(`ping ${data.toString('hex')}`));
  ws.on('pong', (data: Buffer) => log.push(`pong ${data.toString('hex')}`));
  ws.on('error', (error: Error & { code?: string }) => log.push(`error ${error.code ?? error.message}`));
  ws.on('close', (code: number, reason: Buffer) => log.push(`close ${code} ${reason.toString('hex')}`));
  (ws as unknown as { setSocket(s: Duplex, head: Buffer, o: object): void }).setSocket(socket, Buffer.alloc(0), { allowSynchronousEvents: true, maxPayload, skipUTF8Validation: false });
  await new Promise((resolve) => setImmediate(resolve));
  for (const chunk of chunks) {
    if (socket.destroyed) break;
    socket.push(Buffer.from(chunk)); // a copy: the parsers unmask in place
    log.push(`written ${Buffer.concat(socket.written.splice(0)).toString('hex')}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  log.push(`written ${Buffer.concat(socket.written.splice(0)).toString('hex')}`);
  // After a close frame or a protocol error ws drops the rest of the stream (its 'data' listener
  // gone, the socket flowing): nothing paused, nothing kept, the client's FIN seen at once.
  log.push(`state ${ws.readyState} flowing ${socket.readableFlowing} buffered ${socket.readableLength}`);
  socket.destroy();
  await new Promise((resolve) => setImmediate(resolve));
  // A client masks what it sends with random keys: its bytes are compared by length only.
  return log.filter((line) => line !== 'written ').map((line) => (!server && line.startsWith('written ') ? `written ${(line.length - 8) / 2} B` : line));
}

const plain: Factory = (a, p, o) => new WebSocket(a as never, p, o as never);
const relay: Factory = (a, p, o) => new RelayWebSocket(a as never, p as never, o as never) as unknown as WebSocket;

/** A client frame (masked unless told), with a length of the given form. */
function frame(random: () => number, maxPayload: number): Buffer {
  const r = random();
  const pickLen = (): number => {
    const q = random();
    if (q < 0.3) return Math.floor(random() * 126);
    if (q < 0.5) return [0, 1, 125, 126, 127, 65535][Math.floor(random() * 6)]!;
    if (q < 0.7 && maxPayload > 0) return maxPayload + Math.floor(random() * 3) - 1;
    return Math.floor(random() * 1000);
  };
  let opcode = 0x2;
  let fin = true;
  let rsv = 0;
  let masked = true;
  let n = pickLen();
  if (r < 0.55) opcode = 0x2;
  else if (r < 0.62) opcode = 0x1;
  else if (r < 0.68) [opcode, fin] = [random() < 0.5 ? 0x2 : 0x1, false];
  else if (r < 0.74) [opcode, fin] = [0x0, random() < 0.5];
  else if (r < 0.8) [opcode, n] = [0x9, Math.floor(random() * 130)];
  else if (r < 0.83) [opcode, n] = [0xa, Math.floor(random() * 10)];
  else if (r < 0.85) [opcode, n] = [0x8, [0, 1, 2, 5][Math.floor(random() * 4)]!];
  else if (r < 0.88) rsv = [0x40, 0x20, 0x10][Math.floor(random() * 3)]!;
  else if (r < 0.91) masked = false;
  else if (r < 0.93) opcode = [0x3, 0x7, 0xb, 0xf][Math.floor(random() * 4)]!;
  else if (r < 0.95) [opcode, fin, n] = [0x9, false, 2];
  const payload = Buffer.from(Uint8Array.from({ length: n }, () => Math.floor(random() * 256)));
  if (opcode === 0x1 && random() < 0.7) payload.fill(0x61); // mostly valid UTF-8
  if (opcode === 0x8 && n >= 2) payload.writeUInt16BE([1000, 1001, 1005, 1006, 3000, 999, 4999][Math.floor(random() * 7)]!, 0);
  const form = random();
  let head: number[];
  if (n < 126 && form < 0.85) head = [n];
  else if (n < 65536 && form < 0.95) head = [126, n >>> 8, n & 0xff];
  else head = [127, 0, 0, 0, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  head[0]! |= masked ? 0x80 : 0;
  const mask = masked ? [0, 1, 2, 3].map(() => Math.floor(random() * 256)) : [];
  const body = Buffer.from(payload.map((b, i) => (masked ? b ^ mask[i & 3]! : b)));
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, ...head, ...mask]), body]);
}

/** The stream cut into reads: at random places, or at every byte, or whole. */
function cut(random: () => number, bytes: Buffer): Buffer[] {
  const how = random();
  const out: Buffer[] = [];
  if (how < 0.15 && bytes.length <= 1500) {
    for (let i = 0; i < bytes.length; i++) out.push(bytes.subarray(i, i + 1));
    return out;
  }
  if (how < 0.3) return [bytes];
  let at = 0;
  while (at < bytes.length) {
    const n = 1 + Math.floor(random() * (random() < 0.5 ? 12 : 400));
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe('RelayWebSocket receive path = ws Receiver (differential, seeded)', () => {
  it('random frame streams cut at random reads: same messages, pings, pongs, errors, close, bytes sent back, and the rest dropped after a close or an error (every 8th stream as a client socket)', async () => {
    for (let seed = 1; seed <= 200; seed++) {
      const random = prng(seed);
      const maxPayload = [0, 100, 300, 65536, 70_000][Math.floor(random() * 5)]!;
      const frames: Buffer[] = [];
      const count = 1 + Math.floor(random() * 12);
      for (let i = 0; i < count; i++) frames.push(frame(random, maxPayload));
      if (random() < 0.3) {
        // A client's close, then more frames (in later reads, most likely).
        frames.push(Buffer.from([0x88, 0x82, 1, 2, 3, 4, (1000 >> 8) ^ 1, (1000 & 0xff) ^ 2]));
        for (let i = 0; i < 3; i++) frames.push(frame(random, maxPayload));
      }
      if (random() < 0.1) frames.push(Buffer.from(Uint8Array.from({ length: 1 + Math.floor(random() * 20) }, () => Math.floor(random() * 256))));
      const chunks = cut(random, Buffer.concat(frames));
      const server = seed % 8 !== 0;
      const expected = await run(plain, chunks, maxPayload, server);
      const actual = await run(relay, chunks, maxPayload, server);
      expect(actual, `seed ${seed}`).toEqual(expected);
    }
  }, 120_000);
});
