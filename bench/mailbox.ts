// Mailbox benchmarks: a cold catch-up of a large database from a relay's sealed mailbox alone (no
// peer online) beside a cold sync from a live peer through the same relay, in the same run; and
// the relay's disk bytes per database against the encoded state size after compaction.
//
// npm run bench -- --only mailbox [--quick]
// or: npm exec -- node --conditions=rhizome-source --import tsx bench/mailbox.ts [--quick]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Y from 'yjs';
import { createTransport, generateDatabaseId } from '@rhizome/core';
import { createRelayServer, type RelayServer } from '@rhizome/relay';
import { openDatabase, type Database } from '@rhizome/sync';
import { createContext, fmt, fmtStats, machineLine, repeat } from './harness.js';
import type { BenchContext } from './harness.js';
import { untilSize } from '../test/sync-helpers.js';

const WAIT = 120_000;

function node(i: number): { title: string; n: number; done: boolean } {
  return { title: `node number ${i}`, n: i, done: i % 2 === 0 };
}

function fileBytes(path: string): number {
  return [path, `${path}-wal`, `${path}-shm`].reduce((sum, f) => sum + (statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);
}

function open(id: string, path: string, relay: RelayServer, mailbox: boolean): Promise<Database> {
  return openDatabase({ id, path, transport: createTransport({ mode: 'relay', relayUrl: relay.url, timeoutMs: WAIT, mailbox }) });
}

export async function run(ctx: BenchContext): Promise<void> {
  const N = ctx.quick ? 10_000 : 100_000;
  const dir = mkdtempSync(join(tmpdir(), 'rhizome-bench-mailbox-'));
  const mailboxFile = join(dir, 'relay-mailbox.db');
  const relay = await createRelayServer({ port: 0, host: '127.0.0.1', mailbox: { path: mailboxFile, maxMailboxBytes: 256 * 1024 * 1024 } });
  let files = 0;
  try {
    // ---- the writer: N nodes, deposited (the first write to an empty mailbox is a snapshot) -----
    const id = generateDatabaseId();
    const writerFile = join(dir, 'writer.db');
    const writer = await open(id, writerFile, relay, true);
    const t0 = performance.now();
    writer.doc.transact(() => {
      for (let i = 0; i < N; i++) writer.put(`n${i}`, node(i));
    });
    await writer.mailbox!.whenIdle({ timeoutMs: WAIT });
    const depositMs = performance.now() - t0;
    const encoded = Y.encodeStateAsUpdate(writer.doc).length;
    const status = writer.mailbox!.status();
    await writer.close();

    // ---- 1. cold catch-up from the mailbox alone (the writer is offline) ---------------------
    const fromMailbox: number[] = [];
    const mailboxBytes: number[] = [];
    const mailboxMs = await repeat(ctx.runs, async () => {
      const before = relay.stats().bytesOut;
      const t = performance.now();
      const db = await open(id, join(dir, `m${files++}.db`), relay, true);
      await db.mailbox!.whenIdle({ timeoutMs: WAIT });
      await untilSize(db, N, WAIT);
      const ms = performance.now() - t;
      fromMailbox.push(db.size);
      mailboxBytes.push(relay.stats().bytesOut - before);
      await db.close();
      return ms / 1000;
    });

    // ---- 2. cold sync from a live peer through the same relay (mailbox off on both sides) ------
    const peer = await open(id, writerFile, relay, false);
    const peerBytes: number[] = [];
    const peerMs = await repeat(ctx.runs, async () => {
      const before = relay.stats().bytesOut;
      const t = performance.now();
      const db = await open(id, join(dir, `p${files++}.db`), relay, false);
      await untilSize(db, N, WAIT);
      const ms = performance.now() - t;
      peerBytes.push(relay.stats().bytesOut - before);
      await db.close();
      return ms / 1000;
    });
    await peer.close();

    const med = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
    ctx.table(`cold catch-up of ${fmt(N, 0)} nodes (3 fields each), relay on 127.0.0.1`, [
      { source: 'relay mailbox alone (no peer online)', 'seconds, median (min–max)': fmtStats(mailboxMs, 2), 'bytes relay → replica': fmt(med(mailboxBytes), 0), 'vs live peer': `${fmt(mailboxMs.median / peerMs.median, 2)}×` },
      { source: 'live peer through the relay (baseline)', 'seconds, median (min–max)': fmtStats(peerMs, 2), 'bytes relay → replica': fmt(med(peerBytes), 0), 'vs live peer': '1×' },
    ]);
    ctx.note(`encoded state (Y.encodeStateAsUpdate) ${fmt(encoded, 0)} B; writer: write + first deposit (a sealed snapshot) ${fmt(depositMs, 0)} ms; mailbox ${fmt(status.usedBytes, 0)} B in ${status.usedEntries} record(s).`);

    // ---- 3. relay disk bytes per database vs encoded state, after compaction -----------------
    // D more databases of M nodes each; every one edits a tenth of its nodes 10 times (deposits),
    // then compacts (the compaction a writer does by itself once deposits outweigh the base).
    const D = ctx.quick ? 4 : 20;
    const M = ctx.quick ? 2_000 : 5_000;
    let encodedTotal = encoded;
    let usedTotal = status.usedBytes;
    let beforeCompaction = 0;
    for (let d = 0; d < D; d++) {
      const did = generateDatabaseId();
      const db = await open(did, join(dir, `d${files++}.db`), relay, true);
      db.doc.transact(() => {
        for (let i = 0; i < M; i++) db.put(`n${i}`, node(i));
      });
      await db.mailbox!.whenIdle({ timeoutMs: WAIT });
      for (let round = 0; round < 10; round++) {
        db.doc.transact(() => {
          for (let i = 0; i < M / 10; i++) db.put(`n${(i * 7 + round) % M}`, { title: `edited ${round}` });
        });
        await db.mailbox!.whenIdle({ timeoutMs: WAIT });
      }
      beforeCompaction += db.mailbox!.status().usedBytes;
      await db.mailbox!.compact({ timeoutMs: WAIT });
      encodedTotal += Y.encodeStateAsUpdate(db.doc).length;
      usedTotal += db.mailbox!.status().usedBytes;
      await db.close();
    }
    const stats = relay.core.stats().mailbox!;
    await relay.close(); // checkpoints and removes the WAL: the file is what stays on disk
    const disk = fileBytes(mailboxFile);
    ctx.table(`relay disk per database: 1 × ${fmt(N, 0)} nodes + ${D} × ${fmt(M, 0)} nodes with edits`, [
      { what: 'encoded states (Y.encodeStateAsUpdate), sum', bytes: fmt(encodedTotal, 0), 'per database': fmt(encodedTotal / (D + 1), 0), 'vs encoded': '1×' },
      { what: 'mailbox records (headers + sealed payloads), sum', bytes: fmt(usedTotal, 0), 'per database': fmt(usedTotal / (D + 1), 0), 'vs encoded': `${fmt(usedTotal / encodedTotal, 3)}×` },
      { what: 'relay mailbox file on disk (after close)', bytes: fmt(disk, 0), 'per database': fmt(disk / (D + 1), 0), 'vs encoded': `${fmt(disk / encodedTotal, 3)}×` },
    ]);
    ctx.note(`the small databases held ${fmt(beforeCompaction, 0)} B of records before their last compaction; relay served ${fmt(stats.bytesServed, 0)} B, stored ${fmt(stats.bytesStored, 0)} B of payloads over the run; replicas caught up ${fromMailbox.length}× with ${fromMailbox.every((n) => n === N) ? 'every' : 'NOT every'} node.`);
  } finally {
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ctx = createContext(process.argv.includes('--quick'));
  console.log(machineLine());
  await run(ctx);
}
