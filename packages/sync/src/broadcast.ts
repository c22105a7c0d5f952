/**
 * Sealed topic broadcast: live updates sealed once and sent once to every peer that a transport
 * reaches through one {@link TopicBroadcast} (the relay's BROADCAST), instead of sealed and sent
 * once per peer. See ARCHITECTURE.md § Sync and sealing, "Broadcast".
 *
 * Pairwise sessions stay: the state-vector exchange, awareness, catch-up diffs and anything
 * too large for one frame go through each peer's own session; only live updates take the
 * broadcast. A broadcast frame is an ordinary sealed frame (same key, same associated data,
 * the sender's own nonce prefix and counter), holding one whole `UPDATES` message, never a
 * chunk: a receiver cannot tell it from a unicast one and needs nothing new to open it.
 */
import { ConnectionClosedError } from '@rhizome/core';
import type { TopicBroadcast } from '@rhizome/core';
import type { Flushable, TurnScheduler } from './coalesce.js';
import type { FrameSealer } from './seal.js';
import { PeerSession } from './session.js';
import { encodeUpdates, toFrames } from './wire.js';

/** What a broadcast group needs from its database. */
export interface BroadcastHost {
  readonly sealer: FrameSealer;
  readonly scheduler: TurnScheduler;
  /** Largest sealed frame the sync layer sends. */
  readonly maxFrameBytes: number;
  /** Queued update bytes before the queue is dropped for per-peer catch-up diffs. */
  readonly maxQueuedBytes: number;
  reportError(error: Error & { code?: string }): void;
  /** Local updates made since open (the sequence health pings acknowledge). */
  localSeq?(): number;
  /** The database's sessions: a group's members are those of them whose `broadcastGroup` it is. */
  sessions?(): Iterable<PeerSession>;
}

/** Counters of one broadcast group (sealed bytes as the transport carries them, counted once). */
export interface BroadcastStats {
  framesSent: number;
  bytesSent: number;
  collapses: number;
}

/** Bytes an `UPDATES` message may add around its updates: type, count, one length per update. */
const MESSAGE_HEAD = 1 + 5;
const PER_UPDATE = 5;

/**
 * The sessions that one {@link TopicBroadcast} reaches, and the queue of live updates for them.
 * Updates queued within a turn leave as one sealed frame (flushed by the turn scheduler); one
 * send is in flight at a time. If the queue passes `maxQueuedBytes`, or a send fails, the queued
 * updates are dropped and every member session queues a catch-up diff instead (computed from the
 * peer's state vector when sent), so nothing is lost; after a failed send the group stays
 * unusable and its members get updates pairwise.
 */
/** The queue of a group with nothing queued: one shared empty array (frozen: pushing to it would throw). */
const NO_UPDATES: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];

/** {@link BroadcastGroup}'s yes/no states: a send is in flight; a send failed (the group is unusable). */
const SENDING = 1;
const FAILED = 2;

export class BroadcastGroup implements Flushable {
  readonly channel: TopicBroadcast;
  /**
   * How many sessions are members. A member holds its group (`PeerSession.broadcastGroup`), and the
   * group finds its members among the host's sessions when it needs them (an oversized update, a
   * catch-up): no set entry per peer (an idle database holds its group for its whole life).
   */
  #members = 0;
  // Its counters as fields (`stats` makes a snapshot): no counters object per group.
  #framesSent = 0;
  #bytesSent = 0;
  #collapses = 0;
  readonly #host: BroadcastHost;
  /** {@link NO_UPDATES} while nothing is queued (an idle database holds its group for its whole life). */
  #queue: Uint8Array[] = NO_UPDATES;
  #queuedBytes = 0;
  /** {@link SENDING}, {@link FAILED}: bits of one small integer. */
  #bits = 0;
  /** Every local update up to this sequence number has been handed to the channel. */
  #handedSeq: number;
  /** {@link whenHanded} calls waiting for the channel to take local updates up to `seq`. */
  #handedWaiters: Array<{ seq: number; resolve: () => void }> | null = null;
  readonly #maxFrameBytes: number;

  // (Its private methods are TypeScript-private, not `#`: a class with `#` methods costs each
  // instance a slot, ARCHITECTURE § Memory of an idle replica; a database with peers holds a group.)

  constructor(channel: TopicBroadcast, host: BroadcastHost, maxFrameBytes = host.maxFrameBytes) {
    this.channel = channel;
    this.#host = host;
    this.#maxFrameBytes = maxFrameBytes;
    this.#handedSeq = host.localSeq?.() ?? 0;
  }

  /**
   * The local sequence a ping queued on a member session now can acknowledge: all of it when
   * nothing waits here, else what the channel already took (a ping must not vouch for updates
   * still queued behind it in this group).
   */
  get pingSeq(): number {
    const now = this.#host.localSeq?.() ?? 0;
    return (this.#bits & SENDING) === 0 && this.#queue.length === 0 ? now : Math.min(now, this.#handedSeq);
  }

  /** Frames and bytes sent, queues collapsed into catch-ups (a snapshot). */
  get stats(): BroadcastStats {
    return { framesSent: this.#framesSent, bytesSent: this.#bytesSent, collapses: this.#collapses };
  }

  /**
   * Resolves once every local update up to `seq` has left this group: handed to the channel, or
   * dropped for a catch-up that the member sessions queued instead. A message queued on a member
   * session after that (a delivery acknowledgement's step 1) then travels behind those updates.
   */
  whenHanded(seq: number): Promise<void> {
    if (this.pingSeq >= seq || !this.usable) return Promise.resolve();
    return new Promise((resolve) => (this.#handedWaiters ??= []).push({ seq, resolve }));
  }

  private wakeHanded(all = false): void {
    const waiters = this.#handedWaiters;
    if (waiters === null) return;
    const handed = this.pingSeq;
    const still: Array<{ seq: number; resolve: () => void }> = [];
    for (const w of waiters) {
      if (all || !this.usable || w.seq <= handed) w.resolve();
      else still.push(w);
    }
    this.#handedWaiters = still.length > 0 ? still : null;
  }

  /** How many sessions are members of this group. */
  get members(): number {
    return this.#members;
  }

  /** @internal The router's bookkeeping: a session joined (+1) or left (-1). */
  count(delta: 1 | -1): void {
    this.#members += delta;
  }

  /** The member sessions (the host's sessions whose group this is). */
  private *sessions(): Generator<PeerSession> {
    if (this.#members === 0) return;
    for (const session of this.#host.sessions?.() ?? []) if (session.broadcastGroup === this) yield session;
  }

  /** False once a send failed or the channel closed: members then get updates pairwise. */
  get usable(): boolean {
    return (this.#bits & FAILED) === 0 && !this.channel.closed;
  }

  /** Queues one live update for every member. */
  enqueue(update: Uint8Array): void {
    if (this.#queue === NO_UPDATES) this.#queue = [update];
    else this.#queue.push(update);
    this.#queuedBytes += update.length;
    if (this.#queuedBytes > this.#host.maxQueuedBytes) {
      this.#collapses++;
      this.dropForCatchUp();
      return;
    }
    if ((this.#bits & SENDING) === 0) this.#host.scheduler.request(this, update.length);
  }

  /** @internal Called by the scheduler once per turn. */
  flush(): void {
    if ((this.#bits & SENDING) === 0 && this.#queue.length > 0) void this.send();
  }

  private async send(): Promise<void> {
    this.#bits |= SENDING;
    const { sealer } = this.#host;
    const room = Math.min(this.#maxFrameBytes, this.channel.maxMessageSize) - sealer.overhead - 1 - MESSAGE_HEAD;
    try {
      while (this.#queue.length > 0 && this.usable) {
        const batch: Uint8Array[] = [];
        let bytes = 0;
        let taken = 0;
        for (const update of this.#queue) {
          if (batch.length > 0 && bytes + update.length + PER_UPDATE > room) break;
          batch.push(update);
          bytes += update.length + PER_UPDATE;
          taken++;
        }
        // Taking the whole queue hands over every local update made so far, once sent.
        const seqAtTake = taken === this.#queue.length ? (this.#host.localSeq?.() ?? 0) : -1;
        this.#queue = taken === this.#queue.length ? NO_UPDATES : this.#queue.slice(taken);
        this.#queuedBytes -= bytes - PER_UPDATE * taken;
        if (bytes > room) {
          // One update too large for a single frame: each session chunks it for its peer.
          for (const session of this.sessions()) session.sendUpdate(batch[0]!);
          continue;
        }
        const frame = sealer.seal(toFrames(encodeUpdates(batch), Number.MAX_SAFE_INTEGER)[0]!);
        await this.channel.send(frame);
        this.#framesSent++;
        this.#bytesSent += frame.length;
        if (seqAtTake > this.#handedSeq) this.#handedSeq = seqAtTake;
        this.wakeHanded();
      }
    } catch (error) {
      this.#bits |= FAILED;
      // A lost session closes the member Connections too (they resync on reconnect); anything
      // else (a frame the relay refused) is worth reporting. Either way, nothing is lost.
      if (!(error instanceof ConnectionClosedError)) this.#host.reportError(error instanceof Error ? error : new Error(String(error)));
      this.dropForCatchUp();
    } finally {
      this.#bits &= ~SENDING;
      if (this.#queue.length > 0 && this.usable) this.#host.scheduler.request(this);
      this.wakeHanded();
    }
  }

  private dropForCatchUp(): void {
    this.#queue = NO_UPDATES;
    this.#queuedBytes = 0;
    for (const session of this.sessions()) session.catchUp();
    // The catch-ups are queued on the sessions: whatever is queued there next travels behind them.
    this.wakeHanded(true);
  }
}

/**
 * Decides where each update goes: once to every usable broadcast group (but never back into the
 * group it came from, whose members all received it from its sender), and pairwise to every
 * other session except the one it came from.
 */
const NO_GROUPS: BroadcastGroup[] = Object.freeze([]) as unknown as BroadcastGroup[];

export class UpdateRouter {
  readonly #host: BroadcastHost;
  /**
   * The live groups: one per broadcast channel, so one or two (a database with several transports).
   * A list, and a session's group found by looking (no map per session): an idle database holds
   * its router for its whole life. Replaced by a copy on change, of exactly its groups (a `push`
   * would give it 17 slots).
   */
  #groups: BroadcastGroup[] = NO_GROUPS;
  /** Counters of groups that ended; null until one ends. */
  #retired: BroadcastStats | null = null;

  readonly #maxFrameBytes: number;

  /**
   * @param host The database's side (its host object: methods, not closures per database).
   * @param maxFrameBytes Largest sealed broadcast frame, when it differs from `host.maxFrameBytes`.
   */
  constructor(host: BroadcastHost, maxFrameBytes = host.maxFrameBytes) {
    this.#host = host;
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** A new session: joins the group of its connection's broadcast, if the transport offers one. */
  attach(session: PeerSession): void {
    const channel = session.conn.broadcast;
    if (channel === undefined || channel.closed) return;
    let group = this.#groups.find((g) => g.channel === channel);
    if (!group) {
      group = new BroadcastGroup(channel, this.#host, this.#maxFrameBytes);
      this.#groups = this.#groups.concat(group);
    }
    // One group per session (a session's connection has one broadcast).
    session.broadcastGroup?.count(-1);
    group.count(1);
    session.broadcastGroup = group;
  }

  /** The group `session` belongs to, if any (the session holds it). */
  private groupOf(session: PeerSession): BroadcastGroup | undefined {
    return session.broadcastGroup ?? undefined;
  }

  /** A session ended. */
  detach(session: PeerSession): void {
    const group = this.groupOf(session);
    if (!group) return;
    session.broadcastGroup = null;
    group.count(-1);
    if (group.members === 0) {
      this.#groups = this.#groups.filter((g) => g !== group);
      const retired = (this.#retired ??= { framesSent: 0, bytesSent: 0, collapses: 0 });
      retired.framesSent += group.stats.framesSent;
      retired.bytesSent += group.stats.bytesSent;
      retired.collapses += group.stats.collapses;
    }
  }

  /** Counters of groups that ended (a copy). */
  get retired(): BroadcastStats {
    return { ...(this.#retired ?? { framesSent: 0, bytesSent: 0, collapses: 0 }) };
  }

  /** The local sequence a ping queued on `session` now can acknowledge (see {@link BroadcastGroup.pingSeq}). */
  pingSeq(session: PeerSession, localSeq: number): number {
    const group = this.groupOf(session);
    return group === undefined ? localSeq : Math.min(localSeq, group.pingSeq);
  }

  /** Resolves once the local updates up to `seq` have left `session`'s group (at once without one). */
  whenHanded(session: PeerSession, seq: number): Promise<void> {
    const group = this.groupOf(session);
    return group === undefined ? Promise.resolve() : group.whenHanded(seq);
  }

  /** The live groups. */
  groups(): IterableIterator<BroadcastGroup> {
    return this.#groups.values();
  }

  /** Sends `update` (which came from `origin`: a session, or anything else for local) onwards. */
  route(update: Uint8Array, origin: unknown, sessions: Iterable<PeerSession>): void {
    const from = origin instanceof PeerSession ? this.groupOf(origin) : undefined;
    for (const group of this.#groups) {
      if (group !== from && group.usable && group.members > 0) group.enqueue(update);
    }
    for (const session of sessions) {
      if (session === origin) continue;
      const group = this.groupOf(session);
      if (group !== undefined && (group === from || group.usable)) continue;
      session.sendUpdate(update);
    }
  }
}
