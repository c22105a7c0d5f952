import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { maxSemiSpaceMiB, missingRelayNodeFlags, RELAY_MAX_SEMI_SPACE_MIB, RELAY_NODE_FLAGS } from './node-flags.js';

/** Allocates ~100 MB of objects of which a sliding window survives; prints new space's committed KiB. */
const SURVIVORS = `
const v8 = require('node:v8');
const keep = [];
for (let i = 0; i < 1e6; i++) { keep.push({ a: i, b: [i, i + 1], c: 'x' + i }); if (keep.length > 200000) keep.splice(0, 100000); }
process.stdout.write(String(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size >> 10));
`;

function newSpaceKiBAfterSurvivors(flags: readonly string[]): number {
  const out = spawnSync(process.execPath, [...flags, '-e', SURVIVORS], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  expect(out.status, out.stderr).toBe(0);
  return Number(out.stdout);
}

describe('the relay process flags', () => {
  it('are a bounded young generation', () => {
    expect(RELAY_NODE_FLAGS).toEqual([`--max-semi-space-size=${RELAY_MAX_SEMI_SPACE_MIB}`]);
    expect(RELAY_MAX_SEMI_SPACE_MIB).toBe(2);
    expect(Object.isFrozen(RELAY_NODE_FLAGS)).toBe(true);
  });

  it('are missing unless execArgv or NODE_OPTIONS names them (any value, either spelling: the operator wins)', () => {
    expect(missingRelayNodeFlags([], '')).toEqual([...RELAY_NODE_FLAGS]);
    expect(missingRelayNodeFlags(['--conditions=rhizome-source', '--import', 'tsx', '--max-old-space-size=512'], '--trace-warnings')).toEqual([...RELAY_NODE_FLAGS]);
    expect(missingRelayNodeFlags(['--max-semi-space-size=2'], '')).toEqual([]);
    expect(missingRelayNodeFlags(['--max-semi-space-size=16'], '')).toEqual([]);
    expect(missingRelayNodeFlags([], '--enable-source-maps  --max_semi_space_size=8')).toEqual([]);
  });

  it('report the semi-space limit V8 was given: NODE_OPTIONS first, then the command line, the last one winning', () => {
    expect(maxSemiSpaceMiB([], '')).toBeUndefined();
    expect(maxSemiSpaceMiB(['--max-semi-space-size=2'], '')).toBe(2);
    expect(maxSemiSpaceMiB(['--max-semi-space-size=4'], '--max_semi_space_size=8')).toBe(4);
    expect(maxSemiSpaceMiB([], '--max_semi_space_size=8')).toBe(8);
    expect(maxSemiSpaceMiB(['--max-semi-space-size=1', '--max-semi-space-size=3'], '')).toBe(3);
  });

  it("bound this Node's young generation: with them it stays at 2 x 2 MiB under surviving garbage, without them it grows past it", () => {
    const bounded = newSpaceKiBAfterSurvivors(RELAY_NODE_FLAGS);
    const unbounded = newSpaceKiBAfterSurvivors([]);
    expect(bounded).toBeLessThanOrEqual(2 * RELAY_MAX_SEMI_SPACE_MIB * 1024);
    expect(unbounded).toBeGreaterThan(2 * RELAY_MAX_SEMI_SPACE_MIB * 1024);
  });

  it('re-launch without process.execve (Windows, Node < 22.15): a child with the flags, its output and exit code passed on', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rhizome-node-flags-'));
    try {
      const script = join(dir, 'entry.mjs');
      writeFileSync(
        script,
        `process.execve = undefined;
const { relaunchWithRelayNodeFlags } = await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, 'node-flags.ts')).href)});
const relaunched = relaunchWithRelayNodeFlags();
if (relaunched === undefined) {
  console.log(JSON.stringify({ pid: process.pid, execArgv: process.execArgv }));
  process.exitCode = 3;
} else {
  console.log('parent ' + process.pid);
  process.exitCode = await relaunched;
}
`,
      );
      const out = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
      expect(out.status, out.stderr).toBe(3);
      const lines = out.stdout.trim().split('\n');
      const parent = Number(/^parent (\d+)$/.exec(lines.find((l) => l.startsWith('parent')) ?? '')?.[1]);
      const child = JSON.parse(lines.find((l) => l.startsWith('{')) ?? 'null') as { pid: number; execArgv: string[] };
      expect(parent).toBeGreaterThan(0);
      expect(child.pid).not.toBe(parent);
      expect(child.execArgv.slice(0, RELAY_NODE_FLAGS.length)).toEqual([...RELAY_NODE_FLAGS]);
      expect(child.execArgv).toContain('tsx');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
