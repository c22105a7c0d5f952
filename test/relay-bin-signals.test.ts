// rhizome-relay's stop on a terminal's Ctrl-C when it runs as the child of its own re-launch
// (relay/src/node-flags.ts: Node without process.execve, e.g. Node 20, or a process with an IPC
// channel). The terminal's SIGINT reaches the whole process group: the relay process gets it
// from the terminal AND once more from its launcher, which passes signals on. The second one
// must not kill the relay while it closes its clients.
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { RELAY_BIN, REPO_ROOT, TSX_ARGS } from '@rhizome/relay/testing';

const sockets: Socket[] = [];
const pids: number[] = [];
afterAll(() => {
  for (const s of sockets) s.destroy();
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** A WebSocket client that completes the upgrade and then never reads again (no close reply). */
function stalledClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.once('error', reject);
    socket.on('connect', () => {
      socket.write(
        'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(`upgrade refused: ${head}`));
      socket.pause();
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

describe('rhizome-relay re-launched as a child process', () => {
  it("stops cleanly (exit 0, 'stopped') on a SIGINT sent to its process group while a client holds the close", async () => {
    // The IPC channel makes the re-launch take its child path on any Node version.
    const child = spawn(process.execPath, [...TSX_ARGS, RELAY_BIN, '--port', '0', '--host', '127.0.0.1'], {
      cwd: REPO_ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    pids.push(child.pid!);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 30_000);
      const onData = (): void => {
        const m = /listening on (ws:\/\/\S+)/.exec(out);
        if (m === null) return;
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(m[1]!);
      };
      child.stdout!.on('data', onData);
      void exited.then(() => reject(new Error(`exited before listening: ${out}`)));
    });
    // The relay waits for this client's close reply (up to its 2 s close grace) before it exits.
    await stalledClient(Number(new URL(url).port));
    process.kill(-child.pid!, 'SIGINT');
    const { code, signal } = await exited;
    expect({ code, signal }, out).toEqual({ code: 0, signal: null });
    expect(out).toContain('rhizome relay: stopped');
  }, 60_000);
});
