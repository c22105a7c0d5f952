// The receiver-burst measurement (issue 10): a writer process puts `count` nodes, `perTick` per
// macrotask, through a real relay process to a receiver process that keeps an SQLite file; the
// receiver samples its own RSS. Used by `npm run burst` (scripts/burst.ts) and
// test/receiver-burst.test.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRelayProcess, REPO_ROOT, TSX_ARGS, type RelayProcess } from '@rhizome/relay/testing';

const PEER = fileURLToPath(new URL('./burst-peer.ts', import.meta.url));

/** One RSS sample of the receiver. */
export interface BurstSample {
  t: number;
  nodes: number;
  rss: number;
  hwm: number;
  heap: number;
  external: number;
}

/** What one burst cost the receiver. */
export interface BurstReport {
  count: number;
  perTick: number;
  /** How long the receiver was frozen mid-burst (0: not). */
  stallMs: number;
  /** Receiver RSS before it joined (bytes). */
  startRss: number;
  /** Receiver RSS once it held every node, flushed, and settled (median of 10 samples over 2 s). */
  steady: number;
  /** Receiver's peak RSS (Linux VmHWM: the kernel's high-water mark, not a sample). */
  peak: number;
  /** peak / steady. */
  ratio: number;
  /** From the receiver's start until it held every node (ms). */
  receivedMs: number;
  /** Relay process peak RSS (VmHWM). */
  relayPeak: number;
  samples: BurstSample[];
}

interface Peer {
  child: ChildProcess;
  lines: string[];
  stderr: () => string;
  waitFor: (prefix: string, timeoutMs: number) => Promise<string>;
}

function startPeer(args: string[], nodeArgs: string[], env: Record<string, string> = {}): Peer {
  const child = spawn(process.execPath, [...nodeArgs, ...TSX_ARGS, PEER, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: string[] = [];
  let partial = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of [...waiters]) w();
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (err = (err + chunk).slice(-8000)));
  child.once('exit', () => {
    for (const w of [...waiters]) w();
  });
  const waitFor = (prefix: string, timeoutMs: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`peer ${args[0]}: no '${prefix}' within ${timeoutMs} ms:\n${err}`)), timeoutMs);
      const finish = (error: Error | null, line?: string): void => {
        clearTimeout(timer);
        const i = waiters.indexOf(check);
        if (i >= 0) waiters.splice(i, 1);
        if (error) reject(error);
        else resolve(line!.slice(prefix.length).trim());
      };
      // Called on every line batch and on exit; registered once, removed when settled.
      const check = (): void => {
        const line = lines.find((l) => l.startsWith(prefix));
        if (line !== undefined) return finish(null, line);
        if (child.exitCode !== null || child.signalCode !== null) finish(new Error(`peer ${args[0]} exited (${child.exitCode ?? child.signalCode}) before '${prefix}':\n${err}`));
      };
      waiters.push(check);
      check();
    });
  return { child, lines, stderr: () => err, waitFor };
}

/**
 * Runs one burst and returns the receiver's figures. Every process it started is killed and the
 * temporary directory removed, also when it fails.
 */
export async function runBurst(options: {
  count: number;
  perTick: number;
  timeoutMs?: number;
  receiverNodeArgs?: string[];
  /** Freeze the receiver (SIGSTOP) for this long once it holds a quarter of the nodes: it falls behind the burst. */
  stallMs?: number;
  /** What the receiver does besides syncing (see burst-peer.ts): consume events, poll list(), poll Y.Map#size. */
  receiver?: 'plain' | 'events' | 'list' | 'size';
  /** Each put also carries a string field of this many bytes (default 0). */
  valueBytes?: number;
}): Promise<BurstReport> {
  const { count, perTick } = options;
  const timeoutMs = options.timeoutMs ?? 600_000;
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-burst-'));
  const id = `burst-${process.pid}-${Date.now()}`;
  let relay: RelayProcess | undefined;
  const peers: Peer[] = [];
  try {
    relay = await startRelayProcess(['--port', '0', '--host', '127.0.0.1']);
    const receiver = startPeer(['receiver', join(dir, 'receiver.db'), id, relay.url, String(count), String(perTick)], options.receiverNodeArgs ?? [], {
      BURST_RECEIVER: options.receiver ?? 'plain',
      BURST_VALUE_BYTES: String(options.valueBytes ?? 0),
    });
    peers.push(receiver);
    await receiver.waitFor('sample', 180_000);
    const writer = startPeer(['writer', join(dir, 'writer.db'), id, relay.url, String(count), String(perTick)], [], {
      BURST_VALUE_BYTES: String(options.valueBytes ?? 0),
    });
    peers.push(writer);
    if (options.stallMs) {
      const quarter = Math.floor(count / 4);
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline && receiver.child.exitCode === null) {
        const last = receiver.lines.findLast((l) => l.startsWith('sample '));
        if (last && (JSON.parse(last.slice(7)) as BurstSample).nodes >= quarter) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      receiver.child.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, options.stallMs));
      receiver.child.kill('SIGCONT');
    }
    // A writer that fails ends the run at once (its stderr in the error), not at the timeout.
    const writerFailed = new Promise<never>((_, reject) =>
      writer.child.once('exit', (code, signal) => {
        if (code !== 0) reject(new Error(`writer exited (${code ?? signal}) before the receiver was done:\n${writer.stderr()}`));
      }),
    );
    writerFailed.catch(() => undefined);
    const done = JSON.parse(await Promise.race([receiver.waitFor('done', timeoutMs), writerFailed])) as { nodes: number; receivedMs: number; steady: number; hwm: number; startRss: number };
    await writer.waitFor('written', 120_000);
    const relayPeak = relay.memory().peak;
    const samples = receiver.lines.filter((l) => l.startsWith('sample ')).map((l) => JSON.parse(l.slice(7)) as BurstSample);
    return { count, perTick, stallMs: options.stallMs ?? 0, startRss: done.startRss, steady: done.steady, peak: done.hwm, ratio: done.hwm / done.steady, receivedMs: done.receivedMs, relayPeak, samples };
  } finally {
    for (const p of peers) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await relay?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
