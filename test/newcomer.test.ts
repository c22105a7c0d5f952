// The smaller items of the newcomer issue (#11) that no other test holds: one token variable
// (RHIZOME_RELAY_TOKEN, read by clients too; the old RHIZOME_TOKEN is not), a scratch .ts file in
// the repository root outside lint and type-check, README statements that tests elsewhere rely on
// (the Examples table, the proxy section), and the install's own engines check.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDatabaseId } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { ROOT, Running, rhizome, tempDir } from './cli-helpers.js';
import { README } from './shell-helpers.js';

describe('one token variable: RHIZOME_RELAY_TOKEN', () => {
  let relay: RelayServer;
  const temp = tempDir('rhizome-token-');
  beforeAll(async () => {
    relay = await createRelayServer({ port: 0, host: '127.0.0.1', token: 'sesame' });
  });
  afterAll(async () => {
    await relay.close();
    temp.cleanup();
  });

  it('a client given the token only in RHIZOME_RELAY_TOKEN is let in; one given only the old RHIZOME_TOKEN is refused and told the variable', async () => {
    const id = generateDatabaseId();
    const replica = new Running(['sync', id, '--db', join(temp.dir, 'replica.db'), '--relay', relay.url, '--json'], { RHIZOME_RELAY_TOKEN: 'sesame' });
    try {
      await replica.waitForJson((e) => e['type'] === 'peer-connected' || e['type'] === 'ready', 'the replica ready');
      const ok = await rhizome(['put', id, 'n1', '{"a":1}', '--db', join(temp.dir, 'a.db'), '--relay', relay.url, '--min-peers', '1', '--json'], { env: { RHIZOME_RELAY_TOKEN: 'sesame' } });
      expect(ok.code, ok.stderr).toBe(0);
      // Delivered to the replica, which also had the token from the variable only.
      expect(JSON.parse(ok.stdout.trim())).toMatchObject({ id: 'n1', peers: 1, delivered: true });
      const old = await rhizome(['put', id, 'n2', '{"a":2}', '--db', join(temp.dir, 'b.db'), '--relay', relay.url, '--min-peers', '1', '--timeout', '5000'], { env: { RHIZOME_TOKEN: 'sesame' } });
      expect(old.code).toBe(1);
      expect(old.stderr).toContain('saved locally, not delivered');
      expect(old.stderr).toContain('RHIZOME_RELAY_TOKEN');
    } finally {
      await replica.stop();
    }
  }, 60_000);

  it('the README names RHIZOME_RELAY_TOKEN for relay and clients, and never the old name', () => {
    expect(README).toContain('RHIZOME_RELAY_TOKEN');
    expect(README).not.toMatch(/RHIZOME_TOKEN\b/);
  });
});

describe('a scratch .ts file in the repository root', () => {
  it('is neither linted nor type-checked by npm test', async () => {
    const scratch = join(ROOT, `scratch-${process.pid}.ts`);
    writeFileSync(scratch, 'const unused: any = 1\n');
    try {
      expect(await new ESLint({ cwd: ROOT }).isPathIgnored(scratch)).toBe(true);
      const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
      const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
      expect(parsed.fileNames.length).toBeGreaterThan(10);
      expect(parsed.fileNames).not.toContain(scratch);
    } finally {
      rmSync(scratch, { force: true });
    }
  });
});

describe('README statements other tests rely on', () => {
  it("the Examples table gives each example's own README command (which test/examples.test.ts runs)", () => {
    const table = README.slice(README.indexOf('## Examples'), README.indexOf('## In the browser'));
    const rows = [...table.matchAll(/\| \[([a-z-]+)\]\(examples\/\1\) \|[^|]*\| `([^`]+)` \|/g)];
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (const [, name, command] of rows) {
      if (name === 'browser') {
        expect(command).toBe('npm run example:browser');
        continue;
      }
      const own = readFileSync(join(ROOT, 'examples', name as string, 'README.md'), 'utf8');
      expect(own, name).toContain(`\`${command}\``);
    }
  });

  it('the proxy section says to start the relay with --trust-proxy, matching the X-Forwarded-For the nginx block sets', () => {
    const section = README.slice(README.indexOf('**Behind a reverse proxy**'), README.indexOf('**A systemd unit**'));
    expect(section).toContain('proxy_set_header X-Forwarded-For');
    expect(section).toContain('--trust-proxy');
    expect(readFileSync(join(ROOT, 'relay/src/args.ts'), 'utf8')).toContain('--trust-proxy');
  });
});

describe("the install's own engines check (scripts/engines-check.mjs, run by postinstall)", () => {
  it("sorts packages npm's Node does not meet into noise (met by the scripts' Node) and real problems", () => {
    const root = mkdtempSync(join(tmpdir(), 'rhizome-engines-'));
    try {
      const pkg = (dir: string, name: string, engines?: string): void => {
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', ...(engines ? { engines: { node: engines } } : {}) }));
      };
      writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'root', workspaces: ['packages/dht'] }));
      pkg(join(root, 'packages/dht'), '@x/dht', '>=22');
      pkg(join(root, 'node_modules/old-ok'), 'old-ok', '>=18');
      pkg(join(root, 'node_modules/needs-22'), 'needs-22', '^22 || ^24 || >=26');
      pkg(join(root, 'node_modules/@s/needs-99'), '@s/needs-99', '>=99');
      pkg(join(root, 'node_modules/old-ok/node_modules/nested-22'), 'nested-22', '>=22');
      pkg(join(root, 'node_modules/no-engines'), 'no-engines');
      const script = `
        import { enginesCheck, loadSemver } from ${JSON.stringify(join(ROOT, 'scripts/engines-check.mjs'))};
        const semver = loadSemver(${JSON.stringify(ROOT)}, undefined);
        console.log(JSON.stringify(enginesCheck(${JSON.stringify(root)}, 'v20.20.2', 'v22.23.3', semver)));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({
        noise: ['@x/dht@1.0.0 (>=22)', 'needs-22@1.0.0 (^22 || ^24 || >=26)', 'nested-22@1.0.0 (>=22)'],
        real: ['@s/needs-99@1.0.0 (>=99)'],
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
