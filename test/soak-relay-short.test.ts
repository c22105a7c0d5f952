// `npm run soak:relay -- --minutes M` ends about M minutes after its relay serves, however short M
// is: every loop's pause is cut at the soak's end, and the unread-Connection abuse no longer
// waits without bound on a writer that flow control holds (a reader that never reads grants no
// credit, so the send waited until the Connection closed, which nothing did: `--minutes 0.1` ran
// on for ever). The soak itself is not in CI; this runs a short one end to end.
//
// The soak runs in a process group of its own, and the test's bound (or its end, however it ends)
// kills the whole group: the soak's relay process and flooders die with it instead of outliving
// it holding a port and CPU for the rest of the run (they have no tie to the soak but a pipe).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { within } from '@rhizome/core/testing';
import { ROOT } from './cli-helpers.js';

/** Bound of the whole run: a 3 s soak plus its relay's start, the final checks and the closes, on a loaded machine. */
const BOUND_MS = 100_000;

/** A soak in its own process group; `kill()` kills the group: the soak, its relay, its flooders. */
interface Soak {
  readonly child: ChildProcessWithoutNullStreams;
  output(): string;
  readonly closed: Promise<[number | null, NodeJS.Signals | null]>;
  kill(): void;
}

const soaks: Soak[] = [];
// However the test ended (a failed expectation, vitest's own timeout), nothing of the soak is left.
afterEach(() => {
  for (const soak of soaks.splice(0)) soak.kill();
});

function startSoak(args: string[]): Soak {
  const child = spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', join(ROOT, 'scripts/soak-relay.ts'), ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group (pgid = its pid), which its children join.
    detached: true,
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const closed = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  const soak: Soak = {
    child,
    output: () => out,
    closed,
    kill: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // ESRCH: no process of the group is left.
      }
    },
  };
  soaks.push(soak);
  return soak;
}

/** True while `pid` runs (a zombie waiting to be reaped has ended). */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('soak-relay', () => {
  it('a 3-second soak runs every loop (churn, sync, abuse, samples) and ends with its summary', async () => {
    const soak = startSoak(['--minutes', '0.05', '--warmup', '0', '--sample', '1']);
    const killer = setTimeout(() => soak.kill(), BOUND_MS);
    const [code, signal] = await soak.closed;
    clearTimeout(killer);
    const out = soak.output();
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

  it("when the bound fires, the soak's relay process dies with the soak", async () => {
    // A soak that would run for minutes, killed as the bound above kills one, once its relay serves.
    const soak = startSoak(['--minutes', '10', '--warmup', '0', '--sample', '1']);
    const relayLine = await within(60_000, 'the soak to start its relay', (async () => {
      for (;;) {
        const line = soak.output().split('\n').find((l) => l.startsWith('{"relay":'));
        if (line !== undefined) return line;
        await Promise.race([soak.closed, new Promise((r) => setTimeout(r, 50))]);
        if (soak.child.exitCode !== null) throw new Error(`the soak exited: ${soak.output().slice(-2000)}`);
      }
    })());
    const relayPid = (JSON.parse(relayLine) as { relay: { pid: number } }).relay.pid;
    expect(running(relayPid)).toBe(true);
    soak.kill();
    await soak.closed;
    await within(10_000, `the soak's relay (pid ${relayPid}) to end`, (async () => {
      while (running(relayPid)) await new Promise((r) => setTimeout(r, 50));
    })());
  }, 90_000);
});
