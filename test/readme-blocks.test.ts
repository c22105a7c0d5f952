// "The README's every command block runs as written." Every ```sh block of README.md is in the
// list below, with what happens to it: run here (in a private network namespace, so its fixed
// ports are free and 127.0.0.1 is its own; long-running servers are started in the background,
// checked, and stopped), run by another test or by CI itself (named, and checked to still do
// so), or not run (with the reason). A block that is not in the list, or an entry whose block is
// gone, fails the first test: nothing is skipped silently.
//
// Running a block here changes it only as the list says: a long-running command gets ` &` (a
// test has no second terminal) followed by a readiness check, and the few placeholder paths
// listed in `substitute` are made concrete. Needs root (network namespaces), as test/nat.test.ts.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_CERT, TEST_KEY } from './fixtures/tls.js';
import { README, ROOT, readmeBlocks, runIsolated, type ReadmeBlock } from './shell-helpers.js';

type How =
  | { run: 'here'; test: string }
  | { run: 'elsewhere'; by: string; evidence: () => void }
  | { run: 'no'; why: string };

/** Every ```sh block of README.md, by its first line. */
const BLOCKS: Record<string, How> = {
  'sudo apt-get update && sudo apt-get install -y redis-server chromium iptables': {
    run: 'elsewhere',
    by: '.ci/run runs these three commands on a clean clone (as root, so without sudo); npm test cannot rerun npm install and itself',
    evidence: () => {
      const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
      expect(ci).toContain('apt-get update && $SUDO apt-get install -y redis-server chromium iptables');
      expect(ci).toMatch(/^npm install\b/m);
      expect(ci).toMatch(/^npm test\b/m);
    },
  },
  'npm start': {
    run: 'elsewhere',
    by: "test/demo.test.ts runs the start script's command (and --keep)",
    evidence: () => {
      const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
      expect(pkg.scripts['start']).toBe('node --conditions=rhizome-source --import tsx scripts/demo.ts');
      expect(readFileSync(join(ROOT, 'test/demo.test.ts'), 'utf8')).toContain("['--conditions=rhizome-source', '--import', 'tsx', 'scripts/demo.ts', ...args]");
    },
  },
  'mkdir -p /tmp/rhizome-packs && npm pack --workspaces --pack-destination /tmp/rhizome-packs': {
    run: 'elsewhere',
    by: 'test/packaging.test.ts runs this block as written (its two placeholder paths made temp dirs) and uses the install',
    evidence: () => expect(readFileSync(join(ROOT, 'test/packaging.test.ts'), 'utf8')).toContain("readmeBlock('## Use it in your app', 'sh')"),
  },
  'npm run example:browser      # --port 5173 --relay-port 8787 --db ID': { run: 'here', test: 'npm run example:browser serves the page and its relay' },
  'npm exec -- vitest run --project chromium    # the store contract inside Chromium (vitest browser mode)': {
    run: 'elsewhere',
    by: 'npm test runs both (the chromium project and test/browser/*); running them from inside npm test would run them twice',
    evidence: () => expect(readFileSync(join(ROOT, 'vitest.config.ts'), 'utf8')).toContain("name: 'chromium'"),
  },
  'npx rhizome --help                                      # and `npx rhizome <command> --help`: options and an example': {
    run: 'here',
    test: 'npx rhizome --help, and the alias',
  },
  'rhizome relay --port 8080 --host 127.0.0.1                                   # terminal 1': { run: 'here', test: 'the two-terminal session' },
  'mkdir -p /var/lib/rhizome     # a directory the relay\'s user may write (systemd: StateDirectory=rhizome)': {
    run: 'here',
    test: 'the mailbox relay (on a tmpfs /var/lib of its own)',
  },
  'node packages/cli/bin/rhizome.js relay --port 443 --tls-cert /etc/letsencrypt/live/relay.example.com/fullchain.pem \\': {
    run: 'here',
    test: 'the TLS relay on port 443 (a test certificate in place of the letsencrypt files)',
  },
  'docker build -t rhizome-relay .': {
    run: 'no',
    why: 'needs a Docker daemon and Docker Hub (FROM node:22-bookworm-slim); CI has neither. The Dockerfile runs the same relay command that the blocks above run.',
  },
  'rhizome relay --port 8080 --redis redis://10.0.0.5:6379     # on each machine (or RHIZOME_RELAY_REDIS)': {
    run: 'here',
    test: 'the scale-out relay on Redis at 10.0.0.5, and a replica given two relays',
  },
  'rhizome sync "$ID" --db replica.db --relay wss://relay.example.com --metrics-port 9464   # --metrics-host 0.0.0.0 to expose it': {
    run: 'here',
    test: "the replica's metrics endpoint",
  },
};

/** Blocks whose 'run here' test is registered below (filled while the tests are collected). */
const registered = new Set<string>();
/** The title of the test that runs the block starting with `prefix` (and marks it registered). */
function title(prefix: string): string {
  const key = Object.keys(BLOCKS).find((k) => k.startsWith(prefix));
  const how = key === undefined ? undefined : BLOCKS[key];
  if (key === undefined || how?.run !== 'here') throw new Error(`no 'run here' entry starts with ${prefix}`);
  registered.add(key);
  return how.test;
}

const shBlocks = readmeBlocks().filter((b) => b.lang === 'sh');
function block(first: string): ReadmeBlock {
  const found = shBlocks.find((b) => b.first === first);
  if (!found) throw new Error(`README.md has no sh block starting with: ${first}`);
  return found;
}
/** Lines of a block with `\`-continuations joined. */
function lines(b: ReadmeBlock): string[] {
  return b.code.replace(/\\\n\s*/g, ' ').split('\n').filter((l) => l.trim() !== '');
}
/** A long-running command line, put in the background (before its comment). */
function background(line: string, log?: string): string {
  const command = line.replace(/\s+#.*$/, '');
  return log === undefined ? `${command} &` : `${command} > ${log} 2>&1 &`;
}
/** The README's alias line (from the `npx rhizome --help` block), so `rhizome` works as written. */
const ALIAS = lines(block(Object.keys(BLOCKS).find((k) => k.startsWith('npx rhizome --help'))!)).find((l) => l.startsWith('alias rhizome='))!;

let tmp = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'rhizome-readme-'));
});
afterAll(() => {
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
});

describe("README.md's shell blocks", () => {
  it('every sh block is classified (run here, run elsewhere — checked — or not run, with a reason), and every entry has its block', () => {
    const firsts = shBlocks.map((b) => b.first);
    expect(firsts.filter((f) => !(f in BLOCKS))).toEqual([]);
    expect(Object.keys(BLOCKS).filter((k) => !firsts.includes(k))).toEqual([]);
    for (const how of Object.values(BLOCKS)) if (how.run === 'elsewhere') how.evidence();
    // Each 'run here' block has its test below.
    expect(Object.keys(BLOCKS).filter((k) => BLOCKS[k]?.run === 'here' && !registered.has(k))).toEqual([]);
    expect(README).toContain('## Use it in your app');
  });

  it(title('npx rhizome --help'), async () => {
    const b = block(Object.keys(BLOCKS).find((k) => k.startsWith('npx rhizome --help'))!);
    const r = await runIsolated(`${b.code}rhizome new-id\n`, { cwd: ROOT, tmp, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Usage: rhizome/);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^[A-Za-z0-9_-]{20,}$/);
  }, 70_000);

  it(title('rhizome relay --port 8080 --host 127.0.0.1'), async () => {
    const [terminal1, ...terminal2] = lines(block('rhizome relay --port 8080 --host 127.0.0.1                                   # terminal 1'));
    expect(terminal1).toMatch(/# terminal 1$/);
    const script = [ALIAS, background(terminal1 as string), 'up http://127.0.0.1:8080/healthz', ...terminal2].join('\n');
    const r = await runIsolated(`${script}\n`, { cwd: ROOT, tmp, timeoutMs: 110_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/delivered to 1 peer/);
    expect(r.stdout).toContain('"title":"Hello"');
    // The replica in the background prints events too: the status is the last JSON line.
    const status = JSON.parse(r.stdout.split('\n').filter((l) => l.startsWith('{')).at(-1) as string) as { peers: unknown[] };
    expect(status.peers.length).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it(title('mkdir -p /var/lib/rhizome'), async () => {
    const [mkdir, relay] = lines(block("mkdir -p /var/lib/rhizome     # a directory the relay's user may write (systemd: StateDirectory=rhizome)"));
    const script = [
      ALIAS,
      'mount -t tmpfs tmpfs /var/lib', // this namespace's own /var/lib: the host's is untouched
      mkdir,
      background(relay as string),
      'up http://127.0.0.1:8080/healthz',
      'curl -s http://127.0.0.1:8080/healthz; echo',
      'test -s /var/lib/rhizome/mailbox.db && echo mailbox-file-created',
    ].join('\n');
    const r = await runIsolated(`${script}\n`, { cwd: ROOT, tmp, timeoutMs: 60_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('mailbox-file-created');
  }, 70_000);

  it(title('node packages/cli/bin/rhizome.js relay --port 443'), async () => {
    const certs = join(tmp, 'letsencrypt');
    mkdirSync(certs, { recursive: true });
    writeFileSync(join(certs, 'fullchain.pem'), TEST_CERT);
    writeFileSync(join(certs, 'privkey.pem'), TEST_KEY);
    const [relay] = lines(block('node packages/cli/bin/rhizome.js relay --port 443 --tls-cert /etc/letsencrypt/live/relay.example.com/fullchain.pem \\'));
    const substituted = (relay as string).replaceAll('/etc/letsencrypt/live/relay.example.com', certs);
    const script = [background(substituted), 'up https://127.0.0.1:443/healthz', 'curl -sk https://127.0.0.1:443/healthz; echo'].join('\n');
    const r = await runIsolated(`${script}\n`, { cwd: ROOT, tmp, timeoutMs: 60_000, env: { RELAY_TOKEN: 'a-token-for-this-test-only' } });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/"status":\s*"(ok|serving)"|"ok":\s*true|healthy|serving/);
  }, 70_000);

  it(title('rhizome relay --port 8080 --redis'), async () => {
    const [relay, sync] = lines(block('rhizome relay --port 8080 --redis redis://10.0.0.5:6379     # on each machine (or RHIZOME_RELAY_REDIS)'));
    const script = [
      ALIAS,
      'ip addr add 10.0.0.5/32 dev lo', // Redis where the README puts it, inside this namespace
      // protected mode refuses non-loopback clients without a password; this namespace is private.
      `redis-server --bind 10.0.0.5 --port 6379 --protected-mode no --save '' --appendonly no --dir "$TMPDIR" > /dev/null &`,
      'for _ in $(seq 1 120); do redis-cli -h 10.0.0.5 ping 2>/dev/null | grep -q PONG && break; sleep 0.25; done',
      background(relay as string),
      'up http://127.0.0.1:8080/healthz',
      'for _ in $(seq 1 120); do curl -s http://127.0.0.1:8080/healthz | grep -q \'"redis":"up"\' && break; sleep 0.25; done',
      'curl -s http://127.0.0.1:8080/healthz; echo',
      'ID=$(rhizome new-id)',
      'cd "$(mktemp -d)"',
      background(sync as string, 'sync.log'),
      // The replica runs (the example hosts do not resolve here: it says so and keeps retrying).
      'for _ in $(seq 1 240); do grep -q ready sync.log && break; sleep 0.25; done',
      'cat sync.log',
    ].join('\n');
    const r = await runIsolated(`${script}\n`, { cwd: ROOT, tmp, timeoutMs: 100_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('"redis":"up"');
    expect(r.stdout).toMatch(/ready/);
  }, 110_000);

  it(title('rhizome sync "$ID" --db replica.db --relay wss://relay.example.com --metrics-port'), async () => {
    const [sync, ...curls] = lines(block('rhizome sync "$ID" --db replica.db --relay wss://relay.example.com --metrics-port 9464   # --metrics-host 0.0.0.0 to expose it'));
    const script = [ALIAS, 'ID=$(rhizome new-id)', 'cd "$(mktemp -d)"', background(sync as string), 'up http://127.0.0.1:9464/healthz', ...curls].join('\n');
    const r = await runIsolated(`${script}\n`, { cwd: ROOT, tmp, timeoutMs: 60_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/\{"status":"(healthy|degraded|unreachable)"/);
    expect(r.stdout).toMatch(/^rhizome_replica_\w+/m);
  }, 70_000);

  it(title('npm run example:browser'), async () => {
    const [serve] = lines(block('npm run example:browser      # --port 5173 --relay-port 8787 --db ID'));
    const script = [background(serve as string, '"$TMPDIR/example.log"'), 'up http://127.0.0.1:5173/', 'curl -s http://127.0.0.1:5173/ -o "$TMPDIR/page.html"', 'head -c 300 "$TMPDIR/page.html"; echo', 'up http://127.0.0.1:8787/healthz', 'cat "$TMPDIR/example.log"'].join('\n');
    const r = await runIsolated(`${script}\n`, { cwd: ROOT, tmp, timeoutMs: 90_000 });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout.toLowerCase()).toContain('<!doctype html');
    expect(r.stdout).toContain('open      http://');
  }, 100_000);
});
