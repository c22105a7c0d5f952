// The DHT bootstrap bin as a deployment runs it: a separate process that prints its multiaddrs,
// through which two peers that know nothing else find each other; SIGTERM stops it cleanly.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { deriveTopic, type Connection } from '@rhizome/core';
import { within } from '@rhizome/core/testing';
import { DhtTransport } from '@rhizome/transport-dht';
import { afterEach, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', 'packages', 'transport-dht', 'src', 'bootstrap-bin.ts');
const WAIT = 30_000;
const procs: ChildProcess[] = [];
const transports: DhtTransport[] = [];
afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.disconnect()));
  for (const p of procs.splice(0)) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await once(p, 'exit');
    }
  }
});

function bin(args: string[]): { proc: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> } {
  const proc = spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, stdout: () => out, stderr: () => err, exit };
}

it('prints its multiaddrs, peers meet through it, SIGTERM stops it with exit code 0', async () => {
  const b = bin(['--listen', '/ip4/127.0.0.1/tcp/0', '--allow-private']);
  const line = await within(
    WAIT,
    'the multiaddr line',
    new Promise<string>((resolve) => {
      const check = (): void => {
        const first = b.stdout().split('\n')[0];
        if (b.stdout().includes('\n') && first) resolve(first);
      };
      b.proc.stdout!.on('data', check);
      check();
    }),
  );
  expect(line).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+$/);
  const make = (): DhtTransport => {
    const t = new DhtTransport({ bootstrap: [line], listen: ['/ip4/127.0.0.1/tcp/0'], allowPrivateAddresses: true });
    transports.push(t);
    return t;
  };
  const [a, c] = [make(), make()];
  const topic = deriveTopic(`bootstrap-bin-${process.pid}`);
  const first = async (it: AsyncIterable<Connection>): Promise<Connection> => {
    for await (const conn of it) return conn;
    throw new Error('ended');
  };
  const [ca, cc] = await within(WAIT, 'the pair', Promise.all([a.connect(topic).then(first), c.connect(topic).then(first)]));
  expect(ca.peerId).toBe(c.peerId);
  expect(cc.peerId).toBe(a.peerId);
  b.proc.kill('SIGTERM');
  expect(await within(WAIT, 'the exit', b.exit)).toBe(0);
}, 60_000);

it('--help exits 0; a bad flag or a bad multiaddr exits 2', async () => {
  const help = bin(['--help']);
  expect(await within(WAIT, 'help', help.exit)).toBe(0);
  expect(help.stdout()).toContain('usage: dht-bootstrap');
  const bad = bin(['--no-such-flag']);
  expect(await within(WAIT, 'bad flag', bad.exit)).toBe(2);
  const badAddr = bin(['--listen', 'not-a-multiaddr']);
  expect(await within(WAIT, 'bad multiaddr', badAddr.exit)).toBe(2);
  expect(badAddr.stderr()).toContain('ERR_INVALID_CONFIG');
}, 60_000);
