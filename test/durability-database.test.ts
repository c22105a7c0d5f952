// SIGKILL durability through the public API: a real child process calls db.put / db.delete on
// an SQLite file and reports each operation once acknowledged (from a setImmediate after the
// call returned); the parent kills it with SIGKILL, reopens the file with openDatabase, and
// checks that nothing acknowledged is lost. Three rounds on one file (each recovers the WAL the
// previous kill left behind).
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openDatabase } from '@rhizome/sync';
import { runAndKill } from './kill-helpers.js';
import { tempDir } from './sync-helpers.js';

const WRITER = join(import.meta.dirname, 'fixtures', 'durability-database-writer.ts');
const { dir, cleanup } = tempDir('rhizome-durability-db-');
afterAll(cleanup);

it('loses no acknowledged put or delete when the process is SIGKILLed', async () => {
  const path = join(dir, 'kill.db');
  const expected = new Map<string, { n: number; text: string; tags: string[] } | undefined>();
  for (const round of [
    { prefix: 'r0', seed: 5, killAfter: 1200 },
    { prefix: 'r1', seed: 6, killAfter: 3000 },
    { prefix: 'r2', seed: 7, killAfter: 500 },
  ]) {
    const run = await runAndKill(WRITER, [path, 'durable-db', round.prefix, String(round.seed)], round.killAfter);
    expect(run.stderr).toBe('');
    expect(run.signal, `writer exited by itself (code ${run.code})`).toBe('SIGKILL');
    expect(run.lines.length).toBeGreaterThanOrEqual(round.killAfter);
    // Operation numbers acknowledged in this round (a delete of n is operation n + 1).
    const acknowledged = new Set<string>();
    for (const line of run.lines) {
      const [op, num] = line.split(' ') as [string, string];
      const n = Number(num);
      const id = `${round.prefix}:${n}`;
      if (op === 'p') {
        expected.set(id, { n, text: `value ${n}`, tags: [round.prefix] });
        acknowledged.add(id);
      } else if (op === 'd') {
        expected.set(id, undefined);
        acknowledged.add(`${round.prefix}:${n + 1}`);
      } else throw new Error(`bad line '${line}'`);
    }
    const db = await openDatabase({ id: 'durable-db', path });
    try {
      const lost: string[] = [];
      for (const [id, data] of expected) {
        const got = db.get(id);
        if (data === undefined ? got !== undefined : JSON.stringify(got) !== JSON.stringify({ n: data.n, tags: data.tags, text: data.text })) {
          // Writes made after the last acknowledgement may be on disk too: the delete of this
          // node (the writer's next operation) may have landed without being acknowledged.
          const deletedLater = data !== undefined && got === undefined && (data.n + 1) % 7 === 6 && !acknowledged.has(`${round.prefix}:${data.n + 1}`);
          if (!deletedLater) lost.push(id);
        }
      }
      expect(lost, `round ${round.prefix}: acknowledged operations lost after SIGKILL`).toEqual([]);
    } finally {
      await db.close();
    }
  }
}, 120_000);
