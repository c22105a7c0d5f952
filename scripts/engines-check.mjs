// The project's own engines check, for `npm install` run by an npm on an older Node than the one
// the project's scripts run on (the "node" devDependency, Node 22). npm checks every package's
// `engines` against the Node npm itself runs on (npm 11 has no setting to check against another
// Node) and prints one EBADENGINE block per package (a workspace package twice: its link and its
// folder). This check reads the same `engines` fields and sorts them into: needs a newer Node than
// npm's but is met by the scripts' Node (npm's warnings are noise: one line says so and names
// them) and not met by the scripts' Node either (a real problem: named as such).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Every package.json under node_modules (nested too) and the workspaces', with its name. */
function* packages(root) {
  const stack = [join(root, 'node_modules')];
  const workspaces = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).workspaces ?? [];
  for (const w of workspaces) yield join(root, w, 'package.json');
  while (stack.length > 0) {
    const dir = stack.pop();
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isDirectory() || e.name === '.bin' || e.name === '.cache') continue;
      const path = join(dir, e.name);
      if (e.name.startsWith('@')) {
        stack.push(path);
        continue;
      }
      if (existsSync(join(path, 'package.json'))) yield join(path, 'package.json');
      if (existsSync(join(path, 'node_modules'))) stack.push(join(path, 'node_modules'));
    }
  }
}

/**
 * npm's own semver (the one behind its EBADENGINE warnings), else the project's; undefined when
 * neither loads (then nothing is claimed).
 * @param {string} root @param {string | undefined} npmExecPath
 */
export function loadSemver(root, npmExecPath) {
  for (const [from, id] of [
    [npmExecPath, npmExecPath ? join(dirname(npmExecPath), '..', 'node_modules', 'semver') : undefined],
    [join(root, 'package.json'), 'semver'],
  ]) {
    if (!from || !id) continue;
    try {
      return createRequire(from)(id);
    } catch {
      // try the next
    }
  }
  return undefined;
}

/**
 * Packages (under `root`) whose `engines.node` npm's Node does not satisfy, split by whether
 * `scriptsNode` does: `noise` (npm's warning does not apply to the Node that runs them) and `real`.
 * @param {string} root @param {string} npmNode @param {string} scriptsNode @param {{ satisfies: Function }} semver
 */
export function enginesCheck(root, npmNode, scriptsNode, semver) {
  const noise = new Set();
  const real = new Set();
  for (const file of packages(root)) {
    let pkg;
    try {
      pkg = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      continue;
    }
    const range = pkg.engines?.node;
    if (typeof range !== 'string' || typeof pkg.name !== 'string') continue;
    if (semver.satisfies(npmNode, range, { includePrerelease: true })) continue;
    (semver.satisfies(scriptsNode, range, { includePrerelease: true }) ? noise : real).add(`${pkg.name}@${pkg.version} (${range})`);
  }
  return { noise: [...noise].sort(), real: [...real].sort() };
}
