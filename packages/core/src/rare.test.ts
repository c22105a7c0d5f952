import { describe, expect, it } from 'vitest';
import { rareRecordIsEmpty } from './rare.js';

describe('rareRecordIsEmpty', () => {
  it('is empty only while every property is null, undefined or false', () => {
    expect(rareRecordIsEmpty({ a: null, b: undefined, c: false })).toBe(true);
    expect(rareRecordIsEmpty({})).toBe(true);
    for (const value of [0, '', true, [], {}, () => undefined, Number.NaN]) {
      expect(rareRecordIsEmpty({ a: null, later: value })).toBe(false);
    }
  });
});
