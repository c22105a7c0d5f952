// Helpers for tests that run commands the way a user types them: a user's environment (none of
// the npm_* variables of the npm that runs the tests), README.md's code blocks, and shell scripts
// run in a private network namespace (their own 127.0.0.1, so README ports such as 8080 are free),
// every process of which is killed at the end, also on timeout.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root. */
export const ROOT = join(import.meta.dirname, '..');
/** README.md as committed. */
export const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Output and exit code of a finished command. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment of a user's shell: no npm_* variables of the npm that runs these tests, no
 * inherited Rhizome token, and this Node (the one npm scripts use) first on PATH.
 */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_OPTIONS') env[k] = v;
  env['PATH'] = `${dirname(process.execPath)}:${env['PATH'] ?? ''}`;
  delete env['RHIZOME_RELAY_TOKEN'];
  delete env['RHIZOME_TOKEN'];
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Runs `cmd args` to completion; after `timeoutMs` its whole process group is killed. */
export function run(cmd: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = userEnv()): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[test] killed after ${timeoutMs} ms`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      // Anything the command left behind in its group goes too.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group is gone already
      }
      resolve({ code, stdout, stderr });
    });
  });
}

/** A fenced code block of README.md. */
export interface ReadmeBlock {
  lang: string;
  code: string;
  /** The `## ` heading above it. */
  section: string;
  /** Its first line (how the tests name it). */
  first: string;
}

/** Every fenced block of README.md, in order. */
export function readmeBlocks(): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  let section = '';
  const lines = README.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith('## ')) section = line;
    const open = /^```(\w*)\s*$/.exec(line);
    if (!open) continue;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i] as string);
    blocks.push({ lang: open[1] as string, code: `${body.join('\n')}\n`, section, first: (body[0] ?? '').trim() });
  }
  return blocks;
}

/** The first ```lang block after the heading `heading` in README.md. */
export function readmeBlock(heading: string, lang: string): string {
  const block = readmeBlocks().find((b) => b.section === heading && b.lang === lang);
  if (!block) throw new Error(`README.md "${heading}" has no \`\`\`${lang} block`);
  return block.code;
}

/**
 * Runs a bash script in a new network and mount namespace (needs root, as the NAT tests do):
 * loopback up and private, so fixed README ports are free and nothing is reachable beyond it.
 * `up URL` waits (bounded, 60 s) until an HTTP server answers; background jobs are stopped when
 * the script ends. `cwd` is where the script starts; TMPDIR is `tmp`.
 */
export async function runIsolated(script: string, options: { cwd: string; tmp: string; timeoutMs: number; env?: Record<string, string> }): Promise<Run> {
  const file = join(options.tmp, `script-${Date.now()}-${Math.random().toString(16).slice(2)}.sh`);
  writeFileSync(
    file,
    `set -euo pipefail
shopt -s expand_aliases
ip link set lo up
export TMPDIR=${JSON.stringify(options.tmp)}
up() { for _ in $(seq 1 240); do curl -sk -o /dev/null "$1" && return 0; sleep 0.25; done; echo "not up after 60 s: $1" >&2; return 1; }
trap 'kill $(jobs -p) 2>/dev/null || true; wait || true' EXIT
${script}`,
  );
  return run('unshare', ['--net', '--mount', '--fork', 'bash', file], options.cwd, options.timeoutMs, userEnv(options.env));
}
