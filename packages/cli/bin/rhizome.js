#!/usr/bin/env node
// Launcher of the `rhizome` command.
// - Installed from a package (npm install @rhizome/cli): runs the built dist/main.js.
// - In a checkout of the Rhizome repository (tsconfig.build.json beside package.json): runs the
//   TypeScript sources through tsx with the `rhizome-source` export condition, so an edit to any
//   package shows at once and a stale dist/ is never run; dist/ is used only when tsx is missing.
//   Where Node has `module.registerHooks` (>= 22.15) it does so in this process (a resolve hook
//   adds the condition, tsx's ESM hooks compile); otherwise in a child `node --conditions=...
//   --import tsx`, a second Node start (about 0.2 s of CPU per command).
// Rhizome runs on Node >= 20 (the DHT transport, libp2p 3, needs Node >= 22). Under an older
// Node, or in the repository, it re-runs itself with the Node 22 that the repository's `node`
// devDependency installed, when there is one.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = nodeModule.createRequire(import.meta.url);
const args = process.argv.slice(2);
const dist = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const source = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const inRepository = existsSync(fileURLToPath(new URL('../tsconfig.build.json', import.meta.url))) && existsSync(source);

function resolveOrNull(specifier) {
  try {
    return require.resolve(specifier);
  } catch {
    return null;
  }
}

const tsxPath = inRepository ? resolveOrNull('tsx') : null;
const useSource = tsxPath !== null || !existsSync(dist);
if (useSource && tsxPath === null) {
  process.stderr.write('rhizome: dist/ is not built and the TypeScript runner tsx is not installed; run `npm install` in the Rhizome repository (or `npm run build`).\n');
  process.exit(1);
}

const major = Number(process.versions.node.split('.')[0]);
let node = process.execPath;
if (major < 22) {
  const found = resolveOrNull('node/bin/node');
  if (found !== null && existsSync(found)) node = found;
  else if (major < 20) {
    process.stderr.write(`rhizome needs Node.js >= 20 (>= 22 for --dht), but this is ${process.version} (${process.execPath}).\n`);
    process.exit(1);
  }
}

// `rhizome relay` runs with the relay's Node flags (a small young generation: @rhizome/relay's
// RELAY_NODE_FLAGS, relay/src/node-flags.ts; test/relay-node-flags.test.ts keeps the two lists
// equal), unless this process or NODE_OPTIONS already sets them (an operator's own value wins).
const RELAY_NODE_FLAGS = ['--max-semi-space-size=2'];
const flagName = (flag) => flag.replace(/^--?/, '').split('=')[0].replace(/_/g, '-');
const given = new Set([...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].filter((a) => a.startsWith('-')).map(flagName));
const relayCommand = args[0] === 'relay';
const missingFlags = relayCommand ? RELAY_NODE_FLAGS.filter((flag) => !given.has(flagName(flag))) : [];
// A child started below gets the missing flags, or the value this launcher itself was given.
const childFlags = relayCommand ? [...missingFlags, ...process.execArgv.filter((a) => flagName(a) === 'max-semi-space-size')] : [];

// This Node can run the command itself: dist/, or the sources when it can add the export
// condition at run time (`--conditions` is otherwise a start-up flag).
const inProcess = node === process.execPath && (!useSource || typeof nodeModule.registerHooks === 'function');

if (inProcess && missingFlags.length > 0 && typeof process.execve === 'function' && process.channel === undefined) {
  // The same launcher again with the flags, in place of this process (same pid and stdio).
  process.execve(process.execPath, [process.execPath, ...missingFlags, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
if (inProcess && missingFlags.length === 0) {
  if (useSource) {
    // What `--conditions=rhizome-source --import tsx` does, for ES modules (all of Rhizome is).
    nodeModule.registerHooks({
      resolve: (specifier, context, nextResolve) =>
        nextResolve(specifier, context.conditions.includes('rhizome-source') ? context : { ...context, conditions: [...context.conditions, 'rhizome-source'] }),
    });
    // Found the way tsx itself was (a devDependency of the repository, not of this package).
    const { register } = await import(pathToFileURL(require.resolve('tsx/esm/api')).href);
    register();
  }
  await import(pathToFileURL(useSource ? source : dist).href);
} else {
  const nodeArgs = [...childFlags, ...(useSource ? ['--conditions=rhizome-source', '--import', pathToFileURL(tsxPath).href, source, ...args] : [dist, ...args])];
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
