// What `rhizome` loads before it does anything: `--help` and bad usage must not pay for the
// database, the relay, libp2p or the metrics server (prom-client with the relay's helpers was a
// few hundred modules on every start), and in a checkout the launcher runs the command in its
// own process (one Node start, not two). On a loaded 2-core machine the CLI tests spent most of
// their 30 s budgets starting processes (BENCHMARKS.md, Session 14 (loose2)).
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, tempDir } from './cli-helpers.js';

let dir: string;
let cleanup: () => void;
let hook: string;

beforeAll(() => {
  ({ dir, cleanup } = tempDir('rhizome-cli-startup-'));
  // Preloaded into the process that runs BIN: records every module that process loads.
  hook = join(dir, 'record-loads.mjs');
  writeFileSync(
    hook,
    `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const loaded = [];
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
process.on('exit', () => writeFileSync(process.env.RECORD_LOADS, loaded.join('\\n')));
`,
  );
});
afterAll(() => cleanup());

/** Runs BIN with `args` and returns its exit code and the modules its own process loaded. */
function loadsOf(args: string[], name: string): Promise<{ code: number | null; stdout: string; modules: string[] }> {
  const record = join(dir, `${name}.txt`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(hook).href, BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', RECORD_LOADS: record },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, modules: readFileSync(record, 'utf8').split('\n') }));
  });
}

const HEAVY = [/\/packages\/sync\//, /\/packages\/store-sqlite\//, /\/relay\/(src|dist)\//, /\/packages\/transport-(relay|dht)\//, /node_modules\/(prom-client|ioredis|libp2p|@libp2p|ws|yjs|better-sqlite3)\//];

describe('rhizome starts light', () => {
  it('--help and bad usage run in the launcher process and load none of the database, relay, libp2p or metrics modules', async () => {
    const [help, usage] = await Promise.all([loadsOf(['--help'], 'help'), loadsOf(['sync', 'x', '--db', join(dir, 'a.db')], 'usage')]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: rhizome');
    expect(usage.code).toBe(2);
    for (const { modules } of [help, usage]) {
      // The command itself ran here (sources in a checkout, dist/ in an install), not in a child.
      expect(modules.some((m) => /\/packages\/cli\/(src\/program\.ts|dist\/program\.js)$/.test(m))).toBe(true);
      expect(modules.filter((m) => HEAVY.some((h) => h.test(m)))).toEqual([]);
    }
  });

  it('a local put loads the database but no transport and no metrics server', async () => {
    const put = await loadsOf(['put', 'Q7x_kP2vLr9mZt4wYb8nHs3c', 'n1', '{"a":1}', '--db', join(dir, 'local.db')], 'put');
    expect(put.code).toBe(0);
    expect(put.modules.some((m) => m.includes('/packages/sync/'))).toBe(true);
    expect(put.modules.filter((m) => /\/packages\/transport-|\/relay\/(src|dist)\/|node_modules\/(prom-client|ioredis|libp2p|@libp2p|ws)\//.test(m))).toEqual([]);
  });
});
