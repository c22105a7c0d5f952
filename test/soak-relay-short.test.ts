// `npm run soak:relay -- --minutes M` ends about M minutes after its relay serves, however short M
// is: every loop's pause is cut at the soak's end, and the unread-Connection abuse no longer
// waits without bound on a writer that flow control holds (a reader that never reads grants no
// credit, so the send waited until the Connection closed, which nothing did: `--minutes 0.1` ran
// on for ever). The soak itself is not in CI; this runs a short one end to end.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './cli-helpers.js';

/** Bound of the whole run: a 3 s soak plus its relay's start, the final checks and the closes, on a loaded machine. */
const BOUND_MS = 100_000;

describe('soak-relay', () => {
  it('a 3-second soak runs every loop (churn, sync, abuse, samples) and ends with its summary', async () => {
    const child = spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', join(ROOT, 'scripts/soak-relay.ts'), '--minutes', '0.05', '--warmup', '0', '--sample', '1'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), BOUND_MS);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    clearTimeout(killer);
    expect(signal, `the soak did not end by itself:\n${out.slice(-2000)}`).toBeNull();
    const summary = out.split('\n').find((l) => l.startsWith('SOAK '));
    expect(summary, out.slice(-2000)).toBeDefined();
    const counts = JSON.parse(summary!.replace(/^SOAK (PASS|FAIL) /, '')) as Record<string, number>;
    expect(counts['idleSockets']).toBeGreaterThanOrEqual(50);
    expect(counts['unreadOverflows']! + counts['unreadHeld']!).toBeGreaterThanOrEqual(1);
    expect(counts['joins']).toBeGreaterThan(0);
    expect(counts['syncFailures']).toBe(0);
    expect(code, summary).toBe(0);
  }, BOUND_MS + 20_000);
});
