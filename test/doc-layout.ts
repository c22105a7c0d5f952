// Reads the byte layouts ARCHITECTURE.md writes for the relay's frames — `[0x84][topicId:4][from:4][payload]`
// — and builds or parses frames from them, so tests can hold the code to the document rather than
// to the code's own constants (test/wire-doc.test.ts).
import { readFileSync } from 'node:fs';

/** ARCHITECTURE.md's text. */
export const ARCHITECTURE = readFileSync(new URL('../ARCHITECTURE.md', import.meta.url), 'utf8');

/** The text of the section that starts with `heading` (a whole line), up to the next heading of the same or a higher level. */
export function section(heading: string, doc = ARCHITECTURE): string {
  const start = doc.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`ARCHITECTURE.md has no "${heading}"`);
  const level = /^#+/.exec(heading)![0].length;
  const rest = doc.slice(start + heading.length + 2);
  const next = new RegExp(`\\n#{1,${level}} `).exec(rest);
  return next ? rest.slice(0, next.index) : rest;
}

/**
 * One field of a layout: a literal byte (`[0x84]`), a big-endian number or fixed-size bytes
 * (`[topicId:4]`, `[topic:32]`, `[version:1 = 1]`, `[0:4]`: four zero bytes), bytes whose length another field gives
 * (`[id:idLen]`), or the rest of the frame (`[payload]`, `[message utf8]`).
 */
export type Field =
  | { kind: 'literal'; value: number }
  | { kind: 'fixed'; name: string; size: number; value?: number }
  | { kind: 'sized'; name: string; lengthField: string }
  | { kind: 'rest'; name: string };

/** A frame as a table row writes it. */
export interface FrameRow {
  type: number;
  name: string;
  /** The fields up to a repeated group. */
  fields: Field[];
  /** `then \`count\` × \`[...]\``: a group repeated as many times as the field named `countField` says. */
  repeat?: { countField: string; fields: Field[] };
  /** The length written after the layout: `(33)` gives 33, `(9 + n)` gives 9 plus a payload, none gives null. */
  length: { fixed: number; plusPayload: boolean } | null;
}

/** Parses `[0x84][topicId:4][from:4][payload]`. */
export function parseLayout(code: string): Field[] {
  const fields: Field[] = [];
  const re = /\[([^\]]*)\]/g;
  let at = 0;
  for (let m = re.exec(code); m !== null; m = re.exec(code)) {
    if (code.slice(at, m.index).trim() !== '') throw new Error(`unexpected text in layout ${code}`);
    at = m.index + m[0].length;
    const body = m[1]!.trim();
    let f: RegExpExecArray | null;
    if ((f = /^0x([0-9a-f]{2})$/.exec(body))) fields.push({ kind: 'literal', value: Number.parseInt(f[1]!, 16) });
    else if ((f = /^(\d+):(\d+)$/.exec(body))) fields.push({ kind: 'fixed', name: `zero${fields.length}`, size: Number(f[2]), value: Number(f[1]) });
    else if ((f = /^(\w+):(\d+)(?:\s*=\s*(\d+))?$/.exec(body))) {
      fields.push({ kind: 'fixed', name: f[1]!, size: Number(f[2]), ...(f[3] === undefined ? {} : { value: Number(f[3]) }) });
    } else if ((f = /^(\w+):([A-Za-z]\w*)$/.exec(body))) fields.push({ kind: 'sized', name: f[1]!, lengthField: f[2]! });
    else if ((f = /^(\w+)(?: utf8)?$/.exec(body))) fields.push({ kind: 'rest', name: f[1]! });
    else throw new Error(`unreadable layout field [${body}] in ${code}`);
  }
  if (code.slice(at).trim() !== '') throw new Error(`unexpected text in layout ${code}`);
  return fields;
}

/** Every `| \`0xNN\` | NAME | layout | ... |` row of the tables in `text`. */
export function frameRows(text: string): FrameRow[] {
  const rows: FrameRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\| `0x([0-9a-f]{2})` \| (\w+) \| (.*?) \| .* \|$/.exec(line);
    if (!m) continue;
    const cell = m[3]!;
    const parts = /^`([^`]+)`(?: \((\d+)(?: \+ n)?(?:[,;][^)]*)?\))?(?: then `(\w+)` × `([^`]+)`)?/.exec(cell);
    if (!parts) throw new Error(`unreadable layout cell for ${m[2]}: ${cell}`);
    const length = parts[2] === undefined ? null : { fixed: Number(parts[2]), plusPayload: /\(\d+ \+ n/.test(cell) };
    rows.push({
      type: Number.parseInt(m[1]!, 16),
      name: m[2]!,
      fields: parseLayout(parts[1]!),
      ...(parts[3] ? { repeat: { countField: parts[3], fields: parseLayout(parts[4]!) } } : {}),
      length,
    });
  }
  return rows;
}

/** Field values: numbers for fixed fields of up to 8 bytes, bytes (or UTF-8 text) otherwise. */
export type Values = Record<string, number | Uint8Array | string | Values[]>;

function bytesOf(v: unknown, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return new TextEncoder().encode(v);
  throw new Error(`${what}: bytes expected, got ${String(v)}`);
}

function buildFields(fields: Field[], values: Values, out: number[]): void {
  for (const f of fields) {
    if (f.kind === 'literal') out.push(f.value);
    else if (f.kind === 'fixed') {
      const v = values[f.name] ?? f.value;
      if (f.value !== undefined && v !== f.value) throw new Error(`${f.name} is fixed at ${f.value}`);
      if (typeof v === 'number') {
        if (f.size > 8) throw new Error(`${f.name}: ${f.size} bytes, not a number`);
        let n = BigInt(v);
        const bytes: number[] = [];
        for (let i = 0; i < f.size; i++, n >>= 8n) bytes.unshift(Number(n & 0xffn));
        if (n !== 0n) throw new Error(`${f.name}: ${v} does not fit in ${f.size} bytes`);
        out.push(...bytes);
      } else {
        const b = bytesOf(v, f.name);
        if (b.length !== f.size) throw new Error(`${f.name}: ${b.length} bytes, the layout says ${f.size}`);
        out.push(...b);
      }
    } else if (f.kind === 'sized') {
      const b = bytesOf(values[f.name], f.name);
      if (b.length !== values[f.lengthField]) throw new Error(`${f.name}: ${b.length} bytes, ${f.lengthField} says ${String(values[f.lengthField])}`);
      out.push(...b);
    } else out.push(...bytesOf(values[f.name] ?? new Uint8Array(0), f.name));
  }
}

/** The frame `row` describes, with these field values (fields fixed by the layout may be left out). */
export function build(row: FrameRow, values: Values): Uint8Array {
  const out: number[] = [];
  buildFields(row.fields, values, out);
  if (row.repeat) {
    const entries = values.entries as Values[];
    if (entries.length !== values[row.repeat.countField]) throw new Error(`${row.repeat.countField} does not match the entries`);
    for (const e of entries) buildFields(row.repeat.fields, e, out);
  }
  return Uint8Array.from(out);
}

function parseFields(fields: Field[], b: Uint8Array, at: number, into: Values, row: string): number {
  for (const f of fields) {
    if (f.kind === 'literal') {
      if (b[at] !== f.value) throw new Error(`${row}: byte ${at} is ${b[at]}, the layout says 0x${f.value.toString(16)}`);
      at += 1;
    } else if (f.kind === 'fixed') {
      if (at + f.size > b.length) throw new Error(`${row}: ${f.name} runs past the end`);
      if (f.size <= 8) {
        let n = 0n;
        for (let i = 0; i < f.size; i++) n = (n << 8n) | BigInt(b[at + i]!);
        into[f.name] = Number(n);
        if (f.value !== undefined && into[f.name] !== f.value) throw new Error(`${row}: ${f.name} is ${into[f.name]}, the layout says ${f.value}`);
      } else into[f.name] = b.slice(at, at + f.size);
      at += f.size;
    } else if (f.kind === 'sized') {
      const n = into[f.lengthField];
      if (typeof n !== 'number' || at + n > b.length) throw new Error(`${row}: ${f.name} runs past the end`);
      into[f.name] = b.slice(at, at + n);
      at += n;
    } else {
      into[f.name] = b.slice(at);
      at = b.length;
    }
  }
  return at;
}

/** Reads a frame by the layout of `row`; throws unless the frame is exactly that layout, nothing left over. */
export function parse(row: FrameRow, b: Uint8Array): Values {
  const values: Values = {};
  let at = parseFields(row.fields, b, 0, values, row.name);
  if (row.repeat) {
    const entries: Values[] = [];
    for (let i = 0; i < (values[row.repeat.countField] as number); i++) {
      const e: Values = {};
      at = parseFields(row.repeat.fields, b, at, e, row.name);
      entries.push(e);
    }
    values.entries = entries;
  }
  if (at !== b.length) throw new Error(`${row.name}: ${b.length - at} bytes after the layout ends`);
  return values;
}

/** The bytes every fixed part of a layout takes (literals, fixed fields; a repeated group not counted). */
export function fixedLength(fields: Field[]): number {
  let n = 0;
  for (const f of fields) {
    if (f.kind === 'literal') n += 1;
    else if (f.kind === 'fixed') n += f.size;
  }
  return n;
}
