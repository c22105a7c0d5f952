// Shared shapes of the comparison benchmark (bench/compare.ts and its child processes).
//
// Every system under test is driven through one small client interface, so the workload code
// (bench/compare/workloads.ts) is the same for Rhizome and for the peers. The peers' clients live
// in bench/peers/clients.mjs (plain JavaScript: their packages are installed only in the separate
// bench/peers project, so the root typecheck never sees them); Rhizome's in rhizome-client.ts.

/** The document layout every client writes: Rhizome's node model (bench/peers mirrors it). */
export const NODES_MAP = 'nodes';
export const FIELDS_MAP = 'fields';
export const FIELD_SEP = '\u0000';

/** Where and how a client connects. */
export interface ClientOptions {
  /** Base URL of the server, `ws://127.0.0.1:<port>`. */
  url: string;
  /** The document (Rhizome: database id; y-websocket/Hocuspocus: room/document name). */
  room: string;
  /** SQLite file for local persistence (Rhizome only; the peers persist on the server). */
  path?: string;
  /** Remote peers this client should be connected to before `ready()` resolves (Rhizome's mesh). */
  peers?: number;
}

/** One replica of one document. */
export interface BenchClient {
  /** Writes the given fields of node `id` in one transaction (Rhizome: `db.put`). */
  put(id: string, fields: Record<string, number>): void;
  /** Writes `count` nodes `${prefix}${i}` = { v: i } in one transaction (set-up of cold sync). */
  putMany(prefix: string, count: number): void;
  /** Live nodes in the local replica. */
  size(): number;
  /** Called for every field that a remote transaction changed, after it is applied locally. */
  onRemote(listener: (id: string, field: string, value: unknown) => void): void;
  /** Resolves once connected and through the first full exchange (and with `peers` peers). */
  ready(timeoutMs: number): Promise<void>;
  /** Size of `Y.encodeStateAsUpdate(doc)`. */
  stateBytes(): number;
  close(): Promise<void>;
  /** The system's own object behind the client (provider, database), for `ClientKit.inspect`. */
  handle?: unknown;
}

/** What a client holds when the idle workload checks it (after its memory was read). */
export interface ClientState {
  /** Connected to the server (y-websocket, Hocuspocus, bare) or to every peer it waited for (Rhizome). */
  connected: boolean;
  /** Through its first full exchange (with the server, or with each peer). */
  synced: boolean;
  /** Awareness states it holds, its own included (0 without awareness). */
  awarenessStates: number;
  /** Remote peers with a session (Rhizome's mesh); null for a system that talks to a server only. */
  peers: number | null;
}

/** A system under test, client side. */
export interface ClientKit {
  /** Package versions of the client side. */
  versions: Record<string, string>;
  open(options: ClientOptions): Promise<BenchClient>;
  /** A client's state, read through its `handle` (the idle workload's check that every replica is connected and synced). */
  inspect?(client: BenchClient): ClientState;
  /**
   * Sets the client's awareness state again, unchanged (clock 0 -> 1): what y-protocols' own check
   * does 15 s after a state was set. A receiver ignores a state at clock 0 from a client it does not
   * know (y-protocols `applyAwarenessUpdate`: `currClock < clock`), so before that renewal no replica
   * holds the others' states, after it every replica does: the idle workload measures the latter,
   * the steady state, in every system alike (BENCHMARKS.md § Issue 12, Session 12 (audit)).
   */
  renewPresence?(client: BenchClient): void;
  /**
   * Awareness states the client holds (its own included), read without side effects: the idle
   * workload polls it before measuring. `inspect` is for after the measurement only — Rhizome's
   * `db.stats()` makes and keeps per-session records (~0.4 KiB a replica at k = 5, heap snapshots).
   */
  awarenessStates?(client: BenchClient): number;
}

/** What a workload returns: named numbers; `notes` for anything odd (time-outs, partial runs). */
export interface WorkloadResult {
  values: Record<string, number>;
  notes?: string[];
  /** Client-side package versions (filled in by the driver). */
  versions?: Record<string, string>;
}

/** Parameters of each workload. */
export interface StreamParams {
  writes: number;
  /** Writes per macrotask in the tight loop (the loop yields with setImmediate between chunks). */
  chunk: number;
  timeoutMs: number;
  /** SQLite persistence at both ends (Rhizome) / on the server (peers). */
  persist?: boolean;
  /** Wait for the server's SQLite store to hold every write (Hocuspocus + SQLite). */
  waitStored?: boolean;
}
export interface PacedParams {
  writes: number;
  rate: number;
  timeoutMs: number;
}
export interface FanoutParams {
  databases: number;
  peers: number;
  /** Writes per second per peer. */
  rate: number;
  durationMs: number;
  timeoutMs: number;
}
export interface ColdParams {
  nodes: number;
  timeoutMs: number;
  /** The document, shared by the seed process and the joining one (set by the parent). */
  room: string;
}
export interface IdleParams {
  connections: number;
  perRoom: number;
  timeoutMs: number;
  /**
   * Warm up before the client's baseline (default true): one document of `perRoom` replicas in a
   * room of its own is opened, synced and closed, so that what the first connection loads once per
   * process (lazily imported modules, compiled code, caches) is in the baseline for every system.
   */
  warmup?: boolean;
  /**
   * Idle time after the last replica of a half is ready and holds its document's awareness states,
   * before that half is measured (default 6000 ms): a replica that is "ready" may still finish its
   * connection (Rhizome with no peers to wait for: `whenSynced({ minPeers: 0 })` does not wait for
   * the relay's WELCOME: 2.6 KiB a replica more at k = 1 when measured at once), and the idle state
   * includes the first round of periodic work (Rhizome's health pings every 5 s, y-protocols'
   * awareness check every 3 s). bench/client-memory.mjs waits (--wait-ms) the same way.
   */
  idleMs?: number;
  /** Renew every replica's awareness state once and wait for the exchange (default true; see `ClientKit.renewPresence`). */
  renewPresence?: boolean;
}

/**
 * The idle workload connects its replicas in two halves of whole documents and marks the server
 * between them ('half'), so the comparison can take the marginal memory of the second half.
 */
export function idleHalf(connections: number, perRoom: number): number {
  return Math.floor(connections / 2 / perRoom) * perRoom;
}

export type WorkloadName = 'stream' | 'paced' | 'fanout' | 'cold' | 'seed' | 'idle';

/** Parent → driver. */
export interface RunRequest {
  type: 'run';
  system: string;
  workload: WorkloadName;
  url: string;
  params: StreamParams | PacedParams | FanoutParams | ColdParams | IdleParams;
  tmpDir: string;
}

/** Driver → parent: ask for the server's counters now (the parent answers with `marked`). */
export interface MarkMessage {
  type: 'mark';
  name: string;
  gc?: boolean;
}

/** Driver → parent: wait until the server reports a store of `room` with `nodes` nodes. */
export interface WaitStoredMessage {
  type: 'wait-stored';
  room: string;
  nodes: number;
  timeoutMs: number;
}

/** Server counters (microseconds of CPU, bytes of memory). */
export interface ServerStats {
  cpuUser: number;
  cpuSystem: number;
  rss: number;
  heapUsed: number;
  /** V8 `external` (Buffers and other off-heap memory V8 knows of). */
  external: number;
  /** Peak RSS of the server process (Linux VmHWM; see relay-server.ts for why not resourceUsage().maxRSS). */
  maxRss: number;
  /** RSS and heap after V8's memory-reducing GC (only when the request asked for a GC). */
  rssReduced?: number;
  heapUsedReduced?: number;
  /** Read and write system calls of the server process so far (Linux /proc/self/io; absent elsewhere). */
  readCalls?: number;
  writeCalls?: number;
}
