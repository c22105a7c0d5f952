import { describe, expect, it } from 'vitest';
import { MAILBOX_HEADER_BYTES, MailboxOp, MailboxStatus, checkMailboxSequence, decodeMailboxHeader, encodeMailboxUnsigned } from '@rhizome/core';
import {
  MailboxFrameType,
  decodeMailboxOffer,
  decodeMailboxPut,
  decodeMailboxRead,
  decodeMailboxReadStream,
  decodeMailboxResult,
  decodeMailboxWrite,
  encodeMailboxData,
  encodeMailboxOffer,
  encodeMailboxPut,
  encodeMailboxRead,
  encodeMailboxReadStream,
  encodeMailboxResult,
  encodeMailboxWrite,
  isMailboxDataFrame,
  isMailboxOfferFrame,
  isMailboxPutFrame,
  isMailboxReadFrame,
  isMailboxResultFrame,
  isMailboxWriteFrame,
} from './protocol.js';

const key = new Uint8Array(32).fill(7);
const header = (counter: number, length = 3): Uint8Array => {
  const h = new Uint8Array(MAILBOX_HEADER_BYTES);
  h.set(encodeMailboxUnsigned(MailboxOp.DEPOSIT, counter, counter - 1, new Uint8Array(length)), 0);
  return h;
};

describe('mailbox frames', () => {
  it('round-trip with the documented sizes, and the guards refuse wrong lengths', () => {
    const read = encodeMailboxRead(9, key, 2 ** 40 + 5);
    expect(read.length).toBe(45);
    expect(isMailboxReadFrame(read)).toBe(true);
    expect(isMailboxReadFrame(read.subarray(0, 44))).toBe(false);
    expect(decodeMailboxRead(read)).toEqual({ requestId: 9, mailbox: key, after: 2 ** 40 + 5 });

    const put = encodeMailboxPut(3, 1000, new Uint8Array([1, 2]));
    expect(isMailboxPutFrame(put)).toBe(true);
    expect(isMailboxPutFrame(put.subarray(0, 9))).toBe(false);
    expect(decodeMailboxPut(put)).toEqual({ requestId: 3, offset: 1000, piece: new Uint8Array([1, 2]) });

    const h = header(5);
    const write = encodeMailboxWrite(4, key, h, new Uint8Array([9, 9, 9]));
    expect(write.length).toBe(154 + 3);
    expect(isMailboxWriteFrame(write)).toBe(true);
    expect(isMailboxWriteFrame(write.subarray(0, 153))).toBe(false);
    const w = decodeMailboxWrite(write);
    expect([w.requestId, w.mailbox, w.header, w.tail]).toEqual([4, key, h, new Uint8Array([9, 9, 9])]);

    const result = encodeMailboxResult(4, MailboxStatus.STALE, 77, 123456, 3);
    expect(result.length).toBe(26);
    expect(isMailboxResultFrame(result)).toBe(true);
    expect(decodeMailboxResult(result)).toEqual({ requestId: 4, status: MailboxStatus.STALE, head: 77, usedBytes: 123456, usedEntries: 3 });

    const offer = { maxMailboxBytes: 2 ** 33, maxEntries: 10, maxEntryBytes: 1 << 20, ttlSeconds: 3600, writesPerMinute: 60 };
    const o = encodeMailboxOffer(offer);
    expect(o.length).toBe(26);
    expect(o[0]).toBe(MailboxFrameType.MB_OFFER);
    expect(isMailboxOfferFrame(o)).toBe(true);
    expect(decodeMailboxOffer(o)).toEqual(offer);
    o[1] = 2;
    expect(decodeMailboxOffer(o)).toBeNull(); // another version: no mailbox for this client

    const data = encodeMailboxData(8, true, new Uint8Array([1]));
    expect(isMailboxDataFrame(data)).toBe(true);
    data[5] = 2;
    expect(isMailboxDataFrame(data)).toBe(false);
  });

  it('the read stream parses back, and a stream whose lengths do not add up is refused', () => {
    const records = [
      { header: header(4, 3), payload: new Uint8Array([1, 2, 3]) },
      { header: header(5, 0), payload: new Uint8Array(0) },
    ];
    const stream = encodeMailboxReadStream({ status: 0, usedBytes: 500, usedEntries: 2, head: records[1]!.header, records });
    const back = decodeMailboxReadStream(stream)!;
    expect(back.records.map((r) => r.payload)).toEqual(records.map((r) => r.payload));
    expect(back.head).toEqual(records[1]!.header);
    expect([back.usedBytes, back.usedEntries]).toEqual([500, 2]);
    expect(decodeMailboxReadStream(stream.subarray(0, stream.length - 1))).toBeNull();
    expect(decodeMailboxReadStream(Uint8Array.of(...stream, 0))).toBeNull();
    expect(decodeMailboxReadStream(Uint8Array.of(MailboxStatus.BUSY))).toMatchObject({ status: MailboxStatus.BUSY, records: [] });
  });

  it('sequence rules: deposits continue the head, bases replace it, nothing replays', () => {
    const h = (op: number, counter: number, prev: number, length = 1) => ({ ...decodeMailboxHeader(header(1))!, op, counter, prev, length });
    expect(checkMailboxSequence(h(MailboxOp.SNAPSHOT, 1, 0), 0, false)).toBe(MailboxStatus.OK);
    expect(checkMailboxSequence(h(MailboxOp.DEPOSIT, 1, 0), 0, false)).toBe(MailboxStatus.NO_BASE);
    expect(checkMailboxSequence(h(MailboxOp.DEPOSIT, 6, 5), 5, true)).toBe(MailboxStatus.OK);
    expect(checkMailboxSequence(h(MailboxOp.DEPOSIT, 7, 5), 5, true)).toBe(MailboxStatus.STALE);
    expect(checkMailboxSequence(h(MailboxOp.DEPOSIT, 5, 4), 5, true)).toBe(MailboxStatus.STALE); // a replay
    expect(checkMailboxSequence(h(MailboxOp.SNAPSHOT, 9, 5), 5, true)).toBe(MailboxStatus.OK); // may jump (after a rollback)
    expect(checkMailboxSequence(h(MailboxOp.SNAPSHOT, 9, 4), 5, true)).toBe(MailboxStatus.STALE); // built on an old head
    expect(checkMailboxSequence(h(MailboxOp.SNAPSHOT, 5, 5), 5, true)).toBe(MailboxStatus.STALE);
    expect(checkMailboxSequence(h(MailboxOp.TRUNCATE, 6, 5, 0), 5, true)).toBe(MailboxStatus.OK);
    expect(checkMailboxSequence(h(MailboxOp.TRUNCATE, 6, 5, 1), 5, true)).toBe(MailboxStatus.BAD_RECORD);
    expect(checkMailboxSequence(h(9, 6, 5), 5, true)).toBe(MailboxStatus.BAD_RECORD);
  });
});
