/**
 * A throwaway `redis-server` for tests: its own port on 127.0.0.1, no persistence, stopped by
 * the test (SIGKILL and restart on the same port simulate an outage).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** Where the tests find redis-server (Debian's package); override with RHIZOME_REDIS_SERVER. */
export const REDIS_SERVER = process.env.RHIZOME_REDIS_SERVER ?? '/usr/bin/redis-server';

/** A running redis-server. */
export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  /** Process id of the running server (0 while it is down). */
  readonly pid: number;
  /** Kills it (SIGKILL): every client connection drops, all data is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty). */
  restart(): Promise<void>;
  /** Stops it for good. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released: good enough for a test's own server). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function launch(port: number, timeoutMs: number): Promise<ChildProcess> {
  const child = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'notice', '--databases', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not start on ${port} within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (!/Ready to accept connections|ready to accept/i.test(out)) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${out}`));
    });
  });
}

function exited(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/** Starts redis-server on a free port. */
export async function startRedis(timeoutMs = 10_000): Promise<RedisProcess> {
  const port = await freePort();
  let child: ChildProcess | null = await launch(port, timeoutMs);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid ?? 0;
    },
    async kill() {
      if (child) await exited(child, 'SIGKILL');
      child = null;
    },
    async restart() {
      if (child) await exited(child, 'SIGKILL');
      child = await launch(port, timeoutMs);
    },
    async stop() {
      if (child) await exited(child, 'SIGKILL');
      child = null;
    },
  };
}
