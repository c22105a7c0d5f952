import { InvalidArgumentError } from '@rhizome/core';
import type { JsonValue } from '@rhizome/core';

/** Longest node id, in UTF-16 code units. */
export const MAX_NODE_ID_LENGTH = 1024;
/** Deepest nesting of arrays and objects inside one field value. */
export const MAX_VALUE_DEPTH = 64;

// A lone surrogate does not survive UTF-8 encoding: Yjs would store U+FFFD on the wire
// while the writer keeps the original, and replicas would disagree. Reject them up front.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function wellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/** Throws {@link InvalidArgumentError} unless `id` is a usable node id. */
export function assertNodeId(id: unknown): asserts id is string {
  if (typeof id !== 'string') throw new InvalidArgumentError(`node id must be a string, got ${typeof id}`);
  if (id.length === 0) throw new InvalidArgumentError('node id must not be empty');
  if (id.length > MAX_NODE_ID_LENGTH) {
    throw new InvalidArgumentError(`node id must be at most ${MAX_NODE_ID_LENGTH} characters, got ${id.length}`);
  }
  if (id.includes('\u0000')) throw new InvalidArgumentError('node id must not contain U+0000');
  if (!wellFormed(id)) throw new InvalidArgumentError('node id must be well-formed UTF-16 (no lone surrogates)');
}

function assertKey(key: string, where: string): void {
  if (key === '__proto__') throw new InvalidArgumentError(`${where}: the key '__proto__' is not allowed`);
  if (!wellFormed(key)) throw new InvalidArgumentError(`${where}: key is not well-formed UTF-16`);
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Validates a JSON value and returns a deep copy the caller cannot mutate behind the
 * document's back. `-0` becomes `0` (the Yjs encoding would do so on other replicas).
 */
export function copyJsonValue(value: unknown, where: string, depth = 0, seen = new Set<object>()): JsonValue {
  if (value === null) return null;
  switch (typeof value) {
    case 'string':
      if (!wellFormed(value)) throw new InvalidArgumentError(`${where}: string is not well-formed UTF-16`);
      return value;
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidArgumentError(`${where}: ${value} is not a JSON number`);
      return value === 0 ? 0 : value;
    case 'object': {
      if (depth >= MAX_VALUE_DEPTH) throw new InvalidArgumentError(`${where}: nested deeper than ${MAX_VALUE_DEPTH}`);
      if (seen.has(value)) throw new InvalidArgumentError(`${where}: value contains a cycle`);
      seen.add(value);
      try {
        if (Array.isArray(value)) {
          const out: JsonValue[] = [];
          for (let i = 0; i < value.length; i++) {
            if (!(i in value)) throw new InvalidArgumentError(`${where}[${i}]: sparse arrays are not JSON`);
            out.push(copyJsonValue(value[i], `${where}[${i}]`, depth + 1, seen));
          }
          return out;
        }
        if (!isPlainObject(value)) {
          const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
          throw new InvalidArgumentError(`${where}: ${name} is not a JSON value (plain objects only)`);
        }
        const entries: Array<[string, JsonValue]> = [];
        for (const key of Object.keys(value)) {
          assertKey(key, where);
          entries.push([key, copyJsonValue((value as Record<string, unknown>)[key], `${where}.${key}`, depth + 1, seen)]);
        }
        if (Object.getOwnPropertySymbols(value).length > 0) {
          throw new InvalidArgumentError(`${where}: symbol keys are not JSON`);
        }
        return Object.fromEntries(entries) as { [key: string]: JsonValue };
      } finally {
        seen.delete(value);
      }
    }
    default:
      throw new InvalidArgumentError(`${where}: a ${typeof value} is not a JSON value`);
  }
}

/** Validates `put` data (a plain object of JSON values) and returns a deep copy. */
export function copyNodeData(data: unknown): Record<string, JsonValue> {
  if (data === null || typeof data !== 'object' || Array.isArray(data) || !isPlainObject(data)) {
    throw new InvalidArgumentError('node data must be a plain object of JSON values');
  }
  const out = copyJsonValue(data, 'data');
  return out as Record<string, JsonValue>;
}

/** Deep copy of a value read out of the document (so callers cannot mutate the document's copy). */
export function cloneJson(value: JsonValue): JsonValue {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(cloneJson);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cloneJson(v)]));
}
