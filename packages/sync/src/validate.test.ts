import { describe, expect, it } from 'vitest';
import { copyNodeData } from './validate.js';

describe('copyNodeData', () => {
  it('copies nested values and names where a bad one sits (the path is built only on error)', () => {
    const input = { a: 'x', b: [1, { c: true, d: null }], e: { f: [[-0]] } };
    const out = copyNodeData(input);
    expect(out).toEqual({ a: 'x', b: [1, { c: true, d: null }], e: { f: [[0]] } });
    expect(out.b).not.toBe(input.b);
    expect(Object.is((out.e as { f: number[][] }).f[0]![0], 0)).toBe(true);
    const bad: Array<[unknown, string]> = [
      [{ v: [1, { w: Number.NaN }] }, 'data.v[1].w: NaN is not a JSON number'],
      [{ v: { '\uD800': 1 } }, 'data.v: key is not well-formed UTF-16'],
      [{ v: ['ok', 'lone \uDC00'] }, 'data.v[1]: string is not well-formed UTF-16'],
      [{ v: [1, , 3] }, 'data.v[1]: sparse arrays are not JSON'],
      [{ v: new Map() }, 'data.v: Map is not a JSON value (plain objects only)'],
      [{ v: undefined }, 'data.v: a undefined is not a JSON value'],
      [JSON.parse('{"x": {"__proto__": 1}}'), "data.x: the key '__proto__' is not allowed"],
    ];
    for (const [data, message] of bad) {
      expect(() => copyNodeData(data)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message }));
    }
  });

  it('rejects cycles but accepts the same object twice side by side', () => {
    const shared = { n: 1 };
    expect(copyNodeData({ a: shared, b: [shared, shared] })).toEqual({ a: { n: 1 }, b: [{ n: 1 }, { n: 1 }] });
    const cyclic: Record<string, unknown> = { n: 1 };
    cyclic.self = { inner: [cyclic] };
    expect(() => copyNodeData({ v: cyclic })).toThrow(expect.objectContaining({ message: 'data.v.self.inner[0]: value contains a cycle' }));
  });
});
