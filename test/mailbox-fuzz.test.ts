// Property-based fuzzing (fast-check, fixed seed) of the mailbox decoders (issue 10: every decoder
// that reads bytes from the network or disk; the mailbox came after the issue was filed): the
// mailbox frames both ways (MB_READ, MB_PUT, MB_WRITE from clients; MB_DATA, MB_RESULT, MB_OFFER
// from relays), the read reply stream a client reassembles from MB_DATA pieces (also what a relay
// reads back from its store), and the 117-byte record header. A frame its guard accepts decodes
// without throwing; the stream and header decoders return a value or null, never throw, and never
// describe more bytes than they were given. The live relay with a mailbox is fuzzed in
// test/relay-live-fuzz.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAILBOX_HEADER_BYTES, decodeMailboxHeader } from '@rhizome/core';
import {
  MailboxFrameType,
  decodeMailboxOffer,
  decodeMailboxPut,
  decodeMailboxRead,
  decodeMailboxReadStream,
  decodeMailboxResult,
  decodeMailboxWrite,
  encodeMailboxReadStream,
  isMailboxDataFrame,
  isMailboxOfferFrame,
  isMailboxPutFrame,
  isMailboxReadFrame,
  isMailboxResultFrame,
  isMailboxWriteFrame,
} from '@rhizome/transport-relay/protocol';

const SEED = 0x3a11b0;
const RUNS = 3000;
const bytes = (min: number, max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: min, maxLength: max });

describe('fuzzing the mailbox decoders', () => {
  it('mailbox frames both ways: a frame its guard accepts decodes without throwing', () => {
    let cases = 0;
    let accepted = 0;
    const pairs: Array<[number, (b: Uint8Array) => boolean, ((b: Uint8Array) => unknown) | null]> = [
      [MailboxFrameType.MB_READ, isMailboxReadFrame, decodeMailboxRead],
      [MailboxFrameType.MB_PUT, isMailboxPutFrame, decodeMailboxPut],
      [MailboxFrameType.MB_WRITE, isMailboxWriteFrame, decodeMailboxWrite],
      [MailboxFrameType.MB_DATA, isMailboxDataFrame, null],
      [MailboxFrameType.MB_RESULT, isMailboxResultFrame, decodeMailboxResult],
      [MailboxFrameType.MB_OFFER, isMailboxOfferFrame, decodeMailboxOffer],
    ];
    // Lengths near each frame's fixed sizes (26, 45, 154) as well as random ones.
    const body = fc.oneof(bytes(0, 300), fc.integer({ min: 20, max: 160 }).chain((n) => bytes(n, n)));
    fc.assert(
      fc.property(fc.constantFrom(...pairs), body, ([type, guard, decode], rest) => {
        cases++;
        const frame = Uint8Array.from([type, ...rest]);
        if (!guard(frame)) return;
        accepted++;
        if (decode) decode(frame);
      }),
      { numRuns: RUNS * 2, seed: SEED },
    );
    console.log(`mailbox frames: ${cases} cases, ${accepted} accepted by their guard and decoded`);
    expect(accepted).toBeGreaterThan(100);
  });

  it('read reply streams and record headers: a value or null, never a throw, never more than the input', () => {
    let cases = 0;
    let decoded = 0;
    const record = fc.tuple(bytes(MAILBOX_HEADER_BYTES, MAILBOX_HEADER_BYTES), bytes(0, 200)).map(([header, payload]) => {
      const h = Uint8Array.from(header);
      new DataView(h.buffer).setUint32(17, payload.length);
      return { header: h, payload };
    });
    // Valid streams, then damaged: bytes flipped, cut short, or extended.
    const valid = fc
      .tuple(fc.option(bytes(MAILBOX_HEADER_BYTES, MAILBOX_HEADER_BYTES)), fc.array(record, { maxLength: 4 }), fc.nat(2 ** 40), fc.nat())
      .map(([head, records, usedBytes, usedEntries]) => encodeMailboxReadStream({ status: 0, usedBytes, usedEntries, head, records }));
    const damaged = fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.integer({ min: -40, max: 40 })).map(([b, flips, cut]) => {
      const out = Uint8Array.from(cut >= 0 ? [...b, ...new Uint8Array(cut % 3 === 0 ? 0 : cut)] : b.subarray(0, Math.max(0, b.length + cut)));
      for (const [at, v] of flips) if (out.length > 0) out[at % out.length] = v;
      return out;
    });
    fc.assert(
      fc.property(fc.oneof(bytes(0, 400), valid, damaged), (b) => {
        cases++;
        const reply = decodeMailboxReadStream(b);
        if (reply !== null) {
          decoded++;
          let described = 1 + (reply.status === 0 ? 8 + 4 + 1 + 4 : 0) + (reply.head ? MAILBOX_HEADER_BYTES : 0);
          for (const r of reply.records) {
            expect(r.header.length).toBe(MAILBOX_HEADER_BYTES);
            described += r.header.length + r.payload.length;
            const h = decodeMailboxHeader(r.header);
            if (h !== null) expect(h.length).toBe(r.payload.length);
          }
          expect(described).toBe(b.length);
        }
        const header = decodeMailboxHeader(b.subarray(0, MAILBOX_HEADER_BYTES));
        if (header !== null) expect(header.signature.length).toBe(64);
      }),
      { numRuns: RUNS, seed: SEED + 1 },
    );
    console.log(`mailbox read streams and headers: ${cases} cases, ${decoded} decoded`);
    expect(decoded).toBeGreaterThan(100);
  });
});
