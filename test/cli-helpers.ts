// Helpers for the CLI tests: run the `rhizome` bin as a user does (a child process of the
// Node that runs the tests), collect its output, wait for lines of long-running commands.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The repository root. */
export const ROOT = join(import.meta.dirname, '..');
/** The bin a user runs (`npx rhizome` links to it). */
export const BIN = join(ROOT, 'packages/cli/bin/rhizome.js');

/** Output and exit code of a finished command. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment for child commands: no colours, no inherited Rhizome settings. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env['RHIZOME_TOKEN'];
  delete env['RHIZOME_SECRET'];
  delete env['RHIZOME_RELAY_TOKEN'];
  return { ...env, ...extra };
}

/** Runs `rhizome ...args` to completion (bounded by `timeoutMs`, then SIGKILL). */
export function rhizome(args: string[], options: { input?: string; timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env: childEnv(options.env) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A long-running `rhizome` command (sync, relay, dht-bootstrap) whose output lines we wait on. */
export class Running {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: Array<() => void> = [];

  /** `where`: another `rhizome` bin (e.g. one installed in a project) and its working directory. */
  constructor(args: string[], env?: Record<string, string>, where: { bin?: string; cwd?: string } = {}) {
    this.child = spawn(process.execPath, [where.bin ?? BIN, ...args], { cwd: where.cwd ?? ROOT, env: childEnv(env) });
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
      this.#notify();
    });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      this.#notify();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.#notify();
        resolve({ code, signal });
      });
    });
  }

  #notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Lines of stdout so far. */
  get lines(): string[] {
    return this.stdout.split('\n').filter((l) => l.length > 0);
  }

  /** stdout lines parsed as JSON (for `--json` commands). */
  get json(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Resolves with the first stdout line matching `predicate`; rejects on exit or after `timeoutMs`. */
  async waitForLine(predicate: (line: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(predicate);
      if (found !== undefined) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`rhizome exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves with the first JSON line matching `predicate`. */
  async waitForJson(predicate: (event: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    const line = await this.waitForLine(
      (l) => {
        try {
          return predicate(JSON.parse(l) as Record<string, unknown>);
        } catch {
          return false;
        }
      },
      what,
      timeoutMs,
    );
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}

/** A temp dir and its cleanup. */
export function tempDir(prefix = 'rhizome-cli-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
