#!/usr/bin/env node
// Postinstall: make sure better-sqlite3's native addon loads in the Node that runs this
// project's scripts. npm scripts run under the `node` devDependency (Node 22) even on a
// machine whose system Node is older; an addon compiled against the system Node's headers
// fails to load there, so we rebuild it against the headers of the Node in use.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { nodeHeadersDir } from './node-headers.mjs';

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

// Headers of the running Node (beside its binary, cached, or fetched once from the npm registry):
// see node-headers.mjs.
const nodedir = nodeHeadersDir(log);
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
