// One seed of the chaos harness: 3–7 replicas with SQLite files on a fault-injecting network,
// a seeded schedule of writes, deletes, concurrent edits of one node, Y.Text edits, faults, cuts,
// heals, closes and reopens (and, in some seeds, SIGKILLed replica processes, a second process on
// one file, a relay process SIGKILLed and restarted, a full disk); then everything heals and the
// run checks that every replica holds identical state, that every acknowledged write is there,
// that the files hold the same, and that queues and RSS stayed under their bounds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Y from 'yjs';
import { openDatabase } from '@rhizome/sync';
import type { Database } from '@rhizome/sync';
import type { JsonValue } from '@rhizome/core';
import { ChaosNet, ChaosTransport, CLEAN, type FaultCounts, type FaultSettings } from './chaos-net.js';
import { createRng, type Rng } from './chaos-rng.js';
import { RelayTransport } from '@rhizome/transport-relay';
import type { Transport } from '@rhizome/core';
import { SideProcesses, digestOf, type SideCounts } from './chaos-side.js';
import { mountTmpfs, type Tmpfs } from '../test/tmpfs-helpers.js';

/** Options of {@link runSeed}. */
export interface ChaosOptions {
  /** Directory for the replicas' files (a fresh temp dir by default, removed afterwards). */
  dir?: string;
  /** Steps of the schedule (default: 30–70, from the seed). */
  steps?: number;
  /** Allow the seed to use child processes (replica SIGKILL, a second writer, a relay). Default true. */
  processes?: boolean;
  /** Allow the seed to mount a small tmpfs to fill (root only). Default true. */
  tmpfs?: boolean;
  /** Bound on the harness process's RSS, bytes (default 1.5 GiB). */
  maxRssBytes?: number;
  /** Bound on any peer's outbound queue, messages (default 100,000). */
  maxQueued?: number;
  /** How long convergence may take after healing, ms (default 30 s). */
  convergeTimeoutMs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** Figures of one seed. */
export interface SeedReport {
  seed: number;
  replicas: number;
  steps: number;
  faults: FaultCounts;
  side: SideCounts;
  /** Full-disk episodes (a replica's file on a small tmpfs filled up, then freed), and the closes that were refused meanwhile. */
  disk: { episodes: number; failedWrites: number; refusedCloses: number };
  /** Replica closes and reopens (in process). */
  reopens: number;
  /** SIGKILLs survived: replica processes and relay processes. */
  crashesSurvived: number;
  /** Acknowledged writes (puts, deletes, field writes, text inserts) checked at the end. */
  writesChecked: number;
  /** Largest outbound queue seen (messages per peer; in-process replicas and replica processes). */
  maxQueued: number;
  /** Peak sampled RSS of the harness process and the replica processes. */
  maxRssBytes: number;
  /** Peak sampled RSS of the relay process (0 when the seed runs none). */
  maxRelayRssBytes: number;
  /** Error events the databases reported, by code (expected under faults: ERR_DECRYPT, ERR_PROTOCOL, ...). */
  errors: Record<string, number>;
  durationMs: number;
  /** Wall time of the phases: the schedule, convergence after healing, the final file check. */
  phasesMs: { schedule: number; converge: number; files: number };
}

/** A seed that failed: divergence, a lost write, a bound exceeded, or a crash. */
export class ChaosFailure extends Error {
  readonly seed: number;
  constructor(seed: number, message: string) {
    super(`seed ${seed}: ${message}`);
    this.name = 'ChaosFailure';
    this.seed = seed;
  }
}

const TEXT = 'chaos-text';
const CONTESTED = 3;

/** What the schedule wrote and acknowledged: the expectations checked at the end. */
class Model {
  /** Unique nodes written once: id → data. */
  readonly unique = new Map<string, Record<string, JsonValue>>();
  /** Nodes deleted by a replica that held them, never written again. */
  readonly deleted = new Set<string>();
  /** Deletable nodes written and not deleted yet. */
  readonly deletable = new Set<string>();
  /** Contested nodes: id → field → last value its only writer acknowledged. */
  readonly contested = new Map<string, Map<string, number>>();
  /** Text tokens inserted whole at token boundaries. */
  readonly tokens = new Set<string>();
}

interface Replica {
  name: string;
  path: string;
  db: Database | null;
  /** Also joins the relay of the side processes (bridges the two networks). */
  bridge: boolean;
  /** Steps until a closed replica reopens. */
  downFor: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function stateOf(db: Database): Buffer {
  return Buffer.from(Y.encodeStateAsUpdate(db.doc));
}

function randomFaults(rng: Rng): FaultSettings {
  if (rng.chance(0.3)) return { ...CLEAN };
  return {
    drop: rng.chance(0.5) ? rng.next() * 0.05 : 0,
    duplicate: rng.chance(0.5) ? rng.next() * 0.05 : 0,
    reorder: rng.chance(0.5) ? rng.next() * 0.05 : 0,
    delay: rng.chance(0.5) ? rng.next() * 0.3 : 0,
    maxDelayMs: 1 + rng.int(30),
  };
}

/** Boundaries between whole tokens in the text (`[...]` runs): where a token may be inserted. */
function boundaries(text: string): number[] {
  const out = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === ']') out.push(i + 1);
  return out;
}

/**
 * Runs one seed; resolves with its figures or rejects with a {@link ChaosFailure}. Everything it
 * starts (databases, child processes, mounts, temp dirs) is released before it settles.
 */
export async function runSeed(seed: number, options: ChaosOptions = {}): Promise<SeedReport> {
  const started = performance.now();
  const rng = createRng(seed);
  const netRng = rng.fork();
  const sideRng = rng.fork();
  const n = 3 + rng.int(5);
  const steps = options.steps ?? 30 + rng.int(41);
  const id = `chaos-${seed}-${rng.int(2 ** 31).toString(36)}-${rng.int(2 ** 31).toString(36)}`;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'rhizome-chaos-'));
  const maxRss = options.maxRssBytes ?? 1.5 * 1024 ** 3;
  const maxQueuedBound = options.maxQueued ?? 100_000;
  const log = options.log ?? (() => undefined);
  const net = new ChaosNet(netRng);
  const model = new Model();
  const errors: Record<string, number> = {};
  const replicas: Replica[] = [];
  let reopens = 0;
  let writesChecked = 0;
  let maxQueued = 0;
  /** Peak sampled RSS of the relay process (0 when the seed has none). */
  let maxRelayRssBytes = 0;
  let maxRssBytes = 0;
  const compactAfterUpdates = 20 + rng.int(200);
  const side = new SideProcesses(sideRng, { dir, id, seed, enabled: options.processes ?? true, log });
  const diskRng = rng.fork();
  const useDisk = (options.tmpfs ?? true) && process.getuid?.() === 0 && diskRng.chance(0.1);
  let tmpfs: Tmpfs | null = null;
  let filler: string | null = null;
  const disk = { episodes: 0, failedWrites: 0, refusedCloses: 0 };
  /** A database whose close was refused (full disk): closed again once space is back. */
  let refusedClose: { r: Replica; db: Database } | null = null;
  const fail = (message: string): never => {
    throw new ChaosFailure(seed, message);
  };

  const open = async (r: Replica): Promise<void> => {
    const transports: Transport[] = [new ChaosTransport(net, r.name)];
    const relayUrl = side.relayUrl;
    if (r.bridge && relayUrl !== undefined) {
      transports.push(new RelayTransport({ url: relayUrl, peerId: `bridge-${r.name}`, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } }));
    }
    let db: Database;
    try {
      db = await openDatabase({ id, path: r.path, transport: transports.length === 1 ? transports[0]! : transports, persistence: { compactAfterUpdates } });
    } catch (error) {
      await Promise.all(transports.map((t) => t.disconnect()));
      throw error;
    }
    r.db = db;
    const sub = db.events.subscribe({ capacity: 4096 });
    void (async () => {
      for await (const e of sub) {
        if (e.type !== 'error') continue;
        const code = (e.error as { code?: string }).code ?? e.error.name;
        errors[code] = (errors[code] ?? 0) + 1;
      }
    })();
    // The replica's transport belongs to it; closing the database leaves the network.
    const close = db.close.bind(db);
    db.close = async () => {
      try {
        await close();
      } finally {
        await Promise.all(transports.map((t) => t.disconnect()));
      }
    };
  };

  const sample = (): void => {
    for (const r of replicas) {
      if (!r.db) continue;
      for (const p of r.db.stats().peers) maxQueued = Math.max(maxQueued, p.queued);
    }
    maxRssBytes = Math.max(maxRssBytes, process.memoryUsage.rss());
    if (maxQueued > maxQueuedBound) fail(`an outbound queue held ${maxQueued} messages (bound ${maxQueuedBound})`);
    if (maxRssBytes > maxRss) fail(`RSS reached ${(maxRssBytes / 2 ** 20).toFixed(0)} MiB (bound ${(maxRss / 2 ** 20).toFixed(0)} MiB)`);
    maxRelayRssBytes = Math.max(maxRelayRssBytes, side.relayRss());
    if (maxRelayRssBytes > maxRss) fail(`the relay process's RSS reached ${(maxRelayRssBytes / 2 ** 20).toFixed(0)} MiB (bound ${(maxRss / 2 ** 20).toFixed(0)} MiB)`);
  };

  const freeDisk = async (): Promise<void> => {
    if (filler === null) return;
    rmSync(filler, { force: true });
    filler = null;
    for (const r of replicas) disk.failedWrites += r.db?.stats().storage.failedWrites ?? 0;
    if (refusedClose !== null) {
      const { r, db } = refusedClose;
      refusedClose = null;
      await db.close().catch((error: unknown) => fail(`close of ${r.name} still failed after space was freed: ${String(error)}`));
    }
  };

  try {
    await side.start(join(dir, 'r0.db'), model);
    if (useDisk) tmpfs = mountTmpfs(8 * 1024 * 1024);
    for (let i = 0; i < n; i++) {
      // r1 lives on the small tmpfs when this seed fills a disk; the last replica bridges to the relay.
      const path = tmpfs !== null && i === 1 ? join(tmpfs.dir, `r${i}.db`) : join(dir, `r${i}.db`);
      const r: Replica = { name: `r${i}`, path, db: null, bridge: i === n - 1, downFor: 0 };
      replicas.push(r);
      await open(r);
    }
    log(`seed ${seed}: ${n} replicas, ${steps} steps, compactAfterUpdates ${compactAfterUpdates}${side.describe()}${tmpfs ? ', r1 on a small tmpfs' : ''}`);

    const live = (): Replica[] => replicas.filter((r) => r.db !== null);
    for (let step = 0; step < steps; step++) {
      // Replicas that were closed come back after a few steps.
      for (const r of replicas) {
        if (r.db === null && --r.downFor <= 0 && refusedClose?.r !== r) {
          try {
            await open(r);
            reopens++;
          } catch (error) {
            // Only a full disk may refuse an open; try again a few steps later.
            if ((error as { code?: string }).code !== 'ERR_STORE_IO' || filler === null) throw error;
            r.downFor = 2;
          }
        }
      }
      const up = live();
      const r = rng.pick(up);
      const db = r.db!;
      const roll = rng.next();
      if (roll < 0.22) {
        const key = `w-${step}`;
        const data = { v: step, by: r.name, pad: 'x'.repeat(rng.int(200)) };
        db.put(key, data);
        model.unique.set(key, data);
      } else if (roll < 0.3) {
        // A bulk load: many puts in one transaction.
        const count = 10 + rng.int(90);
        db.doc.transact(() => {
          for (let k = 0; k < count; k++) {
            const key = `b-${step}-${k}`;
            const data = { v: k, by: r.name };
            db.put(key, data);
            model.unique.set(key, data);
          }
        });
      } else if (roll < 0.4) {
        // Concurrent edits of one node: two replicas write it in the same tick.
        const node = `c-${rng.int(CONTESTED)}`;
        const others = up.filter((o) => o !== r);
        const writers = others.length > 0 && rng.chance(0.7) ? [r, rng.pick(others)] : [r];
        for (const w of writers) {
          w.db!.put(node, { [`f-${w.name}`]: step, shared: `${w.name}@${step}` });
          let fields = model.contested.get(node);
          if (!fields) model.contested.set(node, (fields = new Map()));
          fields.set(`f-${w.name}`, step);
        }
      } else if (roll < 0.46) {
        const key = `d-${step}`;
        db.put(key, { v: step });
        model.deletable.add(key);
      } else if (roll < 0.52) {
        const held = [...model.deletable].filter((k) => db.get(k) !== undefined);
        if (held.length > 0) {
          const key = rng.pick(held);
          db.delete(key);
          model.deletable.delete(key);
          model.deleted.add(key);
        }
      } else if (roll < 0.64) {
        const text = db.doc.getText(TEXT);
        const at = rng.pick(boundaries(text.toString()));
        const token = `[${r.name}.${step}]`;
        text.insert(at, token);
        model.tokens.add(token);
      } else if (roll < 0.72) {
        net.faults = randomFaults(net.rng);
      } else if (roll < 0.78) {
        const other = rng.pick(up);
        if (other !== r) net.cut(r.name, other.name);
      } else if (roll < 0.83) {
        net.heal();
      } else if (roll < 0.87 && up.length > 2) {
        // Close a replica cleanly; it reopens a few steps later from its file.
        r.db = null;
        r.downFor = 1 + rng.int(6);
        try {
          await db.close();
        } catch (error) {
          // Only a full disk may refuse a close; the database keeps its writes and closes once space is back.
          if ((error as { code?: string }).code !== 'ERR_STORE_IO' || filler === null) fail(`close of ${r.name} failed: ${String(error)}`);
          disk.refusedCloses++;
          refusedClose = { r, db };
        }
      } else if (roll < 0.9) {
        await side.step(step);
      } else if (roll < 0.93 && tmpfs !== null) {
        if (filler === null) {
          filler = tmpfs.fill();
          disk.episodes++;
        } else {
          await freeDisk();
        }
      } else {
        await sleep(rng.int(15));
      }
      // Every write above was made in this tick: it is in SQLite once the tick's microtasks ran.
      await macrotask();
      if (step % 8 === 0) sample();
    }

    const scheduleDone = performance.now();
    // Heal everything: side processes finish (their acknowledged writes join the model), every
    // replica is open, every link is fresh and clean.
    await freeDisk();
    await side.heal();
    for (const r of replicas) {
      if (r.db === null) {
        await open(r);
        reopens++;
      }
    }
    net.resetAll();
    const dbs = replicas.map((r) => r.db!);
    const deadline = Date.now() + (options.convergeTimeoutMs ?? 30_000);
    // The second writer's acknowledged writes are in r0's FILE; r0's store watch (one check per
    // watchIntervalMs, 250 ms) brings them into r0's doc. Until it has, "every replica equal" can
    // hold without them — a converged state checked too early, not a lost write. Wait for r0
    // to hold every acknowledged write it shares a file with (bounded like convergence).
    const fromFile = [...model.unique.keys()].filter((key) => /^p\d+-\d+$/.test(key));
    for (;;) {
      const missing = fromFile.filter((key) => dbs[0]!.get(key) === undefined);
      if (missing.length === 0) break;
      if (Date.now() > deadline) fail(`acknowledged write ${missing[0]!} never reached r0 from its file (${missing.length} missing)`);
      await sleep(25);
    }
    for (;;) {
      const first = stateOf(dbs[0]!);
      if (dbs.every((d) => stateOf(d).equals(first))) break;
      if (Date.now() > deadline) {
        const sizes = dbs.map((d) => `${d.size} nodes`).join(', ');
        fail(`replicas did not converge within ${options.convergeTimeoutMs ?? 30_000} ms after healing (${sizes})`);
      }
      sample();
      await sleep(25);
    }
    // The replica processes behind the relay converge to the same state.
    for (;;) {
      const target = digestOf(stateOf(dbs[0]!));
      const digests = await side.digests();
      for (const d of digests) {
        maxRssBytes = Math.max(maxRssBytes, d.rss);
        maxQueued = Math.max(maxQueued, d.queued);
      }
      maxRelayRssBytes = Math.max(maxRelayRssBytes, side.relayRss());
      if (digests.every((d) => d.digest === target) && digestOf(stateOf(dbs[0]!)) === target) break;
      if (Date.now() > deadline) fail(`replica processes ${digests.filter((d) => d.digest !== target).map((d) => d.name).join(', ')} did not converge`);
      await sleep(50);
    }
    sample();

    // Identical encoded state everywhere (checked above); identical list() everywhere.
    const reference = JSON.stringify(dbs[0]!.list());
    for (const [i, d] of dbs.entries()) {
      if (JSON.stringify(d.list()) !== reference) fail(`list() of r${i} differs from r0's`);
    }
    writesChecked = verify(dbs[0]!, model, fail);

    const converged_at = performance.now();
    // The files hold the same: close everything, reopen each file alone, compare.
    const converged = stateOf(dbs[0]!);
    for (const r of replicas) {
      await r.db!.close().catch((error: unknown) => fail(`final close of ${r.name} failed: ${String(error)}`));
      r.db = null;
    }
    const files = [...replicas.map((r) => r.path), ...(await side.closeReplicas())];
    for (const path of files) {
      const reopened = await openDatabase({ id, path });
      try {
        const restored = Y.encodeStateAsUpdate(reopened.doc);
        if (!Buffer.from(restored).equals(converged)) fail(`${path} does not hold the converged state after close`);
      } finally {
        await reopened.close();
      }
    }
    return {
      seed,
      replicas: n,
      steps,
      faults: { ...net.counts },
      side: side.counts,
      disk,
      reopens,
      crashesSurvived: side.counts.replicaKills + side.counts.relayKills + side.counts.writerKills,
      writesChecked,
      maxQueued,
      maxRssBytes,
      maxRelayRssBytes,
      errors: { ...errors, ...side.errors },
      durationMs: Math.round(performance.now() - started),
      phasesMs: {
        schedule: Math.round(scheduleDone - started),
        converge: Math.round(converged_at - scheduleDone),
        files: Math.round(performance.now() - converged_at),
      },
    };
  } finally {
    for (const r of replicas) {
      if (r.db) await r.db.close().catch(() => undefined);
      r.db = null;
    }
    if (refusedClose !== null) await refusedClose.db.close().catch(() => undefined);
    await side.stop();
    tmpfs?.unmount();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Checks the model against a converged replica; returns how many writes it checked. */
function verify(db: Database, model: Model, fail: (message: string) => never): number {
  let checked = 0;
  for (const [key, data] of model.unique) {
    const got = db.get(key);
    if (JSON.stringify(got) !== JSON.stringify(Object.fromEntries(Object.entries(data).sort(([a], [b]) => a.localeCompare(b))))) {
      if (got === undefined) fail(`acknowledged write ${key} is missing`);
      const sorted = (o: Record<string, JsonValue>): string => JSON.stringify(Object.keys(o).sort().map((k) => [k, o[k]]));
      if (sorted(got) !== sorted(data)) fail(`acknowledged write ${key} holds ${JSON.stringify(got)}, expected ${JSON.stringify(data)}`);
    }
    checked++;
  }
  for (const key of model.deleted) {
    if (db.get(key) !== undefined) fail(`deleted node ${key} is back`);
    checked++;
  }
  for (const key of model.deletable) {
    if (db.get(key) === undefined) fail(`node ${key} (never deleted) is missing`);
    checked++;
  }
  for (const [node, fields] of model.contested) {
    const got = db.get(node);
    if (!got) fail(`contested node ${node} is missing`);
    for (const [field, value] of fields) {
      if (got![field] !== value) fail(`contested node ${node}: field ${field} is ${JSON.stringify(got![field])}, its only writer last wrote ${value}`);
      checked++;
    }
  }
  const text = db.doc.getText(TEXT).toString();
  for (const token of model.tokens) {
    if (!text.includes(token)) fail(`text token ${token} is missing or split`);
    checked++;
  }
  return checked;
}
