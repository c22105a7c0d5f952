import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { RANDOM_POOL_BYTES, randomId } from './random.js';

describe('randomId', () => {
  it('gives fresh bytes of the asked length, across pool refills and for large requests', () => {
    const seen = new Set<string>();
    let total = 0;
    // Enough 16-byte ids to refill the pool several times, with odd sizes between them.
    for (let i = 0; total < RANDOM_POOL_BYTES * 3; i++) {
      const n = i % 7 === 0 ? 5 : 16;
      const id = randomId(n);
      expect(id).toBeInstanceOf(Uint8Array);
      expect(id.length).toBe(n);
      total += n;
      if (n === 16) {
        const hex = Buffer.from(id).toString('hex');
        expect(seen.has(hex)).toBe(false);
        seen.add(hex);
      }
    }
    // Bytes look random: every byte value turns up, none dominates (a zeroed or reused pool would not).
    const counts = new Array<number>(256).fill(0);
    for (const hex of seen) for (const b of Buffer.from(hex, 'hex')) counts[b]!++;
    expect(Math.min(...counts)).toBeGreaterThan(0);
    expect(Math.max(...counts)).toBeLessThan((seen.size * 16) / 256 * 3);
    const big = randomId(RANDOM_POOL_BYTES * 20);
    expect(big.length).toBe(RANDOM_POOL_BYTES * 20);
    expect(new Set(big).size).toBe(256);
    expect(randomId(0).length).toBe(0);
    expect(() => randomId(-1)).toThrow(RangeError);
  });

  it('a V8 startup snapshot built after a draw does not give the processes started from it the same bytes', () => {
    // randomId bundled into one script (what --build-snapshot runs), the pool filled while the
    // snapshot is built; two processes started from it each draw an id.
    const dir = mkdtempSync(join(tmpdir(), 'rhizome-random-snapshot-'));
    try {
      const source = fileURLToPath(new URL('./random.ts', import.meta.url));
      writeFileSync(
        join(dir, 'entry.ts'),
        `import { randomId } from ${JSON.stringify(source)};\n` +
          `const v8 = require('node:v8');\n` +
          `randomId(16);\n` +
          `v8.startupSnapshot.setDeserializeMainFunction(() => console.log(Buffer.from(randomId(16)).toString('hex')));\n`,
      );
      buildSync({ entryPoints: [join(dir, 'entry.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: join(dir, 'entry.cjs'), logLevel: 'silent' });
      execFileSync(process.execPath, ['--snapshot-blob', 'snap.blob', '--build-snapshot', 'entry.cjs'], { cwd: dir, stdio: 'pipe', timeout: 30_000 });
      const run = (): string => execFileSync(process.execPath, ['--snapshot-blob', 'snap.blob'], { cwd: dir, timeout: 30_000 }).toString().trim();
      const first = run();
      const second = run();
      expect(first).toMatch(/^[0-9a-f]{32}$/);
      expect(second).toMatch(/^[0-9a-f]{32}$/);
      expect(second).not.toBe(first);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
