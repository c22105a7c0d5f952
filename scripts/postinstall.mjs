#!/usr/bin/env node
// `npm install` in the repository ends here: one line on which Node runs what, better-sqlite3
// built for the Node that runs the scripts (ensure-native.mjs), then `dist/` of every package
// built (tsc -b), so any script in the repository can import the packages by name.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enginesCheck, loadSemver } from './engines-check.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => process.stdout.write(`[rhizome postinstall] ${msg}\n`);

// npm itself may run on an older Node than the one its scripts run on (the "node" devDependency
// puts Node 22 first on the scripts' PATH). npm checks `engines` against its own Node, so on
// Node 20 it warns (EBADENGINE) about the packages that need Node 22; engines-check.mjs sorts
// those warnings into noise (met by the Node that runs the scripts) and real problems.
const npmNode = /\bnode\/(v[\d.]+)/.exec(process.env.npm_config_user_agent ?? '')?.[1];
if (npmNode !== undefined && npmNode !== process.version) {
  const semver = loadSemver(root, process.env.npm_execpath);
  const checked = semver === undefined ? undefined : enginesCheck(root, npmNode, process.version, semver);
  if (checked === undefined) {
    log(`npm runs on Node ${npmNode}; the project's scripts run on Node ${process.version} (the "node" devDependency).`);
  } else {
    if (checked.noise.length > 0) {
      log(`npm checked engines against its own Node ${npmNode}: the EBADENGINE warnings above (${checked.noise.map((p) => p.split(' ')[0]).join(', ')}) are met by Node ${process.version}, which runs the project's scripts — nothing to do.`);
    }
    if (checked.real.length > 0) {
      log(`WARNING: not met by Node ${process.version} either: ${checked.real.join(', ')}.`);
    }
  }
}

const steps = [
  ['better-sqlite3', [process.execPath, [join(root, 'scripts', 'ensure-native.mjs')]]],
  ['build', [process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', 'tsconfig.build.json']]],
];
for (const [name, [cmd, args]] of steps) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
  if (r.status === 0) continue;
  if (name === 'build') {
    // A work tree with a type error still installs; `npm test` (typecheck) reports it.
    log('building dist/ failed (see above); the packages import from dist/ only after `npm run build` succeeds.');
    process.exit(0);
  }
  process.exit(r.status ?? 1);
}
log(`built dist/ of every package: scripts here can \`import ... from '@rhizome/sync'\` with plain node.`);
