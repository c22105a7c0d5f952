#!/usr/bin/env node
// `prebench`: installs the comparison peers (bench/peers, a separate npm project, never a
// workspace and never a dependency of the packages) when they are missing, and makes sure
// better-sqlite3 (used by @hocuspocus/extension-sqlite) loads in the Node that runs the bench.
//
// npm scripts run under the root `node` devDependency (Node 22) while the system Node may be
// older, so the native addon is built from source against the headers of the running Node,
// found the way scripts/ensure-native.mjs finds them (it caches them under
// node_modules/.cache/rhizome-node-headers/<version>). Never fails the bench: when the peers
// cannot be installed, bench/compare.ts reports them as unavailable and measures the rest.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const log = (msg) => process.stdout.write(`[bench peers] ${msg}\n`);

const manifest = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const installed = (name) => existsSync(join(here, 'node_modules', name, 'package.json'));

function sqliteLoads() {
  const probe = "const D=require('better-sqlite3');const d=new D(':memory:');d.prepare('select 1').get();d.close()";
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: here, encoding: 'utf8' });
  return { ok: r.status === 0, why: (r.stderr || '').split('\n').find((l) => l.includes('Error')) ?? r.stderr };
}

function nodeHeaders() {
  const platformPkg = `node-${process.platform}-${process.arch}`;
  const prefix = dirname(dirname(process.execPath));
  const cacheDir = join(root, 'node_modules', '.cache', 'rhizome-node-headers', process.version);
  const hasHeaders = (dir) => existsSync(join(dir, 'include', 'node', 'node.h'));
  const found = [prefix, join(prefix, 'node_modules', platformPkg), cacheDir].find(hasHeaders);
  if (found) return found;
  log(`fetching headers of Node ${process.version} (${platformPkg}@${process.versions.node}) from the npm registry`);
  mkdirSync(cacheDir, { recursive: true });
  const packed = spawnSync(npmCmd[0], [...npmCmd.slice(1), 'pack', `${platformPkg}@${process.versions.node}`, '--pack-destination', cacheDir, '--silent'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const tarball = packed.stdout.trim().split('\n').pop();
  if (packed.status !== 0 || !tarball) return undefined;
  const untar = spawnSync('tar', ['-xzf', join(cacheDir, tarball), '-C', cacheDir, '--strip-components=1', 'package/include'], { stdio: 'inherit' });
  rmSync(join(cacheDir, tarball), { force: true });
  return untar.status === 0 && hasHeaders(cacheDir) ? cacheDir : undefined;
}

const npmCmd = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
const missing = Object.keys(manifest.dependencies).filter((name) => !installed(name));
if (missing.length === 0 && sqliteLoads().ok) process.exit(0);

const env = { ...process.env, npm_config_build_from_source: 'true' };
const nodedir = nodeHeaders();
if (nodedir) env.npm_config_nodedir = nodedir;
// node-gyp must itself run under this Node so that it targets this ABI.
env.PATH = `${dirname(process.execPath)}:${env.PATH ?? ''}`;
const verb = missing.length ? 'install' : 'rebuild';
log(`${verb} in bench/peers (${missing.length ? `missing: ${missing.join(', ')}` : 'better-sqlite3 does not load'}); Node ${process.version}, headers ${nodedir ?? '(node-gyp default)'}`);
const args = verb === 'install' ? ['install', '--no-audit', '--no-fund'] : ['rebuild', 'better-sqlite3'];
const r = spawnSync(npmCmd[0], [...npmCmd.slice(1), ...args], { cwd: here, stdio: 'inherit', env });
if (r.status !== 0) log(`npm ${verb} failed (exit ${r.status}); the comparison runs without the peers it lacks.`);
const after = sqliteLoads();
if (!after.ok) log(`better-sqlite3 does not load in bench/peers (${String(after.why).trim()}): Hocuspocus+SQLite is skipped.`);
else log(`peers ready (better-sqlite3 loads under Node ${process.version}).`);
