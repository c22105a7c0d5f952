// The relay's own processes run with the relay's Node flags (a bounded young generation,
// relay/src/node-flags.ts): `rhizome-relay` started without them re-launches itself with them
// (same pid: execve), `rhizome relay` gets them from its launcher, an operator's own value wins,
// and the launcher's copy of the list is the relay's.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { RELAY_NODE_FLAGS } from '@rhizome/relay';
import { freePort, startRelayProcess, type RelayProcess } from '@rhizome/relay/testing';
import { startServer } from '../bench/relay.js';
import { spawnChaosRelay, spawnScript } from '../scripts/chaos-side.js';
import { BIN, ROOT, Running } from './cli-helpers.js';

/** The Node flags of a running process (Linux /proc), before its script. */
function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

const relays: RelayProcess[] = [];
const running: Running[] = [];
afterAll(async () => {
  await Promise.all([...relays.map((r) => r.stop()), ...running.map((r) => r.stop('SIGKILL'))]);
});

describe('the relay process runs with the relay Node flags', () => {
  // startRelayProcess (@rhizome/relay/testing) is how the relay tests, scripts/soak-relay.ts,
  // scripts/burst-run.ts and bench/cluster.ts start their relays: rhizome-relay by plain node.
  it('rhizome-relay started by plain node re-launches itself with them, in place (same pid), and still serves and stops cleanly', async () => {
    const relay = await startRelayProcess(['--port', '0', '--host', '127.0.0.1']);
    relays.push(relay);
    const args = commandLine(relay.child.pid!);
    for (const flag of RELAY_NODE_FLAGS) expect(args).toContain(flag);
    const health = await fetch(relay.url.replace(/^ws/, 'http') + '/healthz');
    expect(health.status).toBe(200);
    expect(await relay.stop()).toBe(0);
    expect(relay.output()).toContain('stopped');
  });

  it('rhizome relay reports the limit and its pid, and that process has the flags', async () => {
    const server = new Running(['relay', '--port', '0', '--host', '127.0.0.1', '--json']);
    running.push(server);
    const listening = await server.waitForJson((e) => e['type'] === 'listening', 'the listening line');
    expect(listening['maxSemiSpaceMiB']).toBe(2);
    const args = commandLine(listening['pid'] as number);
    for (const flag of RELAY_NODE_FLAGS) expect(args).toContain(flag);
    expect((await server.stop('SIGTERM')).code, server.stderr).toBe(0);
  });

  it("an operator's own --max-semi-space-size (NODE_OPTIONS) wins: nothing is added", async () => {
    const server = new Running(['relay', '--port', '0', '--host', '127.0.0.1', '--json'], { NODE_OPTIONS: '--max-semi-space-size=8' });
    running.push(server);
    const listening = await server.waitForJson((e) => e['type'] === 'listening', 'the listening line');
    expect(listening['maxSemiSpaceMiB']).toBe(8);
    expect(commandLine(listening['pid'] as number).some((a) => a.includes('semi-space'))).toBe(false);
    expect((await server.stop('SIGTERM')).code, server.stderr).toBe(0);
  });

  it('a value given to node itself (`node --max-semi-space-size=8 rhizome relay`) reaches the relay process', async () => {
    const child = spawn(process.execPath, ['--max-semi-space-size=8', BIN, 'relay', '--port', '0', '--host', '127.0.0.1', '--json'], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
    try {
      let out = '';
      child.stdout.setEncoding('utf8');
      const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
        child.stdout.on('data', (d: string) => {
          out += d;
          const line = out.split('\n').find((l) => l.includes('"listening"'));
          if (line !== undefined) resolve(JSON.parse(line) as Record<string, unknown>);
        });
        child.once('exit', (code) => reject(new Error(`rhizome relay exited with ${code}: ${out}`)));
      });
      expect(listening['maxSemiSpaceMiB']).toBe(8);
      const args = commandLine(listening['pid'] as number);
      expect(args).toContain('--max-semi-space-size=8');
      expect(args).not.toContain('--max-semi-space-size=2');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("the rhizome launcher's copy of the flags is @rhizome/relay's RELAY_NODE_FLAGS", () => {
    const launcher = readFileSync(BIN, 'utf8');
    const m = /const RELAY_NODE_FLAGS = (\[[^\]]*\]);/.exec(launcher);
    expect(m, 'bin/rhizome.js declares RELAY_NODE_FLAGS').not.toBeNull();
    expect(JSON.parse(m![1]!.replace(/'/g, '"'))).toEqual([...RELAY_NODE_FLAGS]);
  });
});

/** Resolves with the first stdout line of `child` starting with `prefix`; rejects if it exits first. */
function lineFrom(child: ReturnType<typeof spawn>, prefix: string): Promise<string> {
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith(prefix));
      if (line !== undefined) resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before '${prefix}': ${err}`)));
  });
}

describe("relay processes the repository's scripts and benches start run with the relay Node flags", () => {
  it("the chaos harness's relay process (scripts/chaos-relay.ts) has them, and refuses to run without them", async () => {
    const port = await freePort();
    const relay = spawnChaosRelay(port);
    try {
      await lineFrom(relay, 'ready');
      const args = commandLine(relay.pid!);
      for (const flag of RELAY_NODE_FLAGS) expect(args).toContain(flag);
    } finally {
      relay.kill('SIGKILL');
    }
    const plain = spawnScript('chaos-relay.ts', [String(port)]);
    const code = await new Promise<number | null>((resolve) => plain.once('exit', resolve));
    expect(code).toBe(2);
  });

  it("the relay bench's server (bench/relay.ts) has them; its bare forwarder runs on Node's defaults", async () => {
    const relay = await startServer('relay');
    try {
      expect(relay.semiSpace).toBe('2');
      const args = commandLine(relay.child.pid!);
      for (const flag of RELAY_NODE_FLAGS) expect(args).toContain(flag);
    } finally {
      await relay.stop();
    }
    const bare = await startServer('bare');
    try {
      expect(bare.semiSpace).toBe('default');
    } finally {
      await bare.stop();
    }
  });
});
