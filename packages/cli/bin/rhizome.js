#!/usr/bin/env node
// Launcher of the `rhizome` command. When the package is built (dist/main.js exists) it runs
// that; otherwise it runs the TypeScript sources through tsx with the `rhizome-source` export
// condition, so the command works straight after `npm install` with no build step.
// Rhizome needs Node >= 22; under an older `node` it re-runs itself with the Node that the
// repository's `node` devDependency installed, when there is one.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const dist = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const source = fileURLToPath(new URL('../src/main.ts', import.meta.url));

function findNode22() {
  try {
    const candidate = require.resolve('node/bin/node');
    return existsSync(candidate) ? candidate : null;
  } catch {
    return null;
  }
}

let node = process.execPath;
if (Number(process.versions.node.split('.')[0]) < 22) {
  const found = findNode22();
  if (!found) {
    process.stderr.write(
      `rhizome needs Node.js >= 22, but this is ${process.version} (${process.execPath}).\n` +
        'Install Node 22 or newer, or run it from the repository with `npx rhizome ...` after `npm install`.\n',
    );
    process.exit(1);
  }
  node = found;
}

if (node === process.execPath && existsSync(dist)) {
  await import(new URL('../dist/main.js', import.meta.url).href);
} else {
  let nodeArgs = [dist, ...args];
  if (!existsSync(dist)) {
    let tsx;
    try {
      tsx = pathToFileURL(require.resolve('tsx')).href;
    } catch {
      process.stderr.write('rhizome: the TypeScript runner tsx is not installed; run `npm install` in the Rhizome repository (or `npm run build`).\n');
      process.exit(1);
    }
    nodeArgs = ['--conditions=rhizome-source', '--import', tsx, source, ...args];
  }
  // The extra IPC channel ties the child's life to this launcher: if the launcher dies (even
  // by SIGKILL), the channel closes and the child stops too (see src/main.ts).
  const child = spawn(node, nodeArgs, { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
  // The terminal sends SIGINT to the whole process group; the child handles it. Signals sent
  // to this launcher alone are passed on, and the launcher exits the way the child did.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (child.exitCode === null) child.kill(signal);
    });
  }
  child.on('error', (error) => {
    process.stderr.write(`rhizome: could not start ${node}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else {
      process.exit(code ?? 1);
    }
  });
}
