/**
 * The health monitor of one database: pings every peer session on a period, derives each
 * peer's health state and the database's own, and publishes changes as rate-limited events.
 */
import type { HealthSeverity, HealthState, SyncEvent } from '@rhizome/core';
import { EventLimiter, RESPONDING_PEER, databaseHealth, peerHealth, severityOf } from './health.js';
import type { HealthOptions, PeerMeter } from './health.js';
import type { PeerSession } from './session.js';
import { joinTicker, leaveTicker } from './ticker.js';

/** What the monitor needs from its database. */
export interface MonitorHost {
  sessions(): Iterable<PeerSession>;
  /** Local updates made since open (the sequence pings acknowledge). */
  localSeq(): number;
  /**
   * The local sequence a ping queued on `session` now can acknowledge: `localSeq()` unless
   * updates for that peer still wait outside its session queue (a broadcast group).
   */
  pingSeq?(session: PeerSession): number;
  /** The transport can reach other replicas (false for the disabled transport). */
  readonly networked: boolean;
  /** The store's current failure, if its last write failed. */
  storageError(): (Error & { code?: string }) | null;
  publish(event: SyncEvent): void;
  now(): number;
}

/** Largest number of unanswered pings per peer: a peer that answers none is not pinged further. */
export const MAX_PINGS_IN_FLIGHT = 4;

interface Tracked {
  health: HealthState;
  reason: string;
  /** The state last published (events are rate limited, so it may lag `health`). */
  published: HealthState;
  /** The peer's event budget, made at its first change (a full bucket then, as it would be). */
  limiter: EventLimiter | null;
}

/** The state of every healthy peer whose state never changed (shared, never written; a session holds it as one bit). */
const RESPONDING: Tracked = RESPONDING_PEER as Tracked;

/** Database-level health as shown by `db.stats().health`. */
export interface DatabaseHealthStatus {
  health: HealthState;
  severity: HealthSeverity;
  reason: string;
  /** Local updates no connected peer has acknowledged yet (since open). */
  unsentLocalUpdates: number;
}

/**
 * Ticked by one shared interval timer per check period for every monitor of the process, at most
 * 64 per turn of the event loop (ticker.ts); health checks never keep a process alive.
 */
export class HealthMonitor {
  // (Its private methods are TypeScript-private, not `#`: a class with `#` methods costs each
  // instance a slot, ARCHITECTURE § Memory of an idle replica; every database holds a monitor.)
  readonly #host: MonitorHost;
  readonly #o: Required<HealthOptions>;
  /** The database's event budget, made at its first change of state (a full bucket then, as it would be). */
  #dbLimiter: EventLimiter | null = null;
  #db: DatabaseHealthStatus;
  #dbPublished: HealthState = 'healthy';
  #unreachableSince: number | null;
  /** Highest local sequence any peer acknowledged (kept when that peer leaves). */
  #ackedEver = 0;
  #started = false;

  constructor(host: MonitorHost, options: Required<HealthOptions>) {
    this.#host = host;
    this.#o = options;
    // Whole milliseconds: a small integer lives in its field, a fraction would be a boxed number.
    this.#unreachableSince = Math.floor(host.now());
    this.#db = healthyStatus('just opened');
  }

  get options(): Required<HealthOptions> {
    return this.#o;
  }

  start(): void {
    if (!this.#o.enabled || this.#started) return;
    this.#started = true;
    joinTicker(this, this.#o.checkIntervalMs);
  }

  stop(): void {
    if (!this.#started) return;
    this.#started = false;
    leaveTicker(this, this.#o.checkIntervalMs);
  }

  /** The peer's current state (healthy until the first evaluation). */
  peer(session: PeerSession): { health: HealthState; reason: string } {
    const t = session.healthState as Tracked | null;
    return t ? { health: t.health, reason: t.reason } : { health: 'healthy', reason: 'connected' };
  }

  /** The database's current state, evaluated now (a copy: the state kept may be a shared record). */
  database(): DatabaseHealthStatus {
    this.evaluateDatabase(this.#host.now(), false);
    return { ...this.#db };
  }

  /**
   * {@link tick} for the shared timer: a round that throws is reported as that database's `error`
   * event, and the timer goes on to the other databases' monitors.
   */
  safeTick(): void {
    try {
      this.tick();
    } catch (error) {
      this.#host.publish({ type: 'error', error: error instanceof Error ? error : new Error(String(error)) });
    }
  }

  /**
   * One round: pings that are due, then every state. Called by the timer; public for the database.
   *
   * Pings go out in rounds: when one session's ping is due (`pingIntervalMs` since its last), every
   * session pinged at least half an interval ago is pinged in the same tick, so a database's pings
   * to its peers leave together (one socket write through a relay, see ARCHITECTURE.md § Health)
   * and the sessions converge on one phase. A session's first ping goes out one check period after
   * the monitor first sees its step 2 gone, not in the same tick: a ping queued behind the opening
   * exchange would measure that exchange, not the link, and would add a frame to every pair's
   * opening burst. That first ping is a due ping, so it takes along every session pinged at least
   * half an interval ago.
   */
  tick(): void {
    const now = this.#host.now();
    const interval = this.#o.pingIntervalMs;
    let due = false;
    // Sessions first seen able to ping in this round: their first ping is the next round's.
    let fresh: PeerMeter[] | null = null;
    for (const session of this.#host.sessions()) {
      if (session.closed || !session.canPing) continue;
      const meter = session.meter;
      if (meter.lastPingAt === -Infinity) {
        // The first ping is due one check period from now: off the opening burst, and soon enough
        // that a one-shot `rhizome status` (sync, then report) shows the peer's round trip.
        meter.lastPingAt = now - interval + this.#o.checkIntervalMs;
        (fresh ??= []).push(meter);
      } else if (now - meter.lastPingAt >= interval && meter.pingsInFlight < MAX_PINGS_IN_FLIGHT) due = true;
    }
    for (const session of this.#host.sessions()) {
      if (session.closed) continue;
      const meter = session.meter;
      if (due && session.canPing && now - meter.lastPingAt >= interval / 2 && meter.pingsInFlight < MAX_PINGS_IN_FLIGHT && !(fresh?.includes(meter) ?? false)) {
        session.ping(this.#host.pingSeq?.(session) ?? this.#host.localSeq());
      }
      this.evaluatePeer(session, now);
    }
    this.evaluateDatabase(now, true);
  }

  private evaluatePeer(session: PeerSession, now: number): void {
    const meter = session.meter;
    const next = peerHealth({ now, lastReceivedAt: meter.lastReceivedAt, rttMs: meter.rttMs, queued: session.queued }, this.#o);
    // Kept on the session (no map of sessions), and a healthy peer that never changed state shares
    // one record (RESPONDING): an idle process holds thousands of sessions.
    let t = session.healthState as Tracked | null;
    if (next.health === 'healthy' && next.reason === RESPONDING.reason && (t === null || t === RESPONDING || (t.published === 'healthy' && t.limiter === null))) {
      session.healthState = RESPONDING;
      return;
    }
    if (t === null || t === RESPONDING) {
      t = { health: 'healthy', reason: t === null ? 'connected' : RESPONDING.reason, published: 'healthy', limiter: null };
      session.healthState = t;
    }
    t.health = next.health;
    t.reason = next.reason;
    // Publish the current state when it differs from what subscribers last heard and the
    // peer's event budget allows; a suppressed change is published later if it still holds.
    if (t.health !== t.published && (t.limiter ??= new EventLimiter(this.#o.eventBurst, this.#o.eventRefillMs, now)).take(now)) {
      t.published = t.health;
      this.#host.publish({ type: 'peer-health', peerId: session.peerId, health: t.health, severity: severityOf(t.health), reason: t.reason });
    }
  }

  private evaluateDatabase(now: number, publish: boolean): void {
    let reachable = 0;
    for (const session of this.#host.sessions()) {
      if (session.closed || session.foreign) continue;
      if (this.peer(session).health !== 'unreachable') reachable++;
      this.#ackedEver = Math.max(this.#ackedEver, session.meter.ackedSeq);
    }
    const acked = this.#ackedEver;
    if (reachable > 0) this.#unreachableSince = null;
    else this.#unreachableSince ??= Math.floor(now);
    const unsent = Math.max(0, this.#host.localSeq() - acked);
    const next = databaseHealth(
      { now, networked: this.#host.networked, reachablePeers: reachable, unsentLocal: unsent, unreachableSince: this.#unreachableSince, storageError: this.#host.storageError() },
      this.#o,
    );
    const unsentLocalUpdates = this.#host.networked ? unsent : 0;
    this.#db = next.health === 'healthy' && next.severity === 'info' && unsentLocalUpdates === 0 ? healthyStatus(next.reason) : { ...next, unsentLocalUpdates };
    if (publish && this.#o.enabled && next.health !== this.#dbPublished && (this.#dbLimiter ??= new EventLimiter(this.#o.eventBurst, this.#o.eventRefillMs, now)).take(now)) {
      this.#dbPublished = next.health;
      this.#host.publish({ type: 'health', health: next.health, severity: next.severity, reason: next.reason });
    }
  }
}

/** Healthy states with nothing unsent, by reason: every database in one shares one frozen record (an idle database keeps its state). */
const healthyByReason = new Map<string, DatabaseHealthStatus>();

function healthyStatus(reason: string): DatabaseHealthStatus {
  let status = healthyByReason.get(reason);
  if (status === undefined) {
    status = Object.freeze({ health: 'healthy', severity: 'info', reason, unsentLocalUpdates: 0 });
    // A handful of reasons ('no pending deliveries', 'N peers reachable'); bounded all the same.
    if (healthyByReason.size >= 64) healthyByReason.clear();
    healthyByReason.set(reason, status);
  }
  return status;
}

/** Monitors ticked per turn of the event loop (the shared ticker's chunk, ticker.ts). */
export { TICK_CHUNK } from './ticker.js';
