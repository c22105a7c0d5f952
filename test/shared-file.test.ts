// Issue 10 defect 1 with real processes: two processes write and compact one SQLite file at the
// same time (as `rhizome sync --db f` and `rhizome put --db f` do). Every write either process
// acknowledged must be in the file afterwards.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '@rhizome/sync';
import { tempDir } from './sync-helpers.js';

const ROOT = join(import.meta.dirname, '..');
const { dir, cleanup } = tempDir('rhizome-shared-file-');
afterAll(cleanup);

/** Runs scripts/chaos-writer.ts to completion; resolves with the keys it acknowledged. */
function writer(path: string, id: string, prefix: string, count: number, compactAfter: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=rhizome-source', '--import', 'tsx', join(ROOT, 'scripts/chaos-writer.ts'), path, id, prefix, String(count), String(compactAfter)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`writer ${prefix} exited with ${code}: ${err.slice(-1000)}`));
      else resolve(out.split('\n').filter((l) => l.startsWith('ack ')).map((l) => l.slice(4)));
    });
  });
}

describe('two processes on one SQLite file', () => {
  it('compacting under load loses no acknowledged write', async () => {
    const path = join(dir, 'shared.db');
    const id = 'shared-file-test-0123456789';
    const count = 3000;
    // Compaction every 40 updates: both processes compact dozens of times, interleaved.
    const [a, b] = await Promise.all([writer(path, id, 'a', count, 40), writer(path, id, 'b', count, 40)]);
    expect(a).toHaveLength(count);
    expect(b).toHaveLength(count);
    const db = await openDatabase({ id, path });
    try {
      const missing = [...a, ...b].filter((key) => db.get(key) === undefined);
      expect(missing).toEqual([]);
      expect(db.size).toBe(2 * count);
    } finally {
      await db.close();
    }
  }, 120_000);
});
