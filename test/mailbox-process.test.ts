// The mailbox in real relay processes: SQLite is loaded only with --mailbox (the plain relay stays
// light), and the relay binary refuses a damaged mailbox file at start with a clear message.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RELAY_BIN, REPO_ROOT, TSX_ARGS } from '@rhizome/relay/testing';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rhizome-mailbox-proc-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PROBE = `
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); loaded.push(r.url); return r; } });
const { createRelayServer } = await import('@rhizome/relay');
const mailbox = process.argv[2];
const relay = await createRelayServer({ port: 0, host: '127.0.0.1', ...(mailbox ? { mailbox } : {}) });
await relay.close();
process.stdout.write(JSON.stringify(loaded));
`;

describe('relay processes with and without a mailbox', () => {
  it('a relay without --mailbox never loads SQLite; with it, it does', () => {
    const probe = join(import.meta.dirname, `.mailbox-probe-${process.pid}.mjs`);
    writeFileSync(probe, PROBE);
    try {
      const run = (...args: string[]): string[] => {
        const r = spawnSync(process.execPath, [...TSX_ARGS, probe, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 30_000 });
        expect(r.status, r.stderr).toBe(0);
        return JSON.parse(r.stdout) as string[];
      };
      const plain = run();
      expect(plain.some((u) => u.includes('/relay/src/server.ts'))).toBe(true);
      expect(plain.filter((u) => /better-sqlite3|sqlite-store/.test(u))).toEqual([]);
      const withMailbox = run(join(dir, 'probe-mailbox.db'));
      expect(withMailbox.some((u) => /better-sqlite3/.test(u))).toBe(true);
    } finally {
      rmSync(probe, { force: true });
    }
  }, 60_000);

  it('rhizome-relay --mailbox DAMAGED exits 1 naming the file, and leaves it untouched', () => {
    const path = join(dir, 'garbage.db');
    const bytes = Buffer.alloc(64 * 1024, 0x5a);
    Buffer.from('SQLite format 3\u0000').copy(bytes, 0); // looks like SQLite, is not
    writeFileSync(path, bytes);
    const digest = createHash('sha256').update(readFileSync(path)).digest('hex');
    const r = spawnSync(process.execPath, [...TSX_ARGS, RELAY_BIN, '--port', '0', '--host', '127.0.0.1', '--mailbox', path], {
      encoding: 'utf8',
      cwd: REPO_ROOT,
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toMatch(/refusing to start/);
    expect(r.stderr).toContain('[ERR_STORE_CORRUPT]');
    expect(r.stdout).not.toMatch(/listening/);
    expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(digest);
  }, 60_000);
});
