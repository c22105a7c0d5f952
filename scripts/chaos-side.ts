// The chaos harness's other processes: a second writer on one replica's file (SIGKILLed now and
// then). Each seed decides from its own random stream which of them it uses.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { JsonValue } from '@rhizome/core';
import type { Rng } from './chaos-rng.js';

const ROOT = join(import.meta.dirname, '..');

/** Counts of what the side processes did. */
export interface SideCounts {
  writers: number;
  writerKills: number;
  writerAcks: number;
  replicaKills: number;
  relayKills: number;
  diskFull: number;
}

interface SideOptions {
  dir: string;
  id: string;
  seed: number;
  enabled: boolean;
  tmpfs: boolean;
  log: (line: string) => void;
}

/** Spawns `scripts/<script>` under this Node with the source condition and tsx. */
export function spawnScript(script: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', join(ROOT, 'scripts', script), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

interface Writer {
  child: ChildProcess;
  prefix: string;
  acked: Set<string>;
  exited: Promise<void>;
  stderr: string;
}

export class SideProcesses {
  readonly counts: SideCounts = { writers: 0, writerKills: 0, writerAcks: 0, replicaKills: 0, relayKills: 0, diskFull: 0 };
  readonly #rng: Rng;
  readonly #o: SideOptions;
  readonly #useWriter: boolean;
  #sharedPath = '';
  #writers: Writer[] = [];
  #acked = new Map<string, Record<string, JsonValue>>();

  constructor(rng: Rng, options: SideOptions) {
    this.#rng = rng;
    this.#o = options;
    this.#useWriter = options.enabled && rng.chance(0.25);
  }

  describe(): string {
    return this.#useWriter ? ', a second process writes to r0.db' : '';
  }

  async start(sharedPath: string): Promise<void> {
    this.#sharedPath = sharedPath;
    if (this.#useWriter) this.#spawnWriter();
    return Promise.resolve();
  }

  #spawnWriter(): void {
    const prefix = `p${this.counts.writers}`;
    this.counts.writers++;
    const count = 50 + this.#rng.int(250);
    const child = spawnScript('chaos-writer.ts', [this.#sharedPath, this.#o.id, prefix, String(count), String(10 + this.#rng.int(60))]);
    const writer: Writer = { child, prefix, acked: new Set(), exited: Promise.resolve(), stderr: '' };
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buffer += d;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('ack ')) writer.acked.add(line.slice(4));
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (writer.stderr += d));
    writer.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    this.#writers.push(writer);
  }

  /** One step of the schedule that belongs to the side processes. */
  async step(_step: number): Promise<void> {
    if (!this.#useWriter) return;
    const running = this.#writers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    if (running.length > 0 && this.#rng.chance(0.5)) {
      const w = this.#rng.pick(running);
      w.child.kill('SIGKILL');
      await w.exited;
      this.counts.writerKills++;
    } else if (running.length === 0 && this.counts.writers < 3) {
      this.#spawnWriter();
    }
  }

  /** Waits for the writers (bounded), then adds every acknowledged write to `expected`. */
  async finish(expected: Map<string, Record<string, JsonValue>>): Promise<void> {
    for (const w of this.#writers) {
      const timer = setTimeout(() => w.child.kill('SIGKILL'), 20_000);
      await w.exited;
      clearTimeout(timer);
      if (w.child.exitCode !== null && w.child.exitCode !== 0) {
        throw new Error(`second writer ${w.prefix} exited with code ${w.child.exitCode}: ${w.stderr.slice(-500)}`);
      }
      for (const key of w.acked) {
        const i = Number(key.slice(w.prefix.length + 1));
        expected.set(key, { v: i, by: w.prefix });
        this.#acked.set(key, { v: i, by: w.prefix });
      }
      this.counts.writerAcks += w.acked.size;
    }
  }

  /** Kills whatever still runs. Idempotent. */
  async stop(): Promise<void> {
    for (const w of this.#writers) {
      if (w.child.exitCode === null && w.child.signalCode === null) {
        w.child.kill('SIGKILL');
        await w.exited;
      }
    }
  }
}
