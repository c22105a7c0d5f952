/**
 * The Node/V8 flags a relay process runs with, and the re-launch that applies them to the
 * relay's own entry points (`rhizome-relay`; the `rhizome relay` launcher has the same logic in
 * plain JavaScript). Process-global by nature: nothing in the library calls this; only process
 * entries do. Light on purpose (no imports beyond Node built-ins): an entry imports it first,
 * before the relay's modules are loaded.
 *
 * Why: V8 grows its young generation (two semi-spaces) up to 2 × 16 MiB when a burst of
 * short-lived objects survives scavenges, and keeps it at that size, touched, while the
 * allocation rate stays above ~1 MB/s. A relay's connect bursts (handshakes, sessions opened
 * between peers) grow it, and the relayed health pings of an idle relay keep it busy, so the
 * relay's memory after a full GC carried ~32 MiB of young generation that a bare `ws` server
 * with silent clients does not (ARCHITECTURE § Relay, "The relay process"; BENCHMARKS § Issue 12
 * Session 12 (srvgc)). A relay's garbage dies within one read, so small semi-spaces cost it
 * little CPU.
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/** The young generation's semi-space limit of a relay process, in MiB (V8's default on 64-bit: 16). */
export const RELAY_MAX_SEMI_SPACE_MIB = 2;

/**
 * The Node flags the relay's own processes start with: `rhizome-relay`, `rhizome relay`, and the
 * compare bench's relay. Embedders that run `createRelayServer` in their own process pass them to
 * `node` themselves (`node --max-semi-space-size=2 app.js`, or in `NODE_OPTIONS`).
 * @example
 * ```sh
 * node --max-semi-space-size=2 my-relay.js
 * ```
 */
export const RELAY_NODE_FLAGS: readonly string[] = Object.freeze([`--max-semi-space-size=${RELAY_MAX_SEMI_SPACE_MIB}`]);

/** `--max_semi_space_size=4` → `max-semi-space-size` (V8 accepts `_` and `-` alike). */
function flagName(flag: string): string {
  return flag.replace(/^--?/, '').split('=')[0]!.replace(/_/g, '-');
}

/**
 * The flags of `RELAY_NODE_FLAGS` this process was not started with. A flag counts as set when its
 * name appears in `execArgv` or `NODE_OPTIONS` with any value: an operator's own
 * `--max-semi-space-size=16` wins over the relay's default.
 */
export function missingRelayNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env['NODE_OPTIONS'] ?? ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].filter((a) => a.startsWith('-')).map(flagName));
  return RELAY_NODE_FLAGS.filter((flag) => !given.has(flagName(flag)));
}

/**
 * The semi-space limit in MiB this process's V8 was given (`--max-semi-space-size` in `execArgv`
 * or `NODE_OPTIONS`; the last one wins, as in V8), or `undefined` when it runs with V8's default.
 */
export function maxSemiSpaceMiB(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env['NODE_OPTIONS'] ?? ''): number | undefined {
  let value: number | undefined;
  // Node applies NODE_OPTIONS before the command line's flags.
  for (const arg of [...nodeOptions.split(/\s+/), ...execArgv]) {
    if (arg.startsWith('-') && flagName(arg) === 'max-semi-space-size') {
      const n = Number(arg.split('=')[1]);
      if (Number.isFinite(n)) value = n;
    }
  }
  return value;
}

/**
 * Makes the current process a relay process with `RELAY_NODE_FLAGS`, if it is not one yet.
 * - Already started with them (or with the operator's own values): returns `undefined`; run the relay.
 * - Otherwise, where Node has `process.execve` (Node ≥ 22.15 on Linux and macOS) and the process
 *   has no IPC channel (`execve` would close it): replaces the process image with the same
 *   script, arguments and environment plus the flags (same pid, same stdio); does not return.
 * - Otherwise: runs the same script with the flags as a child process (stdio inherited, SIGINT /
 *   SIGTERM / SIGHUP passed on) and returns a promise of its exit code; the caller must not start
 *   a relay itself and should exit with that code.
 */
export function relaunchWithRelayNodeFlags(): Promise<number> | undefined {
  const missing = missingRelayNodeFlags();
  if (missing.length === 0) return undefined;
  const args = [...missing, ...process.execArgv, ...process.argv.slice(1)];
  if (typeof process.execve === 'function' && process.channel === undefined) {
    process.execve(process.execPath, [process.execPath, ...args], process.env);
  }
  const child = spawn(process.execPath, args, { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (child.exitCode === null) child.kill(signal);
    });
  }
  return new Promise((resolve) => {
    child.on('error', () => resolve(1));
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal])));
  });
}
