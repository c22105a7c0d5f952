// The chaos harness's other processes, each used by some seeds (decided from the seed's own
// random stream): a second writer on one replica's file (SIGKILLed now and then), and a real relay
// process (SIGKILLed and restarted on the same port) with replica processes behind it (SIGKILLed
// and restarted on their files), bridged to the in-process replicas by one replica that joins
// both networks.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonValue } from '@rhizome/core';
import { RELAY_NODE_FLAGS } from '@rhizome/relay/node-flags';
import type { Rng } from './chaos-rng.js';

const ROOT = join(import.meta.dirname, '..');

/** Counts of what the side processes did. */
export interface SideCounts {
  writers: number;
  writerKills: number;
  writerAcks: number;
  relayStarts: number;
  relayKills: number;
  replicaProcesses: number;
  replicaKills: number;
  replicaAcks: number;
}

interface SideOptions {
  dir: string;
  id: string;
  seed: number;
  enabled: boolean;
  log: (line: string) => void;
}

/** What the side processes report back to the run: acknowledged writes and text tokens. */
export interface SideModel {
  unique: Map<string, Record<string, JsonValue>>;
  tokens: Set<string>;
}

/** Spawns `scripts/<script>` under this Node with the source condition and tsx (and `nodeFlags` before them). */
export function spawnScript(script: string, args: string[], stdin: 'ignore' | 'pipe' = 'ignore', nodeFlags: readonly string[] = []): ChildProcess {
  return spawn(process.execPath, [...nodeFlags, '--conditions=rhizome-source', '--import', 'tsx', join(ROOT, 'scripts', script), ...args], {
    cwd: ROOT,
    stdio: [stdin, 'pipe', 'pipe'],
  });
}

/** Starts the harness's relay process on `port`, with the relay's Node flags (as `rhizome relay` starts one). */
export function spawnChaosRelay(port: number): ChildProcess {
  return spawnScript('chaos-relay.ts', [String(port)], 'ignore', RELAY_NODE_FLAGS);
}

/** A child process whose stdout is read line by line. */
class Child {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  stderr = '';
  #lines: string[] = [];
  #waiters: Array<() => void> = [];
  onLine: (line: string) => void = () => undefined;

  constructor(child: ChildProcess) {
    this.child = child;
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buffer += d;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        this.#lines.push(line);
        this.onLine(line);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        for (const w of this.#waiters.splice(0)) w();
        resolve();
      }),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The next line (after those already taken) starting with `prefix`; rejects on exit or timeout. */
  async take(prefix: string, timeoutMs = 120_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#lines.findIndex((l) => l.startsWith(prefix));
      if (i >= 0) return this.#lines.splice(i, 1)[0]!;
      if (!this.running) throw new Error(`process exited (${this.child.exitCode ?? this.child.signalCode}) before '${prefix}': ${this.stderr.slice(-800)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no '${prefix}' from the process within ${timeoutMs} ms: ${this.stderr.slice(-800)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send(line: string): void {
    if (this.running) this.child.stdin?.write(`${line}\n`);
  }

  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}

interface ReplicaProcess {
  name: string;
  path: string;
  proc: Child | null;
  /** Writes sent and not yet acknowledged, by key: they count only once acknowledged. */
  pending: Map<string, Record<string, JsonValue> | null>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export class SideProcesses {
  /** Errors the side processes printed, by code. */
  readonly errors: Record<string, number> = {};
  readonly counts: SideCounts = { writers: 0, writerKills: 0, writerAcks: 0, relayStarts: 0, relayKills: 0, replicaProcesses: 0, replicaKills: 0, replicaAcks: 0 };
  readonly #rng: Rng;
  readonly #o: SideOptions;
  readonly #useWriter: boolean;
  readonly #useRelay: boolean;
  #model: SideModel | null = null;
  #sharedPath = '';
  #writers: Array<{ proc: Child; prefix: string; acked: Set<string> }> = [];
  #port = 0;
  #relay: Child | null = null;
  #replicas: ReplicaProcess[] = [];
  #writes = 0;

  constructor(rng: Rng, options: SideOptions) {
    this.#rng = rng;
    this.#o = options;
    this.#useWriter = options.enabled && rng.chance(0.2);
    this.#useRelay = options.enabled && rng.chance(0.15);
  }

  describe(): string {
    return (
      (this.#useWriter ? ', a second process writes to r0.db' : '') +
      (this.#useRelay ? `, a relay process with ${this.#replicas.length} replica processes behind it` : '')
    );
  }

  /** The relay URL for the bridging replica, when this seed uses a relay. */
  get relayUrl(): string | undefined {
    return this.#useRelay ? `ws://127.0.0.1:${this.#port}` : undefined;
  }

  async start(sharedPath: string, model: SideModel): Promise<void> {
    this.#sharedPath = sharedPath;
    this.#model = model;
    if (this.#useWriter) this.#spawnWriter();
    if (this.#useRelay) {
      this.#port = await freePort();
      await this.#startRelay();
      const count = 1 + this.#rng.int(2);
      for (let i = 0; i < count; i++) {
        const r: ReplicaProcess = { name: `c${i}`, path: join(this.#o.dir, `c${i}.db`), proc: null, pending: new Map() };
        this.#replicas.push(r);
        await this.#startReplica(r);
      }
    }
  }

  async #startRelay(): Promise<void> {
    const relay = new Child(spawnChaosRelay(this.#port));
    this.#relay = relay;
    this.counts.relayStarts++;
    await relay.take('ready');
  }

  async #startReplica(r: ReplicaProcess): Promise<void> {
    const proc = new Child(spawnScript('chaos-replica.ts', [r.path, this.#o.id, this.relayUrl!, r.name], 'pipe'));
    r.proc = proc;
    this.counts.replicaProcesses++;
    proc.onLine = (line) => {
      if (!line.startsWith('ack ')) return;
      const key = line.slice(4);
      if (!r.pending.has(key)) return;
      const data = r.pending.get(key);
      r.pending.delete(key);
      this.counts.replicaAcks++;
      if (data === null || data === undefined) this.#model!.tokens.add(key);
      else this.#model!.unique.set(key, data);
    };
    await proc.take('ready');
  }

  #spawnWriter(): void {
    const prefix = `p${this.counts.writers}`;
    this.counts.writers++;
    const count = 50 + this.#rng.int(250);
    const proc = new Child(spawnScript('chaos-writer.ts', [this.#sharedPath, this.#o.id, prefix, String(count), String(10 + this.#rng.int(60))]));
    const writer = { proc, prefix, acked: new Set<string>() };
    proc.onLine = (line) => {
      if (line.startsWith('ack ')) writer.acked.add(line.slice(4));
      else if (line.startsWith('error ')) {
        const code = `writer:${line.split(' ')[1]}`;
        this.errors[code] = (this.errors[code] ?? 0) + 1;
        this.#o.log(`second writer ${prefix}: ${line}`);
      }
    };
    this.#writers.push(writer);
  }

  /** One step of the schedule that belongs to the side processes. */
  async step(step: number): Promise<void> {
    const choices: Array<() => Promise<void>> = [];
    if (this.#useWriter) choices.push(() => this.#writerStep());
    if (this.#useRelay) choices.push(() => this.#relayStep(step), () => this.#relayStep(step), () => this.#replicaWrite(step));
    if (choices.length === 0) return;
    await this.#rng.pick(choices)();
  }

  async #writerStep(): Promise<void> {
    const running = this.#writers.filter((w) => w.proc.running);
    if (running.length > 0 && this.#rng.chance(0.5)) {
      await this.#rng.pick(running).proc.kill();
      this.counts.writerKills++;
    } else if (running.length === 0 && this.counts.writers < 3) {
      this.#spawnWriter();
    }
  }

  async #relayStep(step: number): Promise<void> {
    const roll = this.#rng.next();
    if (roll < 0.3) {
      if (this.#relay?.running) {
        await this.#relay.kill();
        this.counts.relayKills++;
      } else {
        await this.#startRelay();
      }
    } else if (roll < 0.6) {
      const r = this.#rng.pick(this.#replicas);
      if (r.proc?.running) {
        await r.proc.kill();
        this.counts.replicaKills++;
        // Writes it had not acknowledged may or may not have been made: they are not expected.
        r.pending.clear();
      } else {
        await this.#startReplica(r);
      }
    } else {
      await this.#replicaWrite(step);
    }
  }

  async #replicaWrite(step: number): Promise<void> {
    const live = this.#replicas.filter((r) => r.proc?.running);
    if (live.length === 0) return;
    const r = this.#rng.pick(live);
    const n = 1 + this.#rng.int(5);
    for (let i = 0; i < n; i++) {
      this.#writes++;
      if (this.#rng.chance(0.3)) {
        const token = `[${r.name}.${step}.${i}]`;
        r.pending.set(token, null);
        r.proc!.send(`text ${token} ${this.#rng.next()}`);
      } else {
        const key = `k-${r.name}-${step}-${i}`;
        const data = { v: this.#writes, by: r.name };
        r.pending.set(key, data);
        r.proc!.send(`put ${key} ${JSON.stringify(data)}`);
      }
    }
    return Promise.resolve();
  }

  /**
   * Ends the faults: the writers finish (bounded), the relay and every replica process run again
   * (their acknowledged writes are then all in the model).
   */
  async heal(): Promise<void> {
    for (const w of this.#writers) {
      const timer = setTimeout(() => w.proc.child.kill('SIGKILL'), 30_000);
      await w.proc.exited;
      clearTimeout(timer);
      if (w.proc.child.exitCode !== null && w.proc.child.exitCode !== 0) {
        throw new Error(`second writer ${w.prefix} exited with code ${w.proc.child.exitCode}: ${w.proc.stderr.slice(-500)}`);
      }
      for (const key of w.acked) this.#model!.unique.set(key, { v: Number(key.slice(w.prefix.length + 1)), by: w.prefix });
      this.counts.writerAcks += w.acked.size;
    }
    this.#writers = [];
    if (!this.#useRelay) return;
    if (!this.#relay?.running) await this.#startRelay();
    for (const r of this.#replicas) if (!r.proc?.running) await this.#startReplica(r);
    // Every write sent is acknowledged before convergence is judged.
    for (const r of this.#replicas) {
      const deadline = Date.now() + 30_000;
      while (r.pending.size > 0) {
        if (Date.now() > deadline) throw new Error(`replica process ${r.name} did not acknowledge ${r.pending.size} writes`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /** The replica processes' state digests (sha256 of the encoded state), with their RSS and queues. */
  async digests(): Promise<Array<{ name: string; digest: string; rss: number; queued: number }>> {
    const out = [];
    for (const r of this.#replicas) {
      r.proc!.send('digest');
      const [, digest, rss, queued] = (await r.proc!.take('digest ')).split(' ');
      out.push({ name: r.name, digest: digest!, rss: Number(rss), queued: Number(queued) });
    }
    return out;
  }

  /** The relay process's current RSS in bytes (Linux /proc), or 0 when no relay runs. */
  relayRss(): number {
    const pid = this.#relay?.running ? this.#relay.child.pid : undefined;
    if (pid === undefined) return 0;
    try {
      return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      return 0; // exited meanwhile
    }
  }

  /** Closes the replica processes cleanly (exit 0 expected); returns their files. */
  async closeReplicas(): Promise<string[]> {
    for (const r of this.#replicas) {
      const proc = r.proc!;
      proc.send('close');
      await proc.take('closed');
      await proc.exited;
      if (proc.child.exitCode !== 0) throw new Error(`replica process ${r.name} exited with ${proc.child.exitCode} on close: ${proc.stderr.slice(-500)}`);
    }
    return this.#replicas.map((r) => r.path);
  }

  /** Kills whatever still runs. Idempotent. */
  async stop(): Promise<void> {
    for (const w of this.#writers) await w.proc.kill();
    for (const r of this.#replicas) await r.proc?.kill();
    await this.#relay?.kill();
  }
}

/** sha256 hex of bytes (what replica processes report as their digest). */
export function digestOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
