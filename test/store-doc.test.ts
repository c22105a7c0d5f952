// The store's file format as ARCHITECTURE.md § Storage › File format writes it: the table of
// columns is read from the document and compared with a fresh file's schema; the header's
// application_id (`Rhzm`) and user_version, and the log's keys `(doc << 44) + seq`, are checked in
// the file itself (raw better-sqlite3 and the file's bytes, not the store's own constants).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '@rhizome/store-sqlite';
import { section } from './doc-layout.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-store-doc-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const format = section('### File format (schema version 2)');

/** `table → column definitions` from the document's table (a row with an empty first cell continues the table above). */
function documentedColumns(): Map<string, string[]> {
  const tables = new Map<string, string[]>();
  let table = '';
  for (const line of format.split('\n')) {
    const m = /^\|\s*(?:`(\w+)`[^|]*?)?\s*\| `([^`]+)` \|/.exec(line);
    if (!m) continue;
    if (m[1]) table = m[1];
    tables.set(table, [...(tables.get(table) ?? []), m[2]!]);
  }
  return tables;
}

/** The column definitions of `CREATE TABLE x (a ..., b ...)`, whitespace normalised. */
function columnsOf(sql: string): string[] {
  const body = sql.slice(sql.indexOf('(') + 1, sql.lastIndexOf(')'));
  return body.split(',').map((c) => c.replace(/\s+/g, ' ').trim());
}

describe('the store file as ARCHITECTURE.md writes it', () => {
  it('has exactly the documented tables and columns, application_id Rhzm and user_version 2 in its header', () => {
    const path = join(dir, 'fresh.db');
    const store = openSqliteStore(path);
    store.append('a document', [Uint8Array.of(0, 0)]);
    store.close();

    const documented = documentedColumns();
    expect([...documented.keys()].sort()).toEqual(['docs', 'updates']);
    const raw = new Sqlite(path, { readonly: true });
    try {
      const tables = raw.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string; sql: string }>;
      expect(tables.map((t) => t.name)).toEqual(['docs', 'updates']);
      for (const t of tables) expect(columnsOf(t.sql), t.name).toEqual(documented.get(t.name));
      expect(format).toContain('`PRAGMA user_version = 2`');
      expect(raw.pragma('user_version', { simple: true })).toBe(2);
    } finally {
      raw.close();
    }
    // The SQLite header: application_id at offset 68, user_version at 60, both big-endian.
    const header = readFileSync(path).subarray(0, 100);
    expect(format).toContain('`PRAGMA application_id = 0x52687A6D` (ASCII `Rhzm`)');
    expect(header.subarray(68, 72).toString('latin1')).toBe('Rhzm');
    expect(header.readUInt32BE(60)).toBe(2);
  });

  it('keys the log (doc << 44) + seq, seq counting appends per document from 1', () => {
    const path = join(dir, 'keys.db');
    const store = openSqliteStore(path);
    store.append('first', [Uint8Array.of(0, 0)]);
    store.append('second', [Uint8Array.of(0, 0), Uint8Array.of(0, 0)]);
    store.append('first', [Uint8Array.of(0, 0)]);
    store.close();
    const raw = new Sqlite(path, { readonly: true });
    try {
      const docs = new Map((raw.prepare('SELECT name, id FROM docs').all() as Array<{ name: string; id: number }>).map((r) => [r.name, r.id]));
      const rows = raw.prepare('SELECT key >> 44 AS doc, key & ((1 << 44) - 1) AS seq FROM updates ORDER BY key').all();
      const first = docs.get('first')!;
      const second = docs.get('second')!;
      expect(rows).toEqual(
        [
          { doc: first, seq: 1 },
          { doc: first, seq: 2 },
          { doc: second, seq: 1 },
          { doc: second, seq: 2 },
        ].sort((x, y) => x.doc - y.doc || x.seq - y.seq),
      );
    } finally {
      raw.close();
    }
  });
});
