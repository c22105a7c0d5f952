// Property-based fuzzing (fast-check) of what Rhizome reads from disk: foreign files, damaged
// bytes in a valid store, and rows of a valid schema holding values no Rhizome wrote (wrong
// types, NULLs, negative or huge sequence numbers, blobs that are not Yjs). Every input gets a
// typed error with a stable code, or a database that opens; never a crash (an untyped throw), and
// never a silently emptied database where a row for it exists.
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import * as Y from 'yjs';
import { afterAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, RhizomeError } from '@rhizome/core';
import { openSqliteStore } from '@rhizome/store-sqlite';
import { openDatabase } from '@rhizome/sync';
import { tempDir } from './sync-helpers.js';

const { dir, cleanup } = tempDir('rhizome-store-fuzz-');
afterAll(cleanup);
const ID = 'store-fuzz-0123456789abcdef';
let counter = 0;
const fresh = (): string => join(dir, `f-${counter++}.db`);
const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Either the database opens (and is closed again) or the error is typed; returns what happened. */
async function tryOpen(path: string): Promise<{ opened: true; size: number } | { opened: false; code: string }> {
  try {
    const db = await openDatabase({ id: ID, path, persistence: { watchIntervalMs: 0 } });
    const size = db.size;
    db.list();
    await db.close();
    return { opened: true, size };
  } catch (error) {
    expect(error, `an untyped error escaped: ${String(error)}`).toBeInstanceOf(RhizomeError);
    const code = (error as RhizomeError).code;
    expect(ERROR_CODES as readonly string[]).toContain(code);
    return { opened: false, code };
  }
}

/** A valid store file holding `nodes` nodes in a snapshot plus a log. */
async function validFile(nodes: number): Promise<string> {
  const path = fresh();
  const db = await openDatabase({ id: ID, path, persistence: { compactAfterUpdates: Infinity, watchIntervalMs: 0 } });
  for (let i = 0; i < nodes; i++) db.put(`n${i}`, { v: i, text: 'x'.repeat(i % 50) });
  db.compact();
  for (let i = 0; i < 5; i++) db.put(`late${i}`, { v: i });
  await db.close();
  return path;
}

describe('store fuzzing', () => {
  it('foreign files (arbitrary bytes, with or without an SQLite header) are refused with a typed error and left untouched', async () => {
    const header = Buffer.from('SQLite format 3\0', 'latin1');
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 8192 }), fc.boolean(), async (bytes, withHeader) => {
        const path = fresh();
        writeFileSync(path, withHeader ? Buffer.concat([header, Buffer.from(bytes)]) : bytes);
        const before = sha(path);
        const result = await tryOpen(path);
        expect(result.opened).toBe(false);
        expect(sha(path)).toBe(before);
        rmSync(path, { force: true });
      }),
      { numRuns: 150 },
    );
  });

  it('damaged bytes anywhere in a valid store file: a typed error or a database that opens, never a crash', async () => {
    const original = await validFile(200);
    const size = readFileSync(original).length;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat({ max: size - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }), async (flips) => {
        const path = fresh();
        copyFileSync(original, path);
        const bytes = readFileSync(path);
        for (const [at, xor] of flips) bytes[at] = bytes[at]! ^ xor;
        writeFileSync(path, bytes);
        await tryOpen(path);
        for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
      }),
      { numRuns: 120 },
    );
  });

  // Values a row of the current schema may hold although Rhizome never writes them.
  const cell = fc.oneof(
    fc.constant(null),
    fc.integer(),
    fc.double(),
    fc.constantFrom(-1, 0, 2 ** 53, Number.MAX_SAFE_INTEGER),
    fc.string({ maxLength: 40 }),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  );

  it('rows no Rhizome wrote (wrong types, NULLs, odd sequence numbers, blobs that are not Yjs): a typed error, or the database opens with its rows, never emptied', async () => {
    const original = await validFile(20);
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          snapshot: cell,
          snapshotSeq: cell,
          rows: fc.array(fc.tuple(cell, cell), { maxLength: 6 }),
          keepLog: fc.boolean(),
        }),
        async ({ snapshot, snapshotSeq, rows, keepLog }) => {
          const path = fresh();
          copyFileSync(original, path);
          const raw = new Database(path);
          raw.pragma('journal_mode = WAL');
          // No constraint or trigger is dropped: whatever SQLite itself accepts goes in.
          const docId = raw.prepare('SELECT id FROM docs WHERE name = ?').pluck().get(ID) as number;
          const put = raw.transaction(() => {
            try {
              raw.prepare('UPDATE docs SET snapshot = ?, snapshot_seq = ? WHERE id = ?').run(snapshot, snapshotSeq, docId);
            } catch {
              // NOT NULL and the like: the row keeps its old values.
            }
            // The log of document d: keys (d << 44) + seq (schema version 2).
            if (!keepLog) raw.prepare('DELETE FROM updates WHERE key > (? << 44) AND key < ((? + 1) << 44)').run(docId, docId);
            for (const [seq, data] of rows) {
              try {
                raw.prepare('INSERT INTO updates (key, data) VALUES ((? << 44) + CAST(? AS INTEGER), ?)').run(docId, seq, data);
              } catch {
                // Duplicate key or NOT NULL: skipped.
              }
            }
          });
          put();
          raw.close();
          const result = await tryOpen(path);
          if (result.opened) {
            // The document row exists: a database that opened must not have lost what its
            // snapshot and log hold, i.e. it is not empty unless they hold nothing.
            const check = new Database(path, { readonly: true });
            const stored = check
              .prepare(
                'SELECT (snapshot IS NOT NULL) + (SELECT count(*) FROM updates WHERE key > (docs.id << 44) AND key < ((docs.id + 1) << 44)) FROM docs WHERE name = ?',
              )
              .pluck()
              .get(ID) as number;
            check.close();
            if (stored > 0 && result.size === 0) {
              // Empty is only right when every stored value was an empty Yjs update.
              const s = openSqliteStore(path, { integrityCheck: 'none' });
              const doc = new Y.Doc();
              const loaded = s.load(ID);
              for (const u of [loaded.snapshot, ...loaded.updates]) if (u) Y.applyUpdate(doc, u);
              s.close();
              expect(doc.getMap('nodes').size).toBe(0);
            }
          }
          for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
        },
      ),
      { numRuns: 150 },
    );
  });
});
