// Evaluates one idea for the default (shared) file, NOT built into the store: hold SQLite's
// locking_mode=EXCLUSIVE while a burst of one-update commits flows and drop it when the writer has
// been idle for `--idle-ms` (default 20). Measures (a) the writer's main-thread CPU per commit in
// each mode and (b) what a second process on the same file sees meanwhile: a `rhizome sync`-like
// neighbour that every 250 ms runs `PRAGMA data_version` (the store watch) and every 100 ms appends
// one row (a `rhizome put --db`), each with busy_timeout 5000 as the store sets it — how long each
// of its calls blocks its thread, and how many fail with SQLITE_BUSY.
// BENCHMARKS.md § Issue 12, Session 11 (puts2).
//
// node_modules/node/bin/node --import tsx bench/burst-exclusive.ts [--seconds 4] [--idle-ms 20]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Sqlite from 'better-sqlite3';
import { flag } from './args.js';

const SECONDS = Number(flag('--seconds', '4'));
const IDLE_MS = Number(flag('--idle-ms', '20'));
const role = flag('--role', '');

function open(path: string): Sqlite.Database {
  const db = new Sqlite(path);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

if (role === 'neighbour') {
  // The other process: a watch every 250 ms and a write every 100 ms, until told to stop.
  const db = open(flag('--path', ''));
  const insert = db.prepare('INSERT INTO updates (key, data) VALUES ((2 << 44) + ?, ?)');
  let seq = 0;
  const stalls: number[] = [];
  let busy = 0;
  const timed = (fn: () => void): void => {
    const t0 = performance.now();
    try {
      fn();
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_BUSY') busy++;
      else throw error;
    }
    stalls.push(performance.now() - t0);
  };
  const watch = setInterval(() => timed(() => db.pragma('data_version', { simple: true })), 250);
  const write = setInterval(() => timed(() => insert.run(++seq, Buffer.alloc(100, 1))), 100);
  process.stdin.once('data', () => {
    clearInterval(watch);
    clearInterval(write);
    stalls.sort((a, b) => a - b);
    const q = (p: number): number => stalls[Math.min(stalls.length - 1, Math.floor(p * stalls.length))] ?? 0;
    process.stdout.write(JSON.stringify({ calls: stalls.length, busy, p50: q(0.5), p99: q(0.99), max: q(1), over100ms: stalls.filter((s) => s > 100).length }));
    db.close();
    process.stdin.destroy();
  });
} else {
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-burst-'));
  const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const results: string[] = [];
  try {
    for (const mode of ['normal', 'burst-exclusive', 'normal (no neighbour)', 'burst-exclusive (no neighbour)']) {
      const path = join(dir, `${mode.replace(/\W+/g, '-')}.db`);
      const db = open(path);
      db.exec('CREATE TABLE docs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, snapshot BLOB, snapshot_seq INTEGER NOT NULL DEFAULT 0); CREATE TABLE updates (key INTEGER PRIMARY KEY, data BLOB NOT NULL);');
      const insert = db.prepare('INSERT INTO updates (key, data) VALUES ((1 << 44) + ?, ?)');
      const probe = db.prepare('SELECT 1 FROM docs LIMIT 1');
      const withNeighbour = !mode.includes('no neighbour');
      const child = withNeighbour
        ? spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--role', 'neighbour', '--path', path], { stdio: ['pipe', 'pipe', 'inherit'] })
        : undefined;
      let out = '';
      child?.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const burst = mode.startsWith('burst');
      let held = false;
      let idleTimer: NodeJS.Timeout | undefined;
      let commits = 0;
      let writerBusy = 0;
      let writerMaxMs = 0;
      let seq = 0;
      const data = Buffer.alloc(110, 7);
      const release = (): void => {
        idleTimer = undefined;
        db.pragma('locking_mode = NORMAL');
        probe.get(); // the next access releases the exclusive lock
        held = false;
      };
      const cpu0 = process.threadCpuUsage();
      const t0 = performance.now();
      // Bursts: 200 ms of one commit per macrotask, then 100 ms idle (the idle release happens then).
      while (performance.now() - t0 < SECONDS * 1000) {
        const burstEnd = performance.now() + 200;
        while (performance.now() < burstEnd) {
          if (burst && !held) {
            db.pragma('locking_mode = EXCLUSIVE');
            held = true;
          }
          const w0 = performance.now();
          try {
            insert.run(seq + 1, data);
            seq++;
            commits++;
          } catch (error) {
            if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
            writerBusy++;
          }
          writerMaxMs = Math.max(writerMaxMs, performance.now() - w0);
          if (burst) {
            if (idleTimer !== undefined) clearTimeout(idleTimer);
            idleTimer = setTimeout(release, IDLE_MS);
          }
          await nextMacrotask();
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const cpu = process.threadCpuUsage(cpu0);
      if (idleTimer !== undefined) {
        clearTimeout(idleTimer);
        release();
      }
      child?.stdin.end('stop\n');
      if (child) await new Promise((resolve) => child.on('close', resolve));
      db.close();
      const n = withNeighbour ? (JSON.parse(out) as { calls: number; busy: number; p50: number; p99: number; max: number; over100ms: number }) : undefined;
      results.push(
        `| ${mode} | ${commits.toLocaleString('en-US')} | ${((cpu.user + cpu.system) / commits).toFixed(2)} | ${writerBusy} | ${writerMaxMs.toFixed(1)} | ` +
          (n ? `${n.calls} | ${n.busy} | ${n.p50.toFixed(2)} | ${n.p99.toFixed(1)} | ${n.max.toFixed(1)} | ${n.over100ms} |` : '– | – | – | – | – | – |'),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`Writer: bursts of 200 ms (one 110-byte commit per macrotask) and 100 ms pauses for ${SECONDS} s; burst-exclusive drops the lock after ${IDLE_MS} ms idle.\n`);
  process.stdout.write('Neighbour process: PRAGMA data_version every 250 ms + one INSERT every 100 ms, busy_timeout 5000; how long each call blocked its thread.\n\n');
  process.stdout.write('| writer mode | commits | writer CPU µs per commit | writer SQLITE_BUSY | writer longest commit ms | neighbour calls | neighbour SQLITE_BUSY | neighbour call p50 ms | p99 ms | max ms | calls > 100 ms |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n');
  process.stdout.write(results.join('\n') + '\n');
}
