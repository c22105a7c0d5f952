// `npm start` (scripts/demo.ts) as a user runs it: it starts a relay and two replicas, shows a
// write arriving, prints where the files are and what to try next, and exits 0 by itself.
// With --keep it stays up, and the `rhizome put` it suggests reaches its replicas.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, rhizome, tempDir } from './cli-helpers.js';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ dir, cleanup } = tempDir('rhizome-demo-test-'));
});
afterAll(() => cleanup());

/** Runs the demo exactly as `npm start` does (see the root package.json), in `dir`. */
function demo(args: string[] = []): { child: ReturnType<typeof spawn>; out: () => string; waitFor: (text: string) => Promise<void>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', 'scripts/demo.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, RHIZOME_DEMO_DIR: dir },
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => {
    for (const w of waiters.splice(0)) w();
    resolve(code);
  }));
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(kill));
  const waitFor = async (text: string): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (!stdout.includes(text)) {
      if (child.exitCode !== null) throw new Error(`demo exited before printing ${text}\n${stdout}\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${text}\n${stdout}\n${stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };
  return { child, out: () => `${stdout}${stderr ? `\nstderr:\n${stderr}` : ''}`, waitFor, exited };
}

describe('npm start', () => {
  it('shows a write arriving on the other replica, prints the files and next steps, exits 0', async () => {
    const run = demo();
    const code = await run.exited;
    const out = run.out();
    expect(code, out).toBe(0);
    expect(out).toMatch(/relay listening on ws:\/\/127\.0\.0\.1:\d+/);
    expect(out).toMatch(/phone: {2}got note-1 \{"done":false,"title":"Buy milk"\}/);
    expect(out).toContain('laptop: {"done":true,"title":"Buy oat milk"}');
    expect(out).toContain('phone:  {"done":true,"title":"Buy oat milk"}');
    expect(out).toContain('What to try next (from the repository root):');
    expect(out).toContain('node packages/cli/bin/rhizome.js list');
    expect(existsSync(join(dir, 'laptop.db'))).toBe(true);
    expect(existsSync(join(dir, 'phone.db'))).toBe(true);
    expect(out).toContain(join(dir, 'phone.db'));

    // The suggested command works: the phone's file holds the merged note.
    const id = /database (\S+)/.exec(out)?.[1] as string;
    const list = await rhizome(['list', id, '--db', join(dir, 'phone.db'), '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([{ id: 'note-1', data: { done: true, title: 'Buy oat milk' } }]);
  });

  it('--keep stays up; the rhizome put it suggests reaches both replicas; Ctrl-C exits 0', async () => {
    const run = demo(['--keep']);
    await run.waitFor('rhizome.js status');
    const suggestion = run.out().split('\n').find((l) => l.trim().startsWith('node packages/cli/bin/rhizome.js put'));
    expect(suggestion, run.out()).toBeDefined();
    // Run what it suggests (the bin, under this Node).
    const args = (suggestion as string).trim().replace(/^node packages\/cli\/bin\/rhizome\.js /, '').match(/'[^']*'|\S+/g)?.map((a) => a.replace(/^'|'$/g, '')) ?? [];
    const put = await rhizome(args);
    expect(put.code, put.stderr).toBe(0);
    await run.waitFor('laptop: node-upsert note-2');
    await run.waitFor('phone: node-upsert note-2');
    run.child.kill('SIGINT');
    expect(await run.exited, run.out()).toBe(0);
    expect(run.out()).toContain('Done.');
  });
});
