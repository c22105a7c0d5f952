// The packages as an app outside this repository gets them: README "Use it in your app" run as
// written (npm pack of every workspace, then `npm install` of the tarballs in a fresh project
// under os.tmpdir(), better-sqlite3 compiled there by its own install script), then checks on
// that one install: what each tarball holds, that it declares what it imports, that plain node
// runs every entry, that the README quick start syncs through a relay to a second replica (all
// from the installed packages), and that the packed packages bundle for a page.
//
// Cost: the install compiles better-sqlite3 (about 70 s of CPU); the rest takes a few seconds.
// Nothing leaves the machine except npm's registry requests (served from npm's cache after the
// repository's own install). node-gyp gets this Node's headers through npm_config_nodedir
// (scripts/node-headers.mjs: beside the binary, cached, or from the npm registry), because
// nodejs.org (node-gyp's default) and GitHub (better-sqlite3's prebuilt binaries) may be
// unreachable here; a user with a network gets both by themselves. JOBS=max lets node-gyp compile
// better-sqlite3's two sources in parallel (same CPU, less wall time).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleForBrowser } from './browser/bundle.js';
import { Running } from './cli-helpers.js';
import { readmeBlock, ROOT, run, userEnv, type Run } from './shell-helpers.js';

const WORKSPACES = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
const MANIFESTS = WORKSPACES.map((w) => JSON.parse(readFileSync(join(ROOT, w, 'package.json'), 'utf8')) as { name: string; version: string });
const PACKAGES = MANIFESTS.map((m) => m.name);
/** `npm pack`'s file name for a workspace package: `@rhizome/core` 0.1.0 → rhizome-core-0.1.0.tgz. */
function tarballOf(name: string): string {
  const m = MANIFESTS.find((p) => p.name === name)!;
  return `${name.slice(1).replace('/', '-')}-${m.version}.tgz`;
}
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
/** Imports whose specifier is computed at run time (so bundlers skip them), by file: what they load. */
const COMPUTED_IMPORTS: Record<string, string[]> = {
  '@rhizome/core/dist/create.js': ['@rhizome/transport-relay', '@rhizome/transport-dht'],
  '@rhizome/transport-relay/dist/link.js': ['ws'],
  // The launcher imports its own dist/main.js by file URL (and, in a checkout of the repository
  // only, its src/main.ts and tsx's API, found by require.resolve like tsx itself).
  '@rhizome/cli/bin/rhizome.js': [],
};

/** Every file under `dir` whose name ends with one of `exts`. */
function walk(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path, exts));
    else if (exts.some((e) => entry.name.endsWith(e))) out.push(path);
  }
  return out;
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`), or null for relative/builtin. */
function packageOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || BUILTINS.has(specifier) || specifier.startsWith('node:')) return null;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] as string);
}

/** Static and literal dynamic import specifiers of an ES module (tsc output), and computed `import(x)` count. */
function importsOf(code: string): { specifiers: string[]; computed: number } {
  const specifiers: string[] = [];
  const patterns = [/(?:^|[\s;}])(?:import|export)\s[^'";]*?\sfrom\s*['"]([^'"]+)['"]/gm, /(?:^|[\s;])import\s*['"]([^'"]+)['"]/gm, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of code.matchAll(re)) specifiers.push(m[1] as string);
  const computed = [...code.matchAll(/\bimport\s*\(\s*(?!['"])/g)].length;
  return { specifiers, computed };
}

let tmp = '';
let app = '';
let packs = '';
let installed: Run | undefined;
let setupError: Error | undefined;

/** Fails the test with the install's output when the shared install did not succeed. */
function requireInstall(): void {
  if (setupError) throw setupError;
  if (installed === undefined) throw new Error('the install did not run');
}

describe('packed packages installed in a fresh project outside the workspace', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'rhizome-packed-'));
    packs = join(tmp, 'rhizome-packs');
    app = join(tmp, 'your-app');
    mkdirSync(app);
    try {
      // This Node's headers for node-gyp (see the header comment).
      const headers = spawnSync(process.execPath, [join(ROOT, 'scripts/node-headers.mjs')], { encoding: 'utf8', env: userEnv() });
      if (headers.status !== 0) throw new Error(`no Node headers: ${headers.stderr}`);
      const nodedir = headers.stdout.trim();
      // The app: any directory with a package.json.
      const init = await run('npm', ['init', '-y'], app, 60_000);
      if (init.code !== 0) throw new Error(`npm init -y failed: ${init.stderr}`);
      // README "Use it in your app", as written, with its two placeholder paths made concrete.
      const block = readmeBlock('## Use it in your app', 'sh').replaceAll('/tmp/rhizome-packs', packs).replaceAll('/path/to/your-app', app);
      installed = await run('bash', ['-euo', 'pipefail', '-c', block], ROOT, 540_000, userEnv({ npm_config_nodedir: nodedir, npm_config_prefer_offline: 'true', JOBS: 'max' }));
      if (installed.code !== 0) throw new Error(`README "Use it in your app" failed (exit ${installed.code}):\n${installed.stdout}\n${installed.stderr}`);
    } catch (error) {
      setupError = error as Error;
    }
  }, 600_000);

  afterAll(() => {
    if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
  });

  it('the README block packs every workspace and installs the tarballs (better-sqlite3 compiled there)', () => {
    requireInstall();
    expect(relative(ROOT, app).startsWith('..')).toBe(true);
    const tarballs = readdirSync(packs).sort();
    expect(tarballs).toEqual(PACKAGES.map(tarballOf).sort());
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies).sort()).toEqual([...PACKAGES].sort());
    for (const spec of Object.values(pkg.dependencies)) expect(spec).toMatch(/^file:.*\.tgz$/);
    // Installed copies, not links into this repository.
    for (const name of PACKAGES) expect(existsSync(join(app, 'node_modules', name, 'package.json')), name).toBe(true);
    expect(existsSync(join(app, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))).toBe(true);
    expect(installed?.stderr).not.toMatch(/npm (warn|error) Unknown (env|cli|project) config/);
  });

  it('every tarball holds its built dist/ and every file its package.json points at', async () => {
    requireInstall();
    for (const name of PACKAGES) {
      const tarball = join(packs, tarballOf(name));
      const list = await run('tar', ['-tzf', tarball], tmp, 30_000);
      expect(list.code).toBe(0);
      const files = new Set(list.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, '')));
      expect([...files].some((f) => f.startsWith('dist/') && f.endsWith('.js')), `${name} has dist/*.js`).toBe(true);
      const pkg = JSON.parse(readFileSync(join(app, 'node_modules', name, 'package.json'), 'utf8')) as { exports: unknown; bin?: Record<string, string> };
      const targets: string[] = [];
      const collect = (value: unknown, key: string): void => {
        if (typeof value === 'string') {
          if (key !== 'rhizome-source') targets.push(value);
        } else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) collect(v, k);
      };
      collect(pkg.exports, '');
      for (const bin of Object.values(pkg.bin ?? {})) targets.push(bin);
      expect(targets.length).toBeGreaterThan(0);
      for (const target of targets) expect(files.has(target.replace(/^\.\//, '')), `${name}: ${target} is in the tarball`).toBe(true);
      expect([...files].filter((f) => f.endsWith('.test.ts') || f.endsWith('.tsbuildinfo')), name).toEqual([]);
    }
  });

  it("every package declares each package its dist/ imports (dependencies, peer or optional)", () => {
    requireInstall();
    const problems: string[] = [];
    const installedNames = new Set(PACKAGES);
    for (const name of PACKAGES) {
      const dir = join(app, 'node_modules', name);
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
      const declared = new Set([name, ...Object.keys(pkg['dependencies'] ?? {}), ...Object.keys(pkg['peerDependencies'] ?? {}), ...Object.keys(pkg['optionalDependencies'] ?? {})]);
      const files = [...walk(join(dir, 'dist'), ['.js']), ...(existsSync(join(dir, 'bin')) ? walk(join(dir, 'bin'), ['.js']) : [])];
      expect(files.length, name).toBeGreaterThan(0);
      for (const file of files) {
        const key = `${name}/${relative(dir, file)}`;
        const { specifiers, computed } = importsOf(readFileSync(file, 'utf8'));
        const dynamic = COMPUTED_IMPORTS[key];
        if (computed > 0 && dynamic === undefined) problems.push(`${key}: import() of a computed specifier this test does not know (add it to COMPUTED_IMPORTS)`);
        for (const spec of [...specifiers, ...(dynamic ?? [])]) {
          const dep = packageOf(spec);
          if (dep !== null && !declared.has(dep)) problems.push(`${key} imports '${spec}' but ${name} does not declare ${dep}`);
        }
      }
      // @rhizome dependencies come from the tarballs, at the version packed.
      for (const [dep, range] of Object.entries({ ...pkg['dependencies'], ...pkg['peerDependencies'] })) {
        if (dep.startsWith('@rhizome/')) {
          expect(installedNames.has(dep), `${name} depends on ${dep}, which is not packed`).toBe(true);
          expect(range).toBe(MANIFESTS.find((m) => m.name === dep)?.version);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('plain node (no --conditions) imports every package entry from the install', async () => {
    requireInstall();
    const entries = PACKAGES.flatMap((name) => {
      const pkg = JSON.parse(readFileSync(join(app, 'node_modules', name, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
      // ./testing needs vitest (a peer for test suites) and ./browser is the page entry.
      return Object.keys(pkg.exports)
        .filter((sub) => sub !== './testing' && sub !== './browser')
        .map((sub) => (sub === '.' ? name : `${name}/${sub.slice(2)}`));
    });
    const script = `for (const e of ${JSON.stringify(entries)}) { const m = await import(e); if (Object.keys(m).length === 0) throw new Error(e + ' exports nothing'); } console.log('imported ' + ${entries.length});`;
    const r = await run(process.execPath, ['--input-type=module', '-e', script], app, 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`imported ${entries.length}`);
    expect(entries).toContain('@rhizome/sync');
  });

  it("the README quick start runs there with plain node, through the installed relay, and the installed CLI's replica receives note-1", async () => {
    requireInstall();
    const code = readmeBlock('## Quick start for apps', 'js');
    expect(code).toContain('process.env.RHIZOME_RELAY_URL');
    writeFileSync(join(app, 'app.mjs'), code);
    const bin = join(app, 'node_modules/.bin/rhizome');
    const relay = new Running(['relay', '--port', '0', '--host', '127.0.0.1', '--json'], undefined, { bin, cwd: app });
    let replica: Running | undefined;
    try {
      const listening = await relay.waitForJson((e) => e['type'] === 'listening', 'the relay listening', 60_000);
      const url = listening['url'] as string;
      expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
      // The installed launcher gives the relay its Node flags (RELAY_NODE_FLAGS) by re-executing
      // itself in place: one process, the one this test started.
      expect(listening['maxSemiSpaceMiB']).toBe(2);
      expect(listening['pid']).toBe(relay.child.pid);
      const ids = await run(process.execPath, [bin, 'new-id'], app, 30_000);
      const id = ids.stdout.trim();
      expect(id.length).toBeGreaterThanOrEqual(16);
      replica = new Running(['sync', id, '--db', 'replica.db', '--relay', url, '--json'], undefined, { bin, cwd: app });
      await replica.waitForJson((e) => e['type'] === 'ready', 'the replica ready', 60_000);
      const r = await run(process.execPath, ['app.mjs'], app, 60_000, userEnv({ RHIZOME_RELAY_URL: url, NOTES_DB: id }));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual(["{ done: true, title: 'Hello' } 1", 'delivered']);
      await replica.waitForJson((e) => e['type'] === 'node-upsert' && e['id'] === 'note-1', "the replica's note-1 event", 30_000);
      expect((await replica.stop('SIGINT')).code).toBe(0);
      const got = await run(process.execPath, [bin, 'get', id, 'note-1', '--db', 'replica.db', '--json'], app, 30_000);
      expect(got.code, got.stderr).toBe(0);
      expect(JSON.parse(got.stdout.trim())).toEqual({ id: 'note-1', data: { done: true, title: 'Hello' } });
    } finally {
      await replica?.stop();
      await relay.stop();
    }
  }, 120_000);

  it("the machine's own node (first on PATH besides the Node 22 of this repository) syncs two in-memory replicas through the installed relay", async () => {
    requireInstall();
    // The user's Node: on this machine and in CI the system Node 20 (the packages say engines >= 20);
    // where there is no other, the Node that runs the tests. In-memory replicas need no native addon
    // (better-sqlite3 was compiled for the Node that ran npm).
    const mine = realpathSync(process.execPath);
    const other = (process.env['PATH'] ?? '')
      .split(delimiter)
      .map((dir) => join(dir, 'node'))
      .find((candidate) => existsSync(candidate) && realpathSync(candidate) !== mine);
    const node = other ?? process.execPath;
    const script = `
      import { createRelayServer } from '@rhizome/relay';
      import { openDatabase } from '@rhizome/sync';
      import { generateDatabaseId } from '@rhizome/core';
      const relay = await createRelayServer({ port: 0, host: '127.0.0.1' });
      const id = generateDatabaseId();
      const a = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url } });
      const b = await openDatabase({ id, transport: { mode: 'relay', relayUrl: relay.url } });
      a.put('n', { v: 1 });
      await a.whenDelivered({ minPeers: 1, timeoutMs: 20000 });
      console.log(process.version + ' ' + JSON.stringify(b.get('n')));
      await a.close(); await b.close(); await relay.close();`;
    const r = await run(node, ['--input-type=module', '-e', script], app, 60_000);
    expect(r.code, r.stderr).toBe(0);
    const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
    expect(r.stdout.trim()).toBe(`${version} {"v":1}`);
  }, 70_000);

  it('the packed packages bundle for a page: no Node built-in is reachable from @rhizome/sync, -store-browser or -transport-relay', async () => {
    requireInstall();
    for (const contents of [
      "export { openDatabase } from '@rhizome/sync';",
      "export { openBrowserStore } from '@rhizome/store-browser';",
      "export { createTransportFromConfig } from '@rhizome/transport-relay';",
    ]) {
      const bundle = await bundleForBrowser({ contents }, { sources: false, resolveDir: app });
      expect(bundle.nodeBuiltins, contents).toEqual([]);
      // Resolved from the fresh project's node_modules (the tarballs' dist/), not this repository.
      const inputs = Object.keys(bundle.metafile.inputs);
      expect(inputs.some((p) => p.includes('node_modules/@rhizome/') && p.includes('/dist/')), contents).toBe(true);
      expect(inputs.filter((p) => p.includes('/src/') && p.includes('@rhizome')), contents).toEqual([]);
    }
  }, 60_000);
});
