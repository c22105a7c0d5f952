/**
 * Test helpers for the relay (`@rhizome/relay/testing`): a relay in a child process, a raw
 * protocol client for sending exactly the bytes a test wants, and a recording socket wrapper.
 * Not part of the runtime API.
 * @packageDocumentation
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { encodeHello, encodeTopicFrame, FrameType, utf8 } from '@rhizome/transport-relay/protocol';
import type { RelaySocket } from '../core.js';

export { startRedis, freePort, REDIS_SERVER } from './redis.js';
export type { RedisProcess } from './redis.js';

/** The repository root (for spawning `tsx` with the workspace's resolution). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The relay binary's source. */
export const RELAY_BIN = fileURLToPath(new URL('../bin.ts', import.meta.url));

/** A relay running as a child process (`rhizome-relay`). */
export interface RelayProcess {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything the process printed so far. */
  output(): string;
  /** Current and peak resident set size in bytes (Linux /proc). */
  memory(): { rss: number; peak: number };
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** The flooding client script (`flood.ts URL frames|bytes`). */
export const FLOOD_SCRIPT = fileURLToPath(new URL('./flood.ts', import.meta.url));

/**
 * Runs a flooding client in its own process and resolves with the close code the relay sent it.
 * `frames`: 64-byte broadcasts as fast as possible; `bytes`: 1 MiB broadcasts.
 */
export function floodFromChildProcess(url: string, mode: 'frames' | 'bytes', timeoutMs = 20_000): Promise<number> {
  const child = spawn(process.execPath, [...TSX_ARGS, FLOOD_SCRIPT, url, mode], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`flooder did not finish within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      const m = /CLOSED (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`flooder exited without a close code:\n${out}`));
    });
  });
}

/** Node arguments that run a workspace TypeScript file directly. */
export const TSX_ARGS = ['--conditions=rhizome-source', '--import', 'tsx'];

/**
 * Starts `relay/src/bin.ts` with `args` and waits (at most `timeoutMs`) for its URL; `env` is
 * added to this process's environment (e.g. `NODE_OPTIONS`).
 */
export function startRelayProcess(args: string[], options: { timeoutMs?: number; uid?: number; gid?: number; env?: Record<string, string> } = {}): Promise<RelayProcess> {
  const child = spawn(process.execPath, [...TSX_ARGS, RELAY_BIN, ...args], {
    cwd: REPO_ROOT,
    ...(options.env !== undefined ? { env: { ...process.env, ...options.env } } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`relay process did not start within ${options.timeoutMs ?? 20_000} ms:\n${out}`));
    }, options.timeoutMs ?? 20_000);
    const onData = (): void => {
      const m = /listening on (wss?:\/\/[^\s]+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      const url = m[1]!;
      resolve({
        url,
        port: Number(new URL(url).port),
        child,
        output: () => out,
        memory: () => {
          const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
          const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
          return { rss: kb('VmRSS'), peak: kb('VmHWM') };
        },
        stop: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`relay process exited with ${code} before listening:\n${out}`));
    });
  });
}

/** How a raw client's socket ended. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/**
 * A WebSocket client that sends exactly the frames a test gives it: no validation, no
 * reconnects. `closed` resolves with the close code the relay sent (1006 when none arrived).
 */
export class RawClient {
  readonly ws: WebSocket;
  readonly closed: Promise<CloseInfo>;
  readonly received: Uint8Array[] = [];
  #waiters: Array<{ type: number; resolve: (f: Uint8Array) => void }> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data: Buffer) => {
      const frame = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const i = this.#waiters.findIndex((w) => w.type === frame[0]);
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(frame);
      else if (this.received.length < 10_000) this.received.push(frame);
    });
  }

  /** Opens a raw client; `hello` sends HELLO and waits for WELCOME. */
  static async open(url: string, options: { hello?: boolean; peerId?: string; token?: string; ca?: string; sessionKey?: Uint8Array } = {}): Promise<RawClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, ...(options.ca ? { ca: options.ca } : {}) });
    ws.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', (code) => reject(Object.assign(new Error(`closed with ${code} before opening`), { closeCode: code })));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    const client = new RawClient(ws);
    if (options.hello ?? true) {
      const welcome = client.next(FrameType.WELCOME);
      client.send(encodeHello(utf8(options.peerId ?? `raw-${Math.random().toString(36).slice(2)}`), options.token ? utf8(options.token) : null, options.sessionKey ?? null));
      await Promise.race([welcome, client.closed.then((c) => Promise.reject(new Error(`closed with ${c.code} before WELCOME`)))]);
    }
    return client;
  }

  /** The next frame of `type` (already received ones first). */
  next(type: number): Promise<Uint8Array> {
    const i = this.received.findIndex((f) => f[0] === type);
    if (i >= 0) return Promise.resolve(this.received.splice(i, 1)[0]!);
    return new Promise((resolve) => this.#waiters.push({ type, resolve }));
  }

  send(frame: Uint8Array, cb?: (error?: Error) => void): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame, cb);
    else cb?.(new Error('not open'));
  }

  /** JOIN and wait for JOINED; resolves with the topic id. */
  async join(topic: Uint8Array): Promise<number> {
    const joined = this.next(FrameType.JOINED);
    this.send(encodeTopicFrame(FrameType.JOIN, topic));
    const f = await joined;
    return ((f[1]! << 24) | (f[2]! << 16) | (f[3]! << 8) | f[4]!) >>> 0;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** What a {@link recordingSocket} saw. */
export interface Recording {
  /** Every message the relay received, as received. */
  received: Uint8Array[];
  /** Every message the relay sent (copied at send time). */
  sent: Uint8Array[];
}

/**
 * Wraps a socket so every message the relay core receives and sends is copied into
 * `recording` first: the relay's whole view of the traffic, for tests that check what a relay
 * can see.
 */
export function recordingSocket(socket: RelaySocket, recording: Recording): RelaySocket {
  return {
    get bufferedAmount() {
      return socket.bufferedAmount;
    },
    send(data: Uint8Array) {
      recording.sent.push(Uint8Array.from(data));
      socket.send(data);
    },
    close: (code?: number, reason?: string) => socket.close(code, reason),
    terminate: () => socket.terminate(),
    ping: () => socket.ping(),
    on(event: string, listener: (...args: never[]) => void): unknown {
      if (event === 'message') {
        const l = listener as unknown as (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void;
        return socket.on('message', (data, isBinary) => {
          const copy = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
          recording.received.push(Uint8Array.from(copy));
          l(copy, isBinary);
        });
      }
      return (socket.on as (e: string, l: (...args: never[]) => void) => unknown).call(socket, event, listener);
    },
  } as RelaySocket;
}
