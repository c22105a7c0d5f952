import type { JsonValue } from '@rhizome/core';
import { usageError, type CliError } from './errors.js';

/** Where in a text a JSON error is: 0-based offset, 1-based line and column. */
export interface TextPosition {
  offset: number;
  line: number;
  column: number;
}

/**
 * Finds the offset of the first syntax error in `text` with a small JSON scanner (V8's
 * messages do not always carry a position). Returns `undefined` when the text is valid JSON.
 */
export function findJsonError(text: string): { offset: number; expected: string } | undefined {
  let i = 0;
  class Stop {
    constructor(readonly offset: number, readonly expected: string) {}
  }
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const fail = (expected: string): never => {
    throw new Stop(i, expected);
  };
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else fail(`a JSON value (a string in "double quotes", a number, true, false, null, an object or an array)`);
  };
  const string = (): void => {
    if (text[i] !== '"') fail('a string in "double quotes"');
    i++;
    for (;;) {
      if (i >= text.length) fail('a closing "');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail('no control character inside a string (escape it, e.g. \\n)');
      if (c === 0x5c) {
        i++;
        const e = text[i];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('four hex digits after \\u');
          i += 5;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i++;
        else fail('a valid escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)');
      } else i++;
    }
  };
  const number = (): void => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!m || m[0] === '' || m[0] === '-') fail('a number');
    i += (m as RegExpExecArray)[0].length;
  };
  const value = (depth: number): void => {
    if (depth > 512) fail('less nesting');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ':') fail("':' after the property name");
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail("',' or '}'");
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail("',' or ']'");
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) number();
    else fail('a JSON value (a string in "double quotes", a number, true, false, null, an object or an array)');
  };
  try {
    value(0);
    ws();
    if (i < text.length) fail('the end of the text');
    return undefined;
  } catch (error) {
    if (error instanceof Stop) return { offset: error.offset, expected: error.expected };
    throw error;
  }
}

/** Line and column (1-based) of `offset` in `text`. */
export function positionOf(text: string, offset: number): TextPosition {
  let line = 1;
  let lineStart = 0;
  for (let k = 0; k < offset && k < text.length; k++) {
    if (text[k] === '\n') {
      line++;
      lineStart = k + 1;
    }
  }
  return { offset, line, column: offset - lineStart + 1 };
}

/** The line of `text` holding `offset`, with a caret under it (long lines are cut around it). */
function excerpt(text: string, offset: number): string {
  const start = text.lastIndexOf('\n', offset - 1) + 1;
  let end = text.indexOf('\n', offset);
  if (end === -1) end = text.length;
  let from = start;
  let to = end;
  if (offset - from > 40) from = offset - 40;
  if (to - offset > 40) to = offset + 40;
  const line = text.slice(from, to);
  return `  ${line}\n  ${' '.repeat(offset - from)}^`;
}

/**
 * Parses the JSON a user typed for a node's data: it must be an object of JSON values. A syntax
 * error is a usage error (exit 2) that shows where: line, column and the text with a caret.
 */
export function parseNodeData(text: string, source: string): Record<string, JsonValue> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    const found = findJsonError(text);
    const offset = found?.offset ?? 0;
    const { line, column } = positionOf(text, offset);
    const got = offset >= text.length ? 'the end of the text' : JSON.stringify(text[offset]);
    const err: CliError = usageError(
      `invalid JSON in ${source} at line ${line}, column ${column} (offset ${offset}): expected ${found?.expected ?? 'valid JSON'}, found ${got}\n${excerpt(text, offset)}`,
      `Quote the JSON for your shell, e.g. '{"title": "Hello", "done": false}'.`,
    );
    (err as { cause?: unknown }).cause = cause;
    throw err;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw usageError(
      `${source} must be a JSON object of fields, got ${parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed}`,
      `Give the node's fields as an object, e.g. '{"title": "Hello"}'.`,
    );
  }
  return parsed as Record<string, JsonValue>;
}
