// core's shared ticker (packages/core/src/ticker.ts) ticks every database's health monitor,
// awareness check and relay liveness check of one period. A member that throws must not stop
// the others for the rest of the process's life (the round it was in never ended, so every later
// round was skipped); its error still reaches the process as an uncaught exception.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/ticker-throwing-member.ts', import.meta.url));

describe('the shared ticker with a member that throws', () => {
  it('keeps ticking the other members, round after round, and reports each throw as an uncaught exception', () => {
    const run = spawnSync(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', FIXTURE], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout.trim().split('\n').pop()!) as { ticks: number; errors: number };
    expect(result.ticks).toBe(3);
    expect(result.errors).toBeGreaterThanOrEqual(3);
  });
});
