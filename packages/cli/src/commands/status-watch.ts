/**
 * `rhizome status --watch`: keeps the replica open and refreshes a compact table of its peers
 * and their health (on a terminal, in place; otherwise one block, or one JSON line with
 * `--json`, per refresh) until Ctrl-C.
 */
import type { Database, DatabaseStats } from '@rhizome/sync';
import { clock, formatBytes, type Output } from '../output.js';
import { closeReplica, openReplica, type DatabaseFlags } from '../replica.js';
import { untilStopSignal } from '../signals.js';

/** One refresh as `rhizome status --watch --json` prints it. */
export interface WatchSnapshot {
  type: 'status';
  time: string;
  nodes: number;
  health: DatabaseStats['health'];
  uptimeSeconds: number;
  localUpdatesPerSecond: number;
  remoteUpdatesPerSecond: number;
  peers: Array<{
    peerId: string;
    transport: string;
    path?: string;
    health: string;
    healthReason: string;
    rttMs: number | null;
    synced: boolean;
    idleMs: number;
    bytesInPerSecond: number;
    bytesOutPerSecond: number;
    queued: number;
    unackedUpdates: number;
  }>;
}

/** The state of `db` for one refresh. */
export function watchSnapshot(db: Database): WatchSnapshot {
  const s = db.stats();
  return {
    type: 'status',
    time: new Date().toISOString(),
    nodes: db.size,
    health: s.health,
    uptimeSeconds: Math.round(s.uptimeMs / 1000),
    localUpdatesPerSecond: round(s.rates.localUpdates),
    remoteUpdatesPerSecond: round(s.rates.remoteUpdates),
    peers: s.peers.map((p) => {
      const path = (p as { path?: unknown }).path;
      return {
        peerId: p.peerId,
        transport: p.transport,
        ...(typeof path === 'string' ? { path } : {}),
        health: p.health,
        healthReason: p.healthReason,
        rttMs: p.rttMs,
        synced: p.synced,
        idleMs: p.idleMs,
        bytesInPerSecond: round(p.rates.bytesIn),
        bytesOutPerSecond: round(p.rates.bytesOut),
        queued: p.queued,
        unackedUpdates: p.unackedUpdates,
      };
    }),
  };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

function shortPeer(id: string): string {
  return id.length > 20 ? `${id.slice(0, 8)}…${id.slice(-8)}` : id;
}

/** The compact table of one refresh. */
export function watchTable(s: WatchSnapshot, title: string): string[] {
  const lines = [
    `${clock(new Date(s.time))}  ${title}`,
    `database  ${s.health.health} (${s.health.reason})  nodes ${s.nodes}  up ${s.uptimeSeconds}s  writes ${s.localUpdatesPerSecond}/s  remote ${s.remoteUpdatesPerSecond}/s  unsent ${s.health.unsentLocalUpdates}`,
  ];
  const header = ['PEER', 'VIA', 'HEALTH', 'RTT', 'SYNC', 'IDLE', 'IN/s', 'OUT/s', 'QUEUE', 'LAG'];
  const rows = s.peers.map((p) => [
    shortPeer(p.peerId),
    p.path ? `${p.transport}/${p.path}` : p.transport,
    p.health,
    p.rttMs === null ? '-' : `${p.rttMs < 10 ? p.rttMs.toFixed(1) : Math.round(p.rttMs)}ms`,
    p.synced ? 'yes' : 'no',
    `${(p.idleMs / 1000).toFixed(1)}s`,
    formatBytes(p.bytesInPerSecond),
    formatBytes(p.bytesOutPerSecond),
    String(p.queued),
    String(p.unackedUpdates),
  ]);
  if (rows.length === 0) {
    lines.push('no peers connected');
    return lines;
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const format = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  lines.push(format(header));
  for (const r of rows) lines.push(format(r));
  return lines;
}

/** Runs the watch until a stop signal; closes the replica on the way out. */
export async function watchStatus(id: string, flags: DatabaseFlags, out: Output, intervalMs: number, title: string): Promise<void> {
  const stopping = untilStopSignal();
  const replica = await openReplica(id, flags, out);
  const { db } = replica;
  const tty = !out.json && out.streams.stdout.isTTY === true;
  const render = (): void => {
    const snapshot = watchSnapshot(db);
    if (out.json) {
      out.jsonLine(snapshot);
      return;
    }
    const lines = watchTable(snapshot, title);
    // On a terminal: home the cursor, clear, redraw. Elsewhere: one block per refresh.
    if (tty) out.redraw(lines.join('\n'));
    else out.line(`${lines.join('\n')}\n`);
  };
  render();
  const timer = setInterval(render, intervalMs);
  try {
    await stopping;
  } finally {
    clearInterval(timer);
    await closeReplica(replica);
  }
}
