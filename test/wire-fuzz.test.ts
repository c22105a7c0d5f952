// Property-based fuzzing (fast-check) of the decoders that read bytes from the network (issue 10):
// the relay server's frame parser (a real RelayCore fed through an in-memory socket), the relay
// client's frame guards and decoders, the sync wire (sealed frames, chunk reassembly, messages)
// and the DHT stream framing and handshake. Every input must end in a typed error, a clean
// close with a known code, or normal handling — never an uncaught throw, a hang, or memory
// beyond the stated bound. Case counts are printed (RELIABILITY.md records them).
import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deriveTopic, type RhizomeError } from '@rhizome/core';
import { RelayCore } from '@rhizome/relay';
import {
  CloseCode,
  FrameType,
  closeCodeName,
  decodeLimits,
  decodePeers,
  encodeHello,
  isDataFrame,
  isErrorFrame,
  isJoinedFrame,
  isLimitsFrame,
  isPairFrame,
  isPeerJoinedFrame,
  isPeersFrame,
  isPingFrame,
  isWelcomeFrame,
  isWindowFrame,
  utf8,
} from '@rhizome/transport-relay/protocol';
import { ByteQueue, decodeHello } from '../packages/transport-dht/src/wire.js';
import { FrameSealer } from '../packages/sync/src/seal.js';
import { Reassembler, decodeMessage, toFrames } from '../packages/sync/src/wire.js';

const RUNS = 2000;
const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: 0, maxLength: max });

/** A relay socket in memory: what the core sends and how it closes are recorded. */
class MemorySocket extends EventEmitter {
  bufferedAmount = 0;
  sent: Uint8Array[] = [];
  closedWith: number | null = null;
  terminated = false;
  send(data: Uint8Array): void {
    this.sent.push(data);
  }
  close(code?: number): void {
    this.closedWith ??= code ?? 1000;
    this.emit('close');
  }
  terminate(): void {
    this.terminated = true;
    this.emit('close');
  }
  ping(): void {}
}

describe('fuzzing the network decoders', () => {
  it('relay server parser: any sequence of frames ends in normal handling or a close with a known code', async () => {
    const core = new RelayCore({ heartbeatIntervalMs: 0 });
    let cases = 0;
    const typeByte = fc.constantFrom(...Object.values(FrameType), 0x00, 0x7f, 0xff);
    const frame = fc.oneof(bytes(80), fc.tuple(typeByte, bytes(60)).map(([t, rest]) => Uint8Array.from([t, ...rest])));
    fc.assert(
      fc.property(fc.boolean(), fc.array(frame, { maxLength: 12 }), (hello, frames) => {
        cases++;
        const socket = new MemorySocket();
        core.attach(socket as never, { ip: `10.0.${cases % 250}.${cases % 7}` });
        if (hello) socket.emit('message', Buffer.from(encodeHello(utf8(`fuzz-${cases}`), null, new Uint8Array(16).fill(cases & 0xff))), true);
        for (const f of frames) {
          if (socket.closedWith !== null || socket.terminated) break;
          socket.emit('message', Buffer.from(f), true);
        }
        if (socket.closedWith !== null) expect(closeCodeName(socket.closedWith), `close code ${socket.closedWith}`).toBeDefined();
        socket.emit('close');
      }),
      { numRuns: RUNS },
    );
    expect(core.connections).toBe(0);
    await core.close();
    console.log(`relay server parser: ${cases} cases`);
  });

  it('relay client guards and decoders: a frame that passes its guard decodes without throwing', () => {
    let cases = 0;
    const guards: Array<[number, (b: Uint8Array) => boolean, ((b: Uint8Array) => unknown) | null]> = [
      [FrameType.WELCOME, isWelcomeFrame, null],
      [FrameType.JOINED, isJoinedFrame, null],
      [FrameType.PEER_JOINED, isPeerJoinedFrame, null],
      [FrameType.PEER_LEFT, isPairFrame, null],
      [FrameType.DELIVER, isDataFrame, null],
      [FrameType.PEERS, isPeersFrame, decodePeers],
      [FrameType.PONG, isPingFrame, null],
      [FrameType.LIMITS, isLimitsFrame, decodeLimits],
      [FrameType.WINDOW_UPDATE, isWindowFrame, null],
      [FrameType.ERROR, isErrorFrame, null],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...guards), bytes(300), ([type, guard, decode], rest) => {
        cases++;
        const f = Uint8Array.from([type, ...rest]);
        if (guard(f) && decode) decode(f);
      }),
      { numRuns: RUNS * 5 },
    );
    console.log(`relay client guards/decoders: ${cases} cases`);
  });

  it('sync wire: sealed frames either open or fail with ERR_DECRYPT; reassembly and messages fail only with typed errors, within the size bound', () => {
    const sealer = new FrameSealer(utf8('fuzz id'), deriveTopic('fuzz id'));
    const max = 64 * 1024;
    let sealed = 0;
    let plain = 0;
    fc.assert(
      fc.property(bytes(200), (b) => {
        sealed++;
        try {
          sealer.open(b);
        } catch (error) {
          expect((error as RhizomeError).code).toBe('ERR_DECRYPT');
        }
      }),
      { numRuns: RUNS },
    );
    // Frames that open (sealed by a key holder): random plaintexts, valid chunk streams with
    // corrupted headers, and random messages.
    const chunkStream = fc.tuple(bytes(3000), fc.integer({ min: 30, max: 400 }), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 })).map(([msg, room, flips]) => {
      const frames = toFrames(msg, room);
      for (const [at, v] of flips) {
        const f = frames[at % frames.length]!;
        if (f.length > 0) f[at % Math.min(f.length, 21)] = v;
      }
      return frames;
    });
    fc.assert(
      fc.property(fc.oneof(fc.array(bytes(100), { maxLength: 8 }), chunkStream), (frames) => {
        plain++;
        const r = new Reassembler(max);
        for (const f of frames) {
          try {
            const out = sealer.open(sealer.seal(f));
            const result = r.push(out);
            expect(r.bufferedBytes).toBeLessThanOrEqual(max);
            if (result.kind === 'message') {
              try {
                decodeMessage(result.message);
              } catch (error) {
                expect((error as RhizomeError).code).toBe('ERR_PROTOCOL');
              }
            }
          } catch (error) {
            expect(['ERR_PROTOCOL', 'ERR_FRAME_TOO_LARGE']).toContain((error as RhizomeError).code);
          }
        }
      }),
      { numRuns: RUNS },
    );
    console.log(`sync wire: ${sealed} sealed-frame cases, ${plain} reassembly/message cases`);
  });

  it('DHT stream: HELLO and length-prefixed frames in any chunking end in a frame, a wait, or a typed error, never buffering past the limit', () => {
    const limit = 4096;
    let cases = 0;
    fc.assert(
      fc.property(fc.array(bytes(600), { maxLength: 10 }), bytes(40), (chunks, hello) => {
        cases++;
        try {
          decodeHello(hello);
        } catch (error) {
          expect((error as RhizomeError).code).toBe('ERR_PROTOCOL');
        }
        const q = new ByteQueue();
        for (const c of chunks) {
          q.push(c);
          try {
            for (let f = q.readFrame(limit); f !== null; f = q.readFrame(limit)) expect(f.length).toBeLessThanOrEqual(limit);
          } catch (error) {
            expect((error as RhizomeError).code).toBe('ERR_FRAME_TOO_LARGE');
            return;
          }
        }
      }),
      { numRuns: RUNS },
    );
    console.log(`DHT stream framing and HELLO: ${cases} cases`);
    expect(CloseCode.MALFORMED_FRAME).toBe(4000);
  });
});
