// SIGKILL durability: a real child process writes through DocPersistence to an SQLite file and
// reports each write it considers acknowledged (write returned + the tick ended); the test
// kills it with SIGKILL mid-stream, reopens the file and checks that no acknowledged write is
// missing. Three rounds on the same file: each round also recovers the WAL the previous kill
// left behind, and writes on top of it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { openSqliteStore } from '@rhizome/store-sqlite';
import { DocPersistence } from '@rhizome/sync';
import { runAndKill } from './kill-helpers.js';

const WRITER = join(import.meta.dirname, 'fixtures', 'durability-writer.ts');
const root = mkdtempSync(join(tmpdir(), 'rhizome-durability-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('SIGKILL durability of DocPersistence on SQLite', () => {
  it('loses no acknowledged write when the writing process is killed', async () => {
    const path = join(root, 'kill.db');
    const rounds = [
      { prefix: 'r0', seed: 11, killAfter: 1500 },
      { prefix: 'r1', seed: 22, killAfter: 4000 },
      { prefix: 'r2', seed: 33, killAfter: 777 },
    ];
    const ackedByRound = new Map<string, number[]>();
    for (const round of rounds) {
      const result = await runAndKill(WRITER, [path, 'db', round.prefix, String(round.seed)], round.killAfter);
      expect(result.stderr).toBe('');
      expect(result.signal, `writer exited by itself (code ${result.code})`).toBe('SIGKILL');
      const acked = result.lines.map(Number);
      expect(acked.length).toBeGreaterThanOrEqual(round.killAfter);
      // Acknowledged ids are 0..n-1 in order: the parser saw whole lines only.
      expect(acked).toEqual(acked.map((_, i) => i));
      ackedByRound.set(round.prefix, acked);

      // Reopen the file the killed process left (WAL not checkpointed) and check every round so far.
      const store = openSqliteStore(path);
      const doc = new Y.Doc();
      const persistence = new DocPersistence(store, 'db', doc);
      persistence.load();
      const writes = doc.getMap<number>('writes');
      const text = doc.getText('log').toString();
      for (const [prefix, acked] of ackedByRound) {
        const missing = acked.filter((id) => writes.get(`${prefix}:${id}`) !== id);
        expect(missing, `round ${prefix}: acknowledged writes missing after SIGKILL`).toEqual([]);
        for (const id of acked) {
          if (id % 3 === 0) expect(text.includes(`${prefix}:${id};`)).toBe(true);
        }
      }
      persistence.close();
      store.close();
    }
  }, 120_000);
});
