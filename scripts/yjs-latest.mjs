#!/usr/bin/env node
// CI: Rhizome's fast paths through Yjs internals (packages/sync/src/yjs-guard.ts) against the
// newest yjs 13.x, lib0 0.2.x and y-protocols 1.x on the registry, not only the locked ones.
//
// It installs them into a temporary directory (the repository and its lock are not touched) and
// runs the differential tests of those fast paths (vitest.yjs-latest.config.ts) with every import
// of yjs, lib0 and y-protocols served from there. It fails if a test fails, and — since
// yjs-guard.test.ts asserts that every fast path passes its self-test — if a fast path declines on
// that yjs: an internal drifted, and Rhizome would run on the public Yjs API there (correct but
// slower) until the fast path is brought up to date.
//
//   npm run test:yjs-latest                       # newest yjs@^13
//   RHIZOME_YJS_SPEC=yjs@13.6.20 npm run test:yjs-latest   # another release
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const specs = [process.env.RHIZOME_YJS_SPEC || 'yjs@^13', 'lib0@^0.2', 'y-protocols@^1'];
const dir = mkdtempSync(join(tmpdir(), 'rhizome-yjs-latest-'));
const version = (base, name) => JSON.parse(readFileSync(join(base, 'node_modules', name, 'package.json'), 'utf8')).version;

let status = 1;
try {
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'rhizome-yjs-latest', private: true }));
  // npm itself: the one running this script (npm run), else the one on PATH.
  const npm = process.env.npm_execpath ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
  const install = spawnSync(npm[0], [...npm[1], 'install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', ...specs], { cwd: dir, stdio: 'inherit' });
  if (install.status !== 0) throw new Error(`npm install ${specs.join(' ')} failed`);
  const lines = ['yjs', 'lib0', 'y-protocols'].map((name) => {
    const theirs = version(dir, name);
    const ours = version(root, name);
    return `${name} ${theirs} (locked: ${ours}${theirs === ours ? ', the same' : ''})`;
  });
  process.stdout.write(`[yjs-latest] testing the yjs fast paths against ${lines.join(', ')}\n`);
  if (version(dir, 'yjs') === version(root, 'yjs')) process.stdout.write('[yjs-latest] the newest yjs 13.x is the locked one: this run guards the next release\n');
  const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const run = spawnSync(process.execPath, [vitest, 'run', '--config', 'vitest.yjs-latest.config.ts'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, RHIZOME_YJS_DIR: dir, RHIZOME_YJS_VERSION: version(dir, 'yjs') },
  });
  status = run.status ?? 1;
  if (status !== 0) process.stderr.write(`[yjs-latest] FAILED against yjs ${version(dir, 'yjs')}: a fast path through Yjs internals drifted or declined (see above; packages/sync/src/yjs-guard.ts)\n`);
} catch (error) {
  process.stderr.write(`[yjs-latest] ${error instanceof Error ? error.message : String(error)}\n`);
  status = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(status);
