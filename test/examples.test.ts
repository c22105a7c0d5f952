// Every example runs, with the one command its README gives, as a child process that ends by
// itself; its output shows that it did what it says.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { createRelayServer } from '@rhizome/relay';
import { openDatabase } from '@rhizome/sync';

const ROOT = join(import.meta.dirname, '..');
const TSX_CLI = join(createRequire(import.meta.url).resolve('tsx/package.json'), '..', 'dist', 'cli.mjs');

/** The command of an example's README: `npm exec -- tsx <args>`; returns the tsx args. */
function readmeCommand(name: string): string[] {
  const readme = readFileSync(join(ROOT, 'examples', name, 'README.md'), 'utf8');
  const match = /`npm exec -- tsx ([^`]+)`/.exec(readme);
  if (!match) throw new Error(`examples/${name}/README.md has no \`npm exec -- tsx ...\` command`);
  return (match[1] as string).split(/\s+/);
}

/** Runs `npm exec -- tsx <args>` the way npm does: tsx's CLI under this Node. */
function runExample(name: string, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const args = readmeCommand(name);
  expect(args).toEqual(['--conditions=rhizome-source', `examples/${name}/main.ts`]);
  return runTsx(args, ROOT, timeoutMs);
}

function runTsx(args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode([TSX_CLI, ...args], cwd, timeoutMs);
}

/** Runs `node <args>` under this Node (the one npm scripts use). */
function runNode(args: string[], cwd: string, timeoutMs: number, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, NO_COLOR: '1', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('examples', () => {
  it('local-only: writes, merges, deletes, and finds it all after reopening the file', async () => {
    const r = await runExample('local-only');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('nodes: [{"id":"task-1","data":{"done":true,"title":"Buy milk"}}]');
    expect(r.stdout).toContain('after reopening: {"done":true,"title":"Buy milk"}');
    expect(r.stdout).toContain('task-2 after reopening: deleted');
  });

  it('yjs-text: concurrent edits of a Y.Text merge on both replicas and persist', async () => {
    const r = await runExample('yjs-text');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('bob has: "Hello world"');
    expect(r.stdout).toContain('merged: alice "Hello, dear world!", bob "Hello, dear world!"');
    expect(r.stdout).toContain(`bob's file after reopening: "Hello, dear world!"`);
  });

  it('presence: awareness states arrive, change, and go when a replica closes', async () => {
    const r = await runExample('presence');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('bob sees online: Ada, Bob (me)');
    expect(r.stdout).toContain('bob sees online: Ada at note-1:12, Bob (me)');
    expect(r.stdout).toContain('after ada left, bob sees: Bob (me)');
  });

  it('relay-two-peers: a late joiner catches up through the relay, then live changes flow', async () => {
    const r = await runExample('relay-two-peers');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/relay on ws:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout).toContain('bob synced, sees doc-1: {"owner":"alice","title":"Trip plan"}');
    expect(r.stdout).toContain('alice got doc-2 {"owner":"bob","title":"Packing list"} from bob');
    expect(r.stdout).toMatch(/the relay forwarded [1-9]\d* sealed frames/);
    expect(r.stdout.trim().endsWith('done')).toBe(true);
  });

  it('dht-discovery: two peers find each other through a bootstrap node and sync', async () => {
    const r = await runExample('dht-discovery', 90_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/bootstrap node 12D3KooW\w+ on \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+/);
    expect(r.stdout).toMatch(/b found a \(dht\): peers \["12D3KooW\w+"\]/);
    expect(r.stdout).toContain('b has sensor-1: {"celsius":21.5}');
    expect(r.stdout.trim().endsWith('done')).toBe(true);
  }, 100_000);

  it("the README's quick start runs as written with the repository's node (npx node), and a replica online receives note-1", async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Quick start for apps'));
    expect(section).toContain('Save as `app.mjs`');
    expect(section).toContain('RHIZOME_RELAY_URL=ws://127.0.0.1:8080 NOTES_DB="$ID" npx node app.mjs');
    const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    expect(code).toContain('process.env.RHIZOME_RELAY_URL');
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
    const id = generateDatabaseId();
    const replica = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url } });
    // As the README says: saved as app.mjs in the repository (so the packages resolve), run with
    // `npx node`, the Node 22 of node_modules/.bin (this process's own under npm scripts; no source
    // conditions: the built dist/), with the two variables set. Its
    // notes.db goes to a temp working directory.
    const file = join(ROOT, `.readme-app-${process.pid}.mjs`);
    const cwd = mkdtempSync(join(tmpdir(), 'rhizome-quickstart-'));
    try {
      writeFileSync(file, code as string);
      const r = await runNode([file], cwd, 60_000, { RHIZOME_RELAY_URL: relay.url, NOTES_DB: id });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual(["{ done: true, title: 'Hello' } 1", 'delivered']);
      expect(replica.get('note-1')).toEqual({ done: true, title: 'Hello' });
    } finally {
      rmSync(file, { force: true });
      rmSync(cwd, { recursive: true, force: true });
      await replica.close();
      await relay.close();
    }
  });
});
