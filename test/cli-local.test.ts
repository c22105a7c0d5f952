// The `rhizome` command as a user runs it, on real files with no network: output, --json
// shapes, exit codes 0/1/2, and the error messages that say what to do.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveTopic, topicToHex } from '@rhizome/core';
import { run } from '../packages/cli/src/program.js';
import { weakIdReason } from '../packages/cli/src/warnings.js';
import { rhizome, tempDir } from './cli-helpers.js';

/** A fixed database id that is not weak (weak ids print a warning). */
const NOTES_ID = 'Q7x_kP2vLr9mZt4wYb8nHs3c';

let dir: string;
let cleanup: () => void;

beforeAll(() => {
  ({ dir, cleanup } = tempDir());
});
afterAll(() => cleanup());

describe('rhizome new-id', () => {
  it('prints a fresh 24-character URL-safe id, and {id, topic} with --json', async () => {
    const [a, b, j] = await Promise.all([rhizome(['new-id']), rhizome(['new-id']), rhizome(['new-id', '--json'])]);
    expect(a.code, a.stderr).toBe(0);
    const id = a.stdout.trim();
    expect(id).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(b.stdout.trim()).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(b.stdout.trim()).not.toBe(id);
    expect(j.code).toBe(0);
    const parsed = JSON.parse(j.stdout) as { id: string; topic: string };
    expect(Object.keys(parsed).sort()).toEqual(['id', 'topic']);
    expect(parsed.topic).toBe(topicToHex(deriveTopic(parsed.id)));
  });
});

describe('put, get, delete, list, status on a file', () => {
  it('writes, merges fields, reads back, lists, deletes; --json shapes', async () => {
    const db = join(dir, 'notes.db');
    const put = await rhizome(['put', NOTES_ID, 'n1', '{"title":"Hello","done":false}', '--db', db]);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout).toContain('put n1 in notes.db');

    const merge = await rhizome(['put', NOTES_ID, 'n1', '-', '--db', db, '--json'], { input: '{"done": true}' });
    expect(merge.code, merge.stderr).toBe(0);
    expect(JSON.parse(merge.stdout)).toEqual({ id: 'n1', data: { title: 'Hello', done: true }, peers: 0 });

    const second = await rhizome(['put', NOTES_ID, 'n2', '{"tags":["a","b"],"n":{"x":1.5}}', '--db', db]);
    expect(second.code, second.stderr).toBe(0);

    const [get, getJson, list, listJson] = await Promise.all([
      rhizome(['get', NOTES_ID, 'n1', '--db', db]),
      rhizome(['get', NOTES_ID, 'n2', '--db', db, '--json']),
      rhizome(['list', NOTES_ID, '--db', db]),
      rhizome(['list', NOTES_ID, '--db', db, '--json']),
    ]);
    expect(get.code, get.stderr).toBe(0);
    expect(JSON.parse(get.stdout)).toEqual({ title: 'Hello', done: true });
    expect(JSON.parse(getJson.stdout)).toEqual({ id: 'n2', data: { tags: ['a', 'b'], n: { x: 1.5 } } });
    expect(list.code).toBe(0);
    expect(list.stdout.trim().split('\n').map((l) => l.split('\t')[0])).toEqual(['n1', 'n2']);
    expect(JSON.parse(listJson.stdout)).toEqual([
      { id: 'n1', data: { done: true, title: 'Hello' } },
      { id: 'n2', data: { n: { x: 1.5 }, tags: ['a', 'b'] } },
    ]);

    const del = await rhizome(['delete', NOTES_ID, 'n1', '--db', db, '--json']);
    expect(del.code, del.stderr).toBe(0);
    expect(JSON.parse(del.stdout)).toEqual({ id: 'n1', deleted: true, peers: 0 });
    const again = await rhizome(['delete', NOTES_ID, 'n1', '--db', db, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ id: 'n1', deleted: false });

    const [status, statusJson] = await Promise.all([rhizome(['status', NOTES_ID, '--db', db]), rhizome(['status', NOTES_ID, '--db', db, '--json'])]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(topicToHex(deriveTopic(NOTES_ID)));
    expect(status.stdout).toMatch(/nodes\s+1/);
    const s = JSON.parse(statusJson.stdout) as Record<string, unknown>;
    expect(s).toMatchObject({ id: NOTES_ID, topic: topicToHex(deriveTopic(NOTES_ID)), db, nodes: 1, network: null, transport: 'disabled', peers: [] });
    expect(s['log']).toMatchObject({ updates: expect.any(Number), updateBytes: expect.any(Number), snapshotBytes: expect.any(Number) });
    expect((s['log'] as { updates: number }).updates).toBeGreaterThanOrEqual(4);
    expect(s['fileBytes']).toBeGreaterThan(0);
  }, 90_000); // a dozen CLI runs one after another: slow on a loaded 2-core machine

  it('get of a missing node exits 1 and names it; --json puts the error on stderr as JSON', async () => {
    const db = join(dir, 'missing.db');
    expect((await rhizome(['put', NOTES_ID, 'a', '{}', '--db', db])).code).toBe(0);
    const [text, json] = await Promise.all([rhizome(['get', NOTES_ID, 'nope', '--db', db]), rhizome(['get', NOTES_ID, 'nope', '--db', db, '--json'])]);
    expect(text.code).toBe(1);
    expect(text.stderr).toContain("no node 'nope'");
    expect(text.stdout).toBe('');
    expect(json.code).toBe(1);
    expect(json.stdout).toBe('');
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: 'ERR_NOT_FOUND', message: expect.stringContaining('nope'), hint: expect.any(String) } });
  });
});

describe('errors say what to do', () => {
  it('bad JSON: exit 2 with line, column and a caret under the spot', async () => {
    const db = join(dir, 'json.db');
    const r = await rhizome(['put', NOTES_ID, 'n1', '{"title": "x", done: true}', '--db', db]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid JSON');
    expect(r.stderr).toContain('line 1, column 16');
    const lines = r.stderr.split('\n');
    const at = lines.findIndex((l) => l.includes('{"title": "x", done: true}'));
    expect(at).toBeGreaterThan(-1);
    expect(lines[at + 1]?.indexOf('^')).toBe((lines[at] ?? '').indexOf('done'));

    const multi = await rhizome(['put', NOTES_ID, 'n1', '--file', '-', '--db', db, '--json'], { input: '{\n  "a": 1,\n  "b": [1, 2,]\n}' });
    expect(multi.code).toBe(2);
    const err = (JSON.parse(multi.stderr) as { error: { code: string; message: string } }).error;
    expect(err.code).toBe('ERR_USAGE');
    expect(err.message).toContain('line 3, column 14');

    const notObject = await rhizome(['put', NOTES_ID, 'n1', '[1,2]', '--db', db]);
    expect(notObject.code).toBe(2);
    expect(notObject.stderr).toContain('must be a JSON object');
  });

  it('a file that is not a database: exit 1, names the file and the problem, leaves it untouched', async () => {
    const db = join(dir, 'garbage.db');
    const bytes = Buffer.from('this is not SQLite at all, just some text that someone saved here\n'.repeat(4));
    writeFileSync(db, bytes);
    const [text, json] = await Promise.all([rhizome(['list', NOTES_ID, '--db', db]), rhizome(['put', NOTES_ID, 'n', '{}', '--db', db, '--json'])]);
    expect(text.code).toBe(1);
    expect(text.stderr).toContain(db);
    expect(text.stderr).toContain('not an SQLite database');
    expect(text.stderr).toContain('--db');
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stderr) as { error: { code: string } }).error.code).toBe('ERR_STORE_CORRUPT');
    expect(readFileSync(db).equals(bytes)).toBe(true);
  });

  it('a file from a newer Rhizome: exit 1 with ERR_STORE_VERSION naming the file', async () => {
    const db = join(dir, 'newer.db');
    expect((await rhizome(['put', NOTES_ID, 'n', '{"a":1}', '--db', db])).code).toBe(0);
    // Raise the schema version in the SQLite header (user_version, bytes 60..63, big-endian).
    const file = readFileSync(db);
    file.writeUInt32BE(99, 60);
    writeFileSync(db, file);
    const r = await rhizome(['get', NOTES_ID, 'n', '--db', db, '--json']);
    expect(r.code).toBe(1);
    const err = (JSON.parse(r.stderr) as { error: { code: string; message: string; hint: string } }).error;
    expect(err.code).toBe('ERR_STORE_VERSION');
    expect(err.message).toContain(db);
    expect(err.hint).toMatch(/upgrade/i);
  });

  it('a database file that does not exist, for a read: exit 1 naming it', async () => {
    const db = join(dir, 'nothing-here.db');
    const r = await rhizome(['list', 'x', '--db', db]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no database file ${db}`);
  });

  it('bad usage exits 2 and says what is wrong', async () => {
    const db = join(dir, 'usage.db');
    const cases = await Promise.all([
      rhizome([]),
      rhizome(['frobnicate']),
      rhizome(['get', 'x']),
      rhizome(['list', 'x', '--db', db, '--bogus']),
      rhizome(['list', 'x', '--db', db, '--relay', 'ws://127.0.0.1:1', '--no-mdns']),
      rhizome(['list', 'x']),
      rhizome(['sync', 'x', '--db', db]),
      rhizome(['put', 'x', 'n', '{}', '--db', db, '--timeout', 'soon']),
      rhizome(['list', 'x', '--db', db, '--relay', 'ftp://example.com']),
      rhizome(['list', 'x', '--db', db, '--min-peers', '1']),
    ]);
    const [none, unknown, missingArg, unknownOption, both, noDb, syncNoNet, badTimeout, badUrl, minPeersLocal] = cases;
    for (const r of cases) expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(none?.stderr).toContain('Usage: rhizome');
    expect(unknown?.stderr).toContain("unknown command 'frobnicate'");
    expect(missingArg?.stderr).toContain("missing required argument 'node-id'");
    expect(unknownOption?.stderr).toContain("unknown option '--bogus'");
    expect(both?.stderr).toContain('--no-mdns needs --dht');
    expect(noDb?.stderr).toContain('missing --db FILE');
    expect(syncNoNet?.stderr).toContain('sync needs a network');
    expect(badTimeout?.stderr).toContain('--timeout must be a positive integer');
    expect(badUrl?.stderr).toContain('--relay');
    expect(minPeersLocal?.stderr).toContain('--min-peers needs a network');
  });

  it('--help on every command exits 0 and shows an example', async () => {
    const commands = ['relay', 'sync', 'put', 'get', 'delete', 'list', 'status', 'dht-bootstrap', 'new-id'];
    // The launcher's two paths as processes, one at a time (eleven at once timed out above load
    // ~25): a plain command, and `relay`, which it re-executes with the relay's Node flags.
    const top = await rhizome(['--help']);
    const relayProcess = await rhizome(['relay', '--help']);
    const helpRelay = await rhizome(['help', 'relay']);
    expect(helpRelay.code).toBe(0);
    expect(helpRelay.stdout).toContain('--tls-cert');
    expect(relayProcess.code, relayProcess.stderr).toBe(0);
    expect(relayProcess.stdout).toBe(helpRelay.stdout);
    // Every command's help in this process: the exit code is what run() returns (main.ts sets it
    // as the process's), the text what it writes.
    const results: Array<{ code: number | null; stdout: string; stderr: string }> = [top];
    for (const c of commands) results.push(await runInProcess([c, '--help']));
    expect(results[0]!.stdout).toBe((await runInProcess(['--help'])).stdout);
    for (const [i, r] of results.entries()) {
      const what = i === 0 ? 'rhizome --help' : `rhizome ${commands[i - 1]} --help`;
      expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      expect(r.stdout, what).toMatch(/Examples?:/);
      expect(r.stdout, what).toContain('$ rhizome');
    }
    // Examples never show a weak database id (the id is the secret): "$ID" from `rhizome new-id`.
    const ids = results.flatMap((r) => [...r.stdout.matchAll(/\$ rhizome (?:sync|put|get|delete|list|status) (\S+)/g)].map((m) => m[1] as string));
    expect(ids.length).toBeGreaterThan(5);
    expect(ids.filter((id) => id !== '"$ID"' && weakIdReason(id, false) !== undefined)).toEqual([]);
  });
});

/** `rhizome <args>` run in this process (`run()` of the CLI, what the launcher runs): its exit code and output. */
async function runInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const streams = {
    stdout: { write: (s: string) => ((stdout += s), true) },
    stderr: { write: (s: string) => ((stderr += s), true) },
  } as unknown as Parameters<typeof run>[1];
  const code = await run(['node', 'rhizome', ...args], streams);
  return { code, stdout, stderr };
}
