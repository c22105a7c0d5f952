import { InvalidArgumentError } from '@rhizome/core';
import type { JsonValue } from '@rhizome/core';

/** Longest node id, in UTF-16 code units. */
export const MAX_NODE_ID_LENGTH = 1024;
/** Deepest nesting of arrays and objects inside one field value. */
export const MAX_VALUE_DEPTH = 64;

// A lone surrogate does not survive UTF-8 encoding: Yjs would store U+FFFD on the wire
// while the writer keeps the original, and replicas would disagree. Reject them up front.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** `String.prototype.isWellFormed` (ES2024: Node 20, current browsers) is native; the regex is the fallback. */
const nativeWellFormed = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed;

const wellFormed: (text: string) => boolean =
  typeof nativeWellFormed === 'function' ? (text) => nativeWellFormed.call(text) : (text) => !LONE_SURROGATE.test(text);

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
 * Where a value sits, for error messages: built only when one is thrown (a put validates every
 * field, and formatting `data.field[3]` for each would be most of the cost of a small put).
 */
type Path = string | { parent: Path; key: string | number };

function pathText(path: Path): string {
  if (typeof path === 'string') return path;
  const parent = pathText(path.parent);
  return typeof path.key === 'number' ? `${parent}[${path.key}]` : `${parent}.${path.key}`;
}

/**
 * Validates a JSON value and returns a deep copy the caller cannot mutate behind the
 * document's back. `-0` becomes `0` (the Yjs encoding would do so on other replicas).
 */
export function copyJsonValue(value: unknown, where: string): JsonValue {
  return copyValue(value, where, 0, null);
}

/** Primitives come back as they are; objects and arrays are copied (ancestors in `seen` catch cycles). */
function copyValue(value: unknown, where: Path, depth: number, seen: Set<object> | null): JsonValue {
  if (value === null) return null;
  switch (typeof value) {
    case 'string':
      if (!wellFormed(value)) throw new InvalidArgumentError(`${pathText(where)}: string is not well-formed UTF-16`);
      return value;
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidArgumentError(`${pathText(where)}: ${value} is not a JSON number`);
      return value === 0 ? 0 : value;
    case 'object': {
      if (depth >= MAX_VALUE_DEPTH) throw new InvalidArgumentError(`${pathText(where)}: nested deeper than ${MAX_VALUE_DEPTH}`);
      if (seen !== null && seen.has(value)) throw new InvalidArgumentError(`${pathText(where)}: value contains a cycle`);
      // The set of ancestors is made when the first nested object or array needs it (a put of
      // primitive fields makes none).
      let ancestors = seen;
      ancestors?.add(value);
      try {
        if (Array.isArray(value)) {
          const out: JsonValue[] = [];
          for (let i = 0; i < value.length; i++) {
            if (!(i in value)) throw new InvalidArgumentError(`${pathText(where)}[${i}]: sparse arrays are not JSON`);
            const item: unknown = value[i];
            out.push(item !== null && typeof item === 'object' ? copyValue(item, { parent: where, key: i }, depth + 1, (ancestors ??= new Set<object>([value]))) : copyValue(item, { parent: where, key: i }, depth + 1, null));
          }
          return out;
        }
        if (!isPlainObject(value)) {
          const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
          throw new InvalidArgumentError(`${pathText(where)}: ${name} is not a JSON value (plain objects only)`);
        }
        // Keys are checked (no '__proto__'), so plain assignment defines own data properties.
        const out: { [key: string]: JsonValue } = {};
        for (const key of Object.keys(value)) {
          if (key === '__proto__' || !wellFormed(key)) assertKey(key, pathText(where));
          const field: unknown = (value as Record<string, unknown>)[key];
          // Primitives need no path object unless they fail.
          out[key] = field !== null && typeof field === 'object' ? copyValue(field, { parent: where, key }, depth + 1, (ancestors ??= new Set<object>([value]))) : copyPrimitive(field, where, key);
        }
        if (Object.getOwnPropertySymbols(value).length > 0) {
          throw new InvalidArgumentError(`${pathText(where)}: symbol keys are not JSON`);
        }
        return out;
      } finally {
        seen?.delete(value);
      }
    }
    default:
      throw new InvalidArgumentError(`${pathText(where)}: a ${typeof value} is not a JSON value`);
  }
}

/** {@link copyValue} for a field that is not an object, without allocating its path. */
function copyPrimitive(value: unknown, parent: Path, key: string): JsonValue {
  switch (typeof value) {
    case 'string':
      if (wellFormed(value)) return value;
      break;
    case 'boolean':
      return value;
    case 'number':
      if (Number.isFinite(value)) return value === 0 ? 0 : value;
      break;
    default:
      if (value === null) return null;
  }
  return copyValue(value, { parent, key }, 1, null);
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
