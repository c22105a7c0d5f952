// A shared (default) store numbers an append of one update from memory and lets the file check
// the guess (sqlite-store.ts #appendGuessed; BENCHMARKS.md § Issue 12, Session 11 (puts2)). With
// real processes on one file: two writers appending to one document in strict turns (every
// remembered number is taken by the other) and then freely, single updates and batches, while a
// third process compacts through what it has read after each poll. Every update must be kept
// exactly once, each process's numbers unique and increasing, and every process must read all of
// it back; an append that landed at or below the compactor's snapshot would be deleted by its next
// compaction and missing at the end. And a full disk: a failed numbered append writes nothing and
// does not move the number.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { openSqliteStore } from '@rhizome/store-sqlite';
import { runAndKill } from './kill-helpers.js';
import { tempDir } from './sync-helpers.js';
import { mountTmpfs, type Tmpfs } from './tmpfs-helpers.js';

const ROOT = join(import.meta.dirname, '..');
const { dir, cleanup } = tempDir('rhizome-shared-append-');
afterAll(cleanup);
const mounts: Tmpfs[] = [];
afterAll(() => {
  for (const m of mounts.splice(0)) m.unmount();
});

interface Child {
  process: ChildProcessWithoutNullStreams;
  ready: Promise<void>;
  result: Promise<unknown>;
}

function start(args: string[]): Child {
  const child = spawn(process.execPath, ['--conditions=rhizome-source', '--import', 'tsx', join(ROOT, 'test/fixtures/shared-appender.ts'), ...args], {
    cwd: ROOT,
  });
  let out = '';
  let err = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (out.startsWith('ready\n')) markReady();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
  const result = new Promise<unknown>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`shared-appender ${args.slice(2).join(' ')} exited with ${code}: ${err.slice(-2000)}`));
      else resolve(JSON.parse(line));
    });
  });
  return { process: child, ready, result };
}

interface WriterResult {
  appends: Array<[number, number]>;
  written: number;
  seen: string[];
}

const sorted = (xs: string[]): string[] => [...xs].sort();

describe('a shared store numbers single appends from memory, checked by the file', () => {
  it('two processes appending to one document (in turns, then freely, with batches) while a third compacts: every update kept once, numbers unique and increasing, all read back everywhere', async () => {
    const path = join(dir, 'two-writers.db');
    const doc = 'shared-append-doc';
    const alternating = 150;
    const free = 600;
    const perWriter = alternating + free + 2 * Math.floor(free / 5);
    const total = 2 * perWriter;
    // The file exists (schema made) before the three processes open it at once.
    openSqliteStore(path).close();
    const children = [
      start([path, doc, 'writer', 'a', '0', String(alternating), String(free), String(total)]),
      start([path, doc, 'writer', 'b', '1', String(alternating), String(free), String(total)]),
      start([path, doc, 'compactor', String(total)]),
    ];
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.process.stdin.write('go\n');
    const [a, b, compactor] = (await Promise.all(children.map((c) => c.result))) as [WriterResult, WriterResult, { compactions: number; seen: string[] }];

    const expected = sorted([
      ...Array.from({ length: perWriter }, (_, i) => `a:${i}`),
      ...Array.from({ length: perWriter }, (_, i) => `b:${i}`),
    ]);
    expect(a.written).toBe(perWriter);
    expect(b.written).toBe(perWriter);
    // Each process's numbers increase, and the two together are 1..total, each exactly once.
    for (const w of [a, b]) {
      for (let i = 1; i < w.appends.length; i++) expect(w.appends[i]![0]).toBeGreaterThan(w.appends[i - 1]![1]);
    }
    const numbers = [...a.appends, ...b.appends].flatMap(([first, last]) => Array.from({ length: last - first + 1 }, (_, k) => first + k));
    expect(numbers.sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    // In the turns every append found its remembered number taken by the other writer.
    expect(a.appends.slice(0, alternating).map(([first]) => first)).toEqual(Array.from({ length: alternating }, (_, n) => 2 * n + 1));
    expect(b.appends.slice(0, alternating).map(([first]) => first)).toEqual(Array.from({ length: alternating }, (_, n) => 2 * n + 2));
    // Every process read every update exactly once; the compactor compacted while they wrote.
    expect(sorted(a.seen)).toEqual(expected);
    expect(sorted(b.seen)).toEqual(expected);
    expect(sorted(compactor.seen)).toEqual(expected);
    expect(compactor.compactions).toBeGreaterThan(1);
    // And the file holds them all: the compactor's last snapshot (JSON) plus what is left in the log.
    const store = openSqliteStore(path, { readOnly: true });
    try {
      const stored = store.load(doc);
      const text = new TextDecoder();
      const inFile = [...(stored.snapshot === null ? [] : (JSON.parse(text.decode(stored.snapshot)) as string[])), ...stored.updates.map((u) => text.decode(u))];
      expect(sorted(inFile)).toEqual(expected);
      expect(stored.lastSeq).toBe(total);
    } finally {
      store.close();
    }
  }, 120_000);

  it('writers SIGKILLed mid-append: after reopen the log is numbered without gap or repeat, every acknowledged append at its number once, and every store, stale or new, numbers after it', async () => {
    const path = join(dir, 'killed.db');
    const doc = 'killed-append-doc';
    const SCRIPT = join(ROOT, 'test/fixtures/killed-appender.ts');
    openSqliteStore(path).close();
    // A store that read the log before the kills and appends after them: its remembered number is stale.
    const stale = openSqliteStore(path);
    stale.load(doc);
    expect(stale.append(doc, [new TextEncoder().encode('stale:0')])).toBe(1);
    const acked = new Map<number, string>([[1, 'stale:0']]);
    for (const [round, kills] of [[0, [400, 250]], [1, [150, 500]]] as const) {
      // Two writers at once, each killed after its own number of acknowledged appends.
      const runs = await Promise.all(kills.map((after, w) => runAndKill(SCRIPT, [path, doc, `r${round}w${w}`], after)));
      for (const run of runs) {
        expect(run.signal, run.stderr).toBe('SIGKILL');
        for (const line of run.lines) {
          const [last, ...payloads] = line.split(' ');
          payloads.forEach((p, k) => acked.set(Number(last) - payloads.length + 1 + k, p));
        }
      }
      // The file as the kills left it (the WAL recovered by this read): one row per number from the
      // snapshot's (none here) to the last, each acknowledged payload at the number its append
      // returned.
      const raw = new Database(path, { readonly: true });
      const rows = raw
        .prepare('SELECT updates.key - (docs.id << 44) AS seq, updates.data AS data FROM updates JOIN docs ON docs.name = ? WHERE updates.key > (docs.id << 44) AND updates.key < ((docs.id + 1) << 44) ORDER BY updates.key')
        .all(doc) as Array<{ seq: number; data: Buffer }>;
      raw.close();
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
      const inFile = new Map(rows.map((r) => [r.seq, r.data.toString('utf8')]));
      expect(new Set(inFile.values()).size).toBe(rows.length);
      for (const [seq, payload] of acked) expect(inFile.get(seq), `acknowledged ${payload} at ${seq}`).toBe(payload);
      // Each writer's payloads in the file are its first k, none skipped: what it wrote after its
      // last line that reached us (the kill can take lines still in its stdout pipe) is its tail.
      for (const w of [0, 1]) {
        const tag = `r${round}w${w}:`;
        const indices = [...inFile.values()].filter((p) => p.startsWith(tag)).map((p) => Number(p.slice(tag.length)));
        expect(indices.sort((x, y) => x - y)).toEqual(indices.map((_, i) => i));
        const lastAcked = Math.max(...[...acked.values()].filter((p) => p.startsWith(tag)).map((p) => Number(p.slice(tag.length))));
        expect(indices.length).toBeGreaterThan(lastAcked);
      }
      for (const [seq, payload] of inFile) if (!acked.has(seq)) acked.set(seq, payload);
      // The stale store numbers after everything; so does a store opened now.
      expect(stale.append(doc, [new TextEncoder().encode(`stale:${round + 1}`)])).toBe(rows.length + 1);
      acked.set(rows.length + 1, `stale:${round + 1}`);
      const fresh = openSqliteStore(path);
      expect(fresh.load(doc).lastSeq).toBe(rows.length + 1);
      fresh.close();
    }
    stale.close();
  }, 120_000);

  it('a full disk: a failed numbered append writes nothing and keeps its number; the next one after space returns takes it', () => {
    let fs: Tmpfs;
    try {
      fs = mountTmpfs(2 * 1024 * 1024);
    } catch (error) {
      throw new Error(`this test mounts a tmpfs (root only): ${String(error)}`);
    }
    mounts.push(fs);
    try {
      const path = join(fs.dir, 'full.db');
      const store = openSqliteStore(path);
      const other = openSqliteStore(path);
      expect(store.append('d', [Uint8Array.of(1)])).toBe(1);
      // From here on `store` appends single updates by the numbered INSERT.
      expect(store.append('d', [Uint8Array.of(2)])).toBe(2);
      const filler = fs.fill();
      const big = new Uint8Array(256 * 1024).fill(7);
      let thrown: unknown;
      try {
        store.append('d', [big]);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toMatchObject({ code: 'ERR_STORE_IO', reason: 'SQLITE_FULL', path });
      expect(other.stats('d')).toMatchObject({ lastSeq: 2, updates: 2 });
      rmSync(filler);
      expect(store.append('d', [big])).toBe(3);
      expect(store.append('d', [Uint8Array.of(4)])).toBe(4);
      expect(other.load('d').updates.map((u) => u.length)).toEqual([1, 1, big.length, 1]);
      store.close();
      other.close();
    } finally {
      fs.unmount();
    }
  });
});
