// The JSON scanner that locates syntax errors, checked against JSON.parse on many inputs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findJsonError, parseNodeData, positionOf } from './json.js';
import { CliError } from './errors.js';

describe('findJsonError', () => {
  it('accepts exactly what JSON.parse accepts (random JSON texts and mutations of them)', () => {
    fc.assert(
      fc.property(fc.json(), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', 'x', ' ', '\\', ':'), (text, at, insert) => {
        const i = at % (text.length + 1);
        for (const candidate of [text, text.slice(0, i) + insert + text.slice(i), text.slice(0, i)]) {
          let valid = true;
          try {
            JSON.parse(candidate);
          } catch {
            valid = false;
          }
          expect(findJsonError(candidate) === undefined, candidate).toBe(valid);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('points at the first offending character', () => {
    expect(findJsonError('{"a": 1, b: 2}')?.offset).toBe(9);
    expect(findJsonError('{"a": [1, 2,]}')?.offset).toBe(12);
    expect(findJsonError('{"a": 1')?.offset).toBe(7);
    expect(findJsonError('{"a": 1} x')?.offset).toBe(9);
    expect(findJsonError("{'a': 1}")?.offset).toBe(1);
  });

  it('gives 1-based lines and columns', () => {
    expect(positionOf('{\n  "a": 1,\n  x\n}', 14)).toEqual({ offset: 14, line: 3, column: 3 });
  });
});

describe('parseNodeData', () => {
  it('returns objects and refuses the rest with a usage error (exit 2)', () => {
    expect(parseNodeData('{"a":[1,{"b":null}]}', 'arg')).toEqual({ a: [1, { b: null }] });
    for (const bad of ['[1]', '"text"', '3', 'null', '{"a":', '']) {
      try {
        parseNodeData(bad, 'arg');
        expect.unreachable(bad);
      } catch (error) {
        expect(error).toBeInstanceOf(CliError);
        expect((error as CliError).exitCode).toBe(2);
      }
    }
  });
});
