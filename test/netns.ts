// Real network topologies for the NAT tests: Linux network namespaces, veth pairs and iptables
// NAT rules, built by the test (root) and torn down afterwards, also on failure. Addresses come
// from test-only ranges (198.18.0.0/15 for the "internet", 10.x for homes and LANs) and exist
// only inside the namespaces created here.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

/** Runs a command (argv, no shell); throws with its stderr on failure. */
export function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/** True if this process may create network namespaces (root with ip and iptables). */
export function canUseNetns(): boolean {
  try {
    const name = `rzprobe${randomBytes(3).toString('hex')}`;
    sh('ip', ['netns', 'add', name]);
    sh('ip', ['netns', 'del', name]);
    sh('iptables', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** A set of namespaces with a unique prefix; `destroy()` removes them all (idempotent). */
export class Topology {
  readonly prefix = `rz${randomBytes(3).toString('hex')}`;
  readonly #namespaces: string[] = [];
  readonly #children = new Set<ChildProcess>();

  /** Creates a namespace `<prefix>-<name>` with `lo` up; returns its full name. */
  ns(name: string): string {
    const full = `${this.prefix}-${name}`;
    sh('ip', ['netns', 'add', full]);
    this.#namespaces.push(full);
    this.exec(full, 'ip', ['link', 'set', 'lo', 'up']);
    return full;
  }

  /** Runs a command inside a namespace. */
  exec(ns: string, cmd: string, args: string[]): string {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
  }

  /** A veth pair between two namespaces: `a` gets `addrA` on `ifA`, `b` gets `addrB` on `ifB` (CIDR). */
  link(a: string, ifA: string, addrA: string, b: string, ifB: string, addrB: string): void {
    sh('ip', ['link', 'add', ifA, 'netns', a, 'type', 'veth', 'peer', 'name', ifB, 'netns', b]);
    this.exec(a, 'ip', ['addr', 'add', addrA, 'dev', ifA]);
    this.exec(b, 'ip', ['addr', 'add', addrB, 'dev', ifB]);
    this.exec(a, 'ip', ['link', 'set', ifA, 'up']);
    this.exec(b, 'ip', ['link', 'set', ifB, 'up']);
  }

  /** Makes a namespace forward packets (a router). */
  forward(ns: string): void {
    this.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  }

  /**
   * A home router: everything leaving `wan` is source-NATed to the router's address. `kind`
   * `'eim'` is plain MASQUERADE (Linux keeps the source port when it can: endpoint-independent
   * mapping, with connection-tracking filtering); `'symmetric'` adds `--random-fully` (a fresh
   * random port per connection: endpoint-dependent mapping). Unsolicited inbound connections are
   * not forwarded (no DNAT), as on a home router.
   */
  nat(router: string, wan: string, kind: 'eim' | 'symmetric'): void {
    this.forward(router);
    const extra = kind === 'symmetric' ? ['--random-fully'] : [];
    this.exec(router, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-o', wan, '-j', 'MASQUERADE', ...extra]);
    this.exec(router, 'iptables', ['-A', 'FORWARD', '-i', wan, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']);
    this.exec(router, 'iptables', ['-A', 'FORWARD', '-i', wan, '-j', 'DROP']);
  }

  /** Starts `node <fixture> <arg>` inside a namespace (killed by `destroy()`). */
  spawnNode(ns: string, fixture: string, arg: unknown): ChildProcess {
    const child = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--conditions=rhizome-source', '--import', 'tsx', join(ROOT, 'test', 'fixtures', fixture), JSON.stringify(arg)],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Kills every child (SIGKILL), then deletes every namespace (and so its links and rules). */
  async destroy(): Promise<void> {
    await Promise.all(
      [...this.#children].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    for (const ns of this.#namespaces.splice(0).reverse()) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
  }
}

/** A JSON message a fixture printed. */
export type Line = { type: string; t?: number; [key: string]: unknown };

/** A fixture process speaking JSON lines: collects what it prints, waits for a line, sends commands. */
export class LineChild {
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  readonly #listeners = new Set<() => void>();
  readonly proc: ChildProcess;

  constructor(proc: ChildProcess, readonly name: string) {
    this.proc = proc;
    let buffered = '';
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        try {
          this.lines.push(JSON.parse(line) as Line);
        } catch {
          // not ours
        }
      }
      for (const fn of [...this.#listeners]) fn();
    });
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
    proc.once('exit', () => {
      for (const fn of [...this.#listeners]) fn();
    });
  }

  /** The first line from index `from` on matching `pred`; rejects after `ms` or if the process exits. */
  waitFor(what: string, pred: (line: Line) => boolean, ms: number, from = 0): Promise<Line> {
    return new Promise<Line>((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.slice(from).find(pred);
        if (found) return done(null, found);
        if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
          done(new Error(`${this.name} exited (${this.proc.exitCode ?? this.proc.signalCode}) before ${what}; stderr: ${this.stderr.join('').slice(-800)}`));
        }
      };
      const timer = setTimeout(
        () => done(new Error(`${this.name}: timed out after ${ms} ms waiting for ${what}; last lines: ${JSON.stringify(this.lines.slice(-6))}; stderr: ${this.stderr.join('').slice(-800)}`)),
        ms,
      );
      const done = (error: Error | null, line?: Line): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        if (error) reject(error);
        else resolve(line!);
      };
      this.#listeners.add(check);
      check();
    });
  }

  send(command: Record<string, unknown>): void {
    this.proc.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  /** Asks for stats and returns the answer. */
  async stats(ms = 10_000): Promise<Line> {
    const from = this.lines.length;
    this.send({ cmd: 'stats' });
    return this.waitFor('stats', (l) => l.type === 'stats', ms, from);
  }

  /** Polls stats (each answer is an explicit settle point) until `pred` holds; bounded in count and time. */
  async statsUntil(what: string, pred: (stats: Line) => boolean, ms: number): Promise<Line> {
    const deadline = Date.now() + ms;
    let last: Line | undefined;
    for (let i = 0; i < 200 && Date.now() < deadline; i++) {
      last = await this.stats();
      if (pred(last)) return last;
      // Wait for the next line the replica prints (an event) or 250 ms, whichever comes first.
      const from = this.lines.length;
      await this.waitFor('any event', () => true, 250, from).catch(() => undefined);
    }
    const events = this.lines.filter((l) => l.type !== 'stats').slice(-10);
    throw new Error(`${this.name}: ${what} not reached within ${ms} ms; last stats ${JSON.stringify(last)}; last events ${JSON.stringify(events)}`);
  }
}
