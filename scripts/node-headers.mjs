#!/usr/bin/env node
// The C headers of the Node that runs this script (include/node/node.h), for compiling native
// addons (better-sqlite3) with node-gyp without reaching nodejs.org: looked up beside the Node
// binary (a system Node under /usr, the registry's node-<platform>-<arch> package that the `node`
// devDependency unpacks), then in a cache under node_modules/.cache, else fetched once from the
// npm registry (the same node-<platform>-<arch> package, only its include/ directory kept).
// Used by ensure-native.mjs (postinstall) and by test/packaging.test.ts, which compiles
// better-sqlite3 in a fresh project: `node scripts/node-headers.mjs` prints the directory.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const hasHeaders = (dir) => existsSync(join(dir, 'include', 'node', 'node.h'));

/**
 * The directory holding include/node/node.h of this Node (use it as node-gyp's --nodedir /
 * npm_config_nodedir), or undefined when it is neither on disk nor fetchable.
 * @param {(msg: string) => void} log
 */
export function nodeHeadersDir(log = () => {}) {
  const platformPkg = `node-${process.platform}-${process.arch}`;
  const prefix = dirname(dirname(process.execPath));
  const cacheDir = join(ROOT, 'node_modules', '.cache', 'rhizome-node-headers', process.version);
  const found = [prefix, join(prefix, 'node_modules', platformPkg), cacheDir].find(hasHeaders);
  if (found) return found;
  log(`fetching headers of Node ${process.version} (${platformPkg}@${process.versions.node}) from the npm registry`);
  mkdirSync(cacheDir, { recursive: true });
  const npm = process.env.npm_execpath ? [process.execPath, process.env.npm_execpath] : ['npm'];
  const packed = spawnSync(npm[0], [...npm.slice(1), 'pack', `${platformPkg}@${process.versions.node}`, '--pack-destination', cacheDir, '--silent'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: cacheDir,
  });
  const tarball = packed.stdout?.trim().split('\n').pop();
  if (packed.status === 0 && tarball) {
    spawnSync('tar', ['-xzf', join(cacheDir, tarball), '-C', cacheDir, '--strip-components=1', 'package/include'], { stdio: 'inherit' });
    rmSync(join(cacheDir, tarball), { force: true });
  }
  return hasHeaders(cacheDir) ? cacheDir : undefined;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = nodeHeadersDir((msg) => process.stderr.write(`[rhizome node-headers] ${msg}\n`));
  if (dir === undefined) {
    process.stderr.write(`[rhizome node-headers] no headers of Node ${process.version} found or fetched\n`);
    process.exit(1);
  }
  process.stdout.write(`${dir}\n`);
}
