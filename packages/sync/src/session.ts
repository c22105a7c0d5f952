import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { DecryptError, FrameTooLargeError, ProtocolError, RhizomeError } from '@rhizome/core';
import type { Connection, ConnectionListener, HealthState, PeerPath } from '@rhizome/core';
import { bytesToText, sameBytesAsText, textToBytes } from './compact.js';
import type { Flushable, TurnScheduler } from './coalesce.js';
import { applyRemoteUpdates } from './apply.js';
import { readAwarenessEntries } from './awareness-check.js';
import { encodeDiff } from './state-cache.js';
import { AckRequests } from './delivery.js';
import type { FrameSealer } from './seal.js';
import type { BroadcastGroup } from './broadcast.js';
import { PeerMeter, RESPONDING_PEER } from './health.js';
import {
  MSG_AWARENESS,
  MSG_BATCH,
  MSG_PING,
  MSG_PONG,
  MSG_SYNC_STEP1,
  MSG_SYNC_STEP2,
  MSG_UPDATES,
  Reassembler,
  decodeBatch,
  decodeMessage,
  wholeFrame,
  encodeAwareness,
  encodeBatch,
  encodeProbe,
  encodeStep1,
  encodeStep2,
  encodeUpdates,
  newRequestId,
  toFrames,
} from './wire.js';
import type { Message, ReassemblyResult } from './wire.js';
import { MSG_REPLICA, decodeReplica } from './replicas.js';

/** Traffic counters of one peer session (wire bytes: sealed frames as the transport carries them). */
export interface PeerStats {
  peerId: string;
  /** How the session reaches the peer: `'direct' | 'holepunched' | 'circuit' | 'relay' | 'memory'`. */
  path: PeerPath;
  /** The remote replica's id (hex) from its sealed REPLICA message; null from an older peer. */
  replicaId: string | null;
  /** True once the first full exchange with this peer is done (see {@link PeerSession.synced}). */
  synced: boolean;
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Frames that failed to open and were dropped. */
  decryptErrors: number;
  /** Messages waiting in the outbound queue. */
  queued: number;
  /** Times the queued updates passed `maxQueuedBytes` and collapsed into one catch-up diff. */
  collapses: number;
  /** Largest sealed frame sent to this peer (lowered if the transport refused bigger ones). */
  maxFrameBytes: number;
  /** The transport carrying this session (`relay`, `dht`, `memory`, ...). */
  transport: string;
  /** When the session started (ms since the epoch). */
  connectedAt: number;
  /** Smoothed round-trip time of sealed pings (ms); before the first answer, the transport's own (libp2p ping) if it has one, else null. */
  rttMs: number | null;
  /** `healthy`, `degraded` or `unreachable`, with the reason (see ARCHITECTURE.md § Health). */
  health: HealthState;
  healthReason: string;
  /** Milliseconds since the last frame from this peer. */
  idleMs: number;
  /** Per-second averages over the last minute. */
  rates: { bytesIn: number; bytesOut: number; framesIn: number; framesOut: number };
  /** Local updates (since open) this peer has not acknowledged yet. */
  unackedUpdates: number;
  pingsSent: number;
  pongsReceived: number;
}

/** What a session needs from its database. */
export interface SessionHost {
  readonly doc: Y.Doc;
  readonly awareness: awarenessProtocol.Awareness;
  readonly sealer: FrameSealer;
  /** Flushes outbound queues once per turn (coalescing, see coalesce.ts). */
  readonly scheduler: TurnScheduler;
  /** Largest sealed frame the transport carries. */
  readonly maxFrameBytes: number;
  /** Smallest frame limit the session can adapt down to. */
  readonly minFrameBytes: number;
  /** Bound on one reassembled message. */
  readonly maxMessageBytes: number;
  /** Bound on queued outbound update bytes before the queue collapses into one catch-up diff. */
  readonly maxQueuedBytes: number;
  reportError(error: Error & { code?: string }): void;
  onSynced(session: PeerSession): void;
  /** The session turned out foreign (see {@link PeerSession.foreign}). */
  onForeign(session: PeerSession): void;
  /** Monotonic clock in ms (`performance.now()`). */
  now(): number;
  onClosed(session: PeerSession, reason?: string): void;
  /** This replica's sealed REPLICA message, sent first in every session (see `replicas.ts`). */
  readonly replicaHello?: Uint8Array;
  /** The peer told its replica id ({@link PeerSession.replicaId}). */
  onReplica?(session: PeerSession): void;
}

/** An outbound queue entry. Consecutive updates are batched into one message when sent. */
type Outgoing =
  | { kind: 'message'; bytes: Uint8Array }
  /** A sync step 2 answer: {@link PeerSession.onAnswerSent} runs once the transport took it. */
  | { kind: 'answer'; bytes: Uint8Array }
  /** A ping: its meter records when the transport took it (no closure per ping). */
  | { kind: 'ping'; bytes: Uint8Array; id: number }
  | { kind: 'update'; bytes: Uint8Array }
  /** Replaces dropped updates: everything the peer may lack, computed when sent. */
  | { kind: 'catch-up' };

/** What the sender hands to the connection: a queued message as it is, or updates and catch-ups encoded. */
type Sendable = Extract<Outgoing, { kind: 'message' | 'answer' | 'ping' }>;

const KNOWN_TYPES = new Set<number>([MSG_SYNC_STEP1, MSG_SYNC_STEP2, MSG_UPDATES, MSG_AWARENESS, MSG_PING, MSG_PONG]);

/** Largest batch of live updates sent as one message. */
const UPDATE_BATCH_BYTES = 1024 * 1024;

/**
 * Most sync requests (step 1s) of one peer held while an answer to it is still unsent; one more
 * is a protocol error (a key holder flooding step 1s). Held requests cost their 16-byte ids.
 */
export const MAX_HELD_SYNC_REQUESTS = 4096;

/** When a queued message leaves ({@link PeerSession.enqueue}): on the scheduler's next turn, or at the caller's flush in this task. */
const NEXT_TURN = 0;
const HANDSHAKE = 1;

/** A Yjs v1 update with no structs and an empty delete set: the answer to a held request past the first. */
const EMPTY_UPDATE = new Uint8Array([0, 0]);

/** Origin of awareness removals done by the sync layer when a peer leaves (not rebroadcast). */
export const AWARENESS_DISCONNECT_ORIGIN: unique symbol = Symbol('rhizome.awareness-disconnect');

/**
 * The parts of a session used only at times: while a chunked message arrives, while something
 * waits for the queue to drain or for the session to end, while step 1s are held, after a
 * failure, once delivery acknowledgements were asked for. An idle synced session holds none of
 * it: one slot instead of seven (an idle process holds thousands of sessions).
 */
interface SessionRare {
  /**
   * Our step-1 request id (as text: see compact.ts) until synced (the answer to it arrived: a
   * later {@link PeerSession.resync} asks with a fresh id). Here, not in a field of every
   * session: a session holds its rare part from its start until it is synced, and drops it then
   * if nothing else is in it (see `settleRare`).
   */
  requestId: string | null;
  /** Made for the first chunked message and dropped once it is whole (whole frames need none). */
  reassembler: Reassembler | null;
  drainWaiters: Array<() => void> | null;
  /** Request ids of step 1s that came while an answer was unsent (answered once it is sent). */
  heldRequests: Uint8Array[] | null;
  failReason: string | undefined;
  /** Resolves {@link PeerSession.ended}'s promise (made only when someone waits). */
  onEnded: (() => void) | null;
  ended: Promise<void> | null;
  /** Delivery acknowledgements (see delivery.ts); made on the first {@link PeerSession.acknowledge}. */
  acks: AckRequests | null;
  /** The monitor's record of this peer when it is not the shared one (see {@link PeerSession.healthState}). */
  healthState: object | null;
  /** Frames from the peer that failed to open (usually none: counted here, not in a field of every session). */
  decryptErrors: number;
  /** Times queued updates were dropped for one catch-up diff. */
  collapses: number;
  /** The frame limit the transport taught the session (see {@link PeerSession.maxFrameBytes}); 0: the host's. */
  maxFrameBytes: number;
}

/**
 * Bits of {@link PeerSession}'s `#flags`: its seven yes/no states, how the peer opened, whether a frame of it opened, whether its health is the shared record, the replica router's mark and
 * (high bits) its unsent step 2 answers, in one small integer instead of eleven fields (an idle process holds thousands of sessions).
 */
const PUMPING = 1;
const RECEIVED_STEP2 = 2;
const SENT_STEP2 = 4;
const SYNCED = 8;
const FAILED = 16;
const CLOSED = 32;
const ACKS_READY = 64;
/** Two bits: how the peer opened (see `#peerOpening`). */
const OPENING_SHIFT = 7;
const OPENING_MASK = 3 << OPENING_SHIFT;
/** A frame from the peer opened under the database key (see {@link PeerSession.foreign}). */
const OPENED = 1 << 9;
/** {@link PeerSession.healthState} is the monitor's shared {@link RESPONDING_PEER} record. */
const RESPONDING = 1 << 10;
/** The replica router's mark: this session is its replica's active one (see {@link PeerSession.routed}). */
const ROUTED = 1 << 11;
/**
 * The rest: step 2 answers queued and not sent yet (at most {@link MAX_HELD_SYNC_REQUESTS} + 1,
 * so 13 bits; the flags stay a small integer).
 */
const ANSWERS_SHIFT = 12;
const ANSWER = 1 << ANSWERS_SHIFT;

/**
 * A session's outbound queue and its two numbers in one array (one field of the session, not
 * three: an idle process holds thousands of sessions): slot {@link HEAD} is the index of the next
 * message to send, slot {@link BYTES} the bytes of the updates queued, the messages from slot
 * {@link FIRST} on.
 */
type QueueSlots = Array<Outgoing | number>;
const HEAD = 0;
const BYTES = 1;
const FIRST = 2;

/**
 * The queue of a session with nothing to send: one shared array of no message (frozen: writing to
 * it would throw), replaced by a session's own on the first message queued and put back once drained.
 */
const NO_QUEUE: QueueSlots = Object.freeze([FIRST, 0]) as unknown as QueueSlots;

/**
 * The sync protocol with one peer over one Connection.
 *
 * Both sides open with sync step 1 (their state vector and a fresh request id) and answer the
 * other's step 1 with step 2 (the update the other lacks, echoing the request id); from then on,
 * live updates and awareness flow both ways. The session is **synced** once (a) the step 2 that
 * answers our own step 1 has been received and applied, and (b) our step 2 answering the peer's
 * step 1 has been accepted by the transport. Both sides then hold everything the other held
 * when it answered.
 *
 * Outbound messages go through one FIFO queue drained by a single sender: frames the transport
 * takes at once (`Connection.trySend`) go synchronously, and from the first it refuses the sender
 * awaits `Connection.send` (the transport's backpressure): never more than one send in flight.
 * A session opens with one {@link MSG_BATCH} message (REPLICA, step 1, awareness).
 * Updates queued back to back are batched into one message; when queued update bytes pass
 * `maxQueuedBytes`, they are dropped in favour of one catch-up diff against the peer's state
 * vector, computed when it is sent, so memory stays bounded under a write burst.
 */
export class PeerSession extends PeerMeter implements Flushable, ConnectionListener {
  readonly conn: Connection;
  readonly #host: SessionHost;
  /**
   * What the session holds only at times (see {@link SessionRare}); null while it holds none of
   * it. While it holds nothing but our step-1 request id — from its start until synced, the usual
   * handshake — it is that id itself, a string, not a record around it: the record lived as long
   * as the handshake, so a burst of connecting replicas promoted it (one per session, 6,000 of
   * 6,020 at 1,500 replicas) to die in the old generation once synced (BENCHMARKS.md § Issue 12,
   * Session 14 (rss)).
   */
  #rare: SessionRare | string | null = null;
  /** The outbound queue, its head and its update bytes ({@link QueueSlots}); {@link NO_QUEUE} while nothing waits to be sent. */
  #queue: QueueSlots = NO_QUEUE;
  /** Yes/no states, one bit each (see {@link PUMPING}); read and written through the accessors below. */
  #flags = 0;
  /** The peer's state vector from its step 1 (as text: see compact.ts), for catch-up diffs. */
  #remoteStateVector: string | null = null;
  /** The remote replica's id (hex), once its REPLICA message arrived; null before (or from an older peer). */
  replicaId: string | null = null;
  /** @internal The broadcast group this session is a member of (broadcast.ts `UpdateRouter`), if any. */
  broadcastGroup: BroadcastGroup | null = null;
  /**
   * Awareness client ids this peer told us about (removed when it leaves): usually one, held as the
   * number. A uint32 id is held as the int32 of the same bits (see {@link smallClientId}): a client
   * id is a random uint32, and one above 2^31 - 1 in a field is a boxed number (16 B of heap for
   * every session once any holds one).
   */
  #awarenessClients: number | number[] | null = null;

  constructor(conn: Connection, host: SessionHost) {
    // A session is its peer's meter (one object per peer, not two: an idle process holds thousands).
    super(host.now(), 0);
    this.conn = conn;
    this.#host = host;
    this.#rare = bytesToText(newRequestId());
  }

  /** The rarely used part, made on first use (around the request id, if that is all there was). */
  private r(): SessionRare {
    const rare = this.#rare;
    if (rare !== null && typeof rare === 'object') return rare;
    const made: SessionRare = { requestId: rare, reassembler: null, drainWaiters: null, heldRequests: null, failReason: undefined, onEnded: null, ended: null, acks: null, healthState: null, decryptErrors: 0, collapses: 0, maxFrameBytes: 0 };
    this.#rare = made;
    return made;
  }

  /** The rare part if it was made as a record (see {@link #rare}), else null. (TypeScript-private: a `#` getter costs each instance a slot.) */
  private get rare(): SessionRare | null {
    const rare = this.#rare;
    return typeof rare === 'object' ? rare : null;
  }

  /** Our step-1 request id until synced (see {@link SessionRare.requestId}). */
  private get requestId(): string | null {
    const rare = this.#rare;
    return typeof rare === 'string' ? rare : (rare?.requestId ?? null);
  }

  /** Drops the rare record if it holds nothing but the request id (as {@link r} would make it): the id alone, or nothing, stays. */
  private settleRare(): void {
    const rare = this.#rare;
    if (
      rare !== null &&
      typeof rare === 'object' &&
      rare.reassembler === null &&
      rare.drainWaiters === null &&
      rare.heldRequests === null &&
      rare.failReason === undefined &&
      rare.onEnded === null &&
      rare.ended === null &&
      rare.acks === null &&
      rare.healthState === null &&
      rare.decryptErrors === 0 &&
      rare.collapses === 0 &&
      rare.maxFrameBytes === 0
    ) {
      this.#rare = rare.requestId;
    }
  }

  /**
   * @internal The health monitor's state of this peer (monitor.ts); null before its first
   * evaluation. A healthy peer whose state never changed holds the monitor's shared record, kept
   * as one bit of the flags (not a field of every session); any other in the rare part.
   */
  get healthState(): object | null {
    return this.flag(RESPONDING) ? RESPONDING_PEER : (this.rare?.healthState ?? null);
  }

  set healthState(state: object | null) {
    this.setFlag(RESPONDING, state === RESPONDING_PEER);
    if (state === RESPONDING_PEER) {
      const rare = this.rare;
      if (rare !== null) rare.healthState = null;
    } else if (state !== null || this.rare !== null) this.r().healthState = state;
  }

  /**
   * @internal The replica router's mark (replicas.ts `ReplicaRouter`): this session is its
   * replica's active one. One bit of the flags instead of a map entry per remote replica.
   */
  get routed(): boolean {
    return this.flag(ROUTED);
  }

  set routed(on: boolean) {
    this.setFlag(ROUTED, on);
  }

  /** The remote peer (its Connection's). */
  get peerId(): string {
    return this.conn.peerId;
  }

  /** Health measurements: rates, silence, pings, RTT, acknowledged local updates (the session itself: see {@link PeerMeter}). */
  get meter(): PeerMeter {
    return this;
  }

  private flag(bit: number): boolean {
    return (this.#flags & bit) !== 0;
  }

  private setFlag(bit: number, on: boolean): void {
    this.#flags = on ? this.#flags | bit : this.#flags & ~bit;
  }

  // The yes/no states, as fields would read (one bit each of #flags).
  private get pumping(): boolean {
    return this.flag(PUMPING);
  }
  private set pumping(on: boolean) {
    this.setFlag(PUMPING, on);
  }
  private get receivedStep2(): boolean {
    return this.flag(RECEIVED_STEP2);
  }
  private set receivedStep2(on: boolean) {
    this.setFlag(RECEIVED_STEP2, on);
  }
  private get sentStep2(): boolean {
    return this.flag(SENT_STEP2);
  }
  private set sentStep2(on: boolean) {
    this.setFlag(SENT_STEP2, on);
  }
  private get syncedFlag(): boolean {
    return this.flag(SYNCED);
  }
  private set syncedFlag(on: boolean) {
    this.setFlag(SYNCED, on);
  }
  private get failed(): boolean {
    return this.flag(FAILED);
  }
  private set failed(on: boolean) {
    this.setFlag(FAILED, on);
  }
  private get closedFlag(): boolean {
    return this.flag(CLOSED);
  }
  private set closedFlag(on: boolean) {
    this.setFlag(CLOSED, on);
  }
  /** Step 2 answers queued and not sent yet (the flags' high bits, see {@link ANSWERS_SHIFT}). */
  private get answersUnsent(): number {
    return this.#flags >>> ANSWERS_SHIFT;
  }
  /** The answer to the peer's first step 1 is queued (what {@link AckRequests.ready} marks). */
  private get acksReady(): boolean {
    return this.flag(ACKS_READY);
  }
  private set acksReady(on: boolean) {
    this.setFlag(ACKS_READY, on);
  }
  /**
   * How the peer opened: 0 nothing heard yet, 1 with a batch, 2 with separate messages (a peer
   * that predates {@link MSG_BATCH}: it skipped ours, so ours is sent again unbatched).
   */
  private get peerOpening(): number {
    return (this.#flags & OPENING_MASK) >> OPENING_SHIFT;
  }
  private set peerOpening(how: number) {
    this.#flags = (this.#flags & ~OPENING_MASK) | (how << OPENING_SHIFT);
  }

  /**
   * Traffic and error counters (a snapshot: the frame and byte totals live in the {@link meter},
   * the rare counters in the session's rarely used part).
   */
  get stats(): { framesSent: number; framesReceived: number; bytesSent: number; bytesReceived: number; decryptErrors: number; collapses: number } {
    const m = this.meter;
    return {
      framesSent: m.framesSent,
      framesReceived: m.framesReceived,
      bytesSent: m.bytesSent,
      bytesReceived: m.bytesReceived,
      decryptErrors: this.rare?.decryptErrors ?? 0,
      collapses: this.rare?.collapses ?? 0,
    };
  }

  /** True once the first full exchange is done (see the class description). */
  get synced(): boolean {
    return this.syncedFlag;
  }

  /**
   * True while every frame this peer sent failed to open (and at least one did): a peer of
   * the topic without the database key. `whenSynced` does not wait for it, since it never
   * completes an exchange; a frame that opens later makes it a regular peer again.
   */
  get foreign(): boolean {
    return !this.flag(OPENED) && (this.rare?.decryptErrors ?? 0) > 0;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Messages waiting to be sent. */
  get queued(): number {
    const q = this.#queue;
    return q.length - (q[HEAD] as number);
  }

  /**
   * Starts the exchange. Frames are handled as the connection delivers them
   * ({@link Connection.listen}: an idle session holds no pending read), or by a receive loop
   * for a Connection without `listen`. {@link ended} tells when it is over.
   */
  start(): void {
    // The opening messages are made in a plain method: nothing of them stays referenced.
    this.open();
    if (this.conn.listen) this.conn.listen(this);
    else void this.pull();
    this.flush();
  }

  /** Starts the exchange; resolves when the connection ends. */
  run(): Promise<void> {
    this.start();
    return this.ended();
  }

  /**
   * Ends the session without waiting any longer for its connection to report the close: its
   * database is closing and the connection did not end within `CLOSE_DRAIN_MS` (a transport that
   * never reports it). The session ends as on any other end — its meter row goes back, its peer
   * is reported gone — and a report that still comes changes nothing.
   */
  abandon(reason: string): void {
    this.finish(reason);
  }

  /** Resolves once the session ended (its connection closed). */
  ended(): Promise<void> {
    if (this.closedFlag) return Promise.resolve();
    const rare = this.r();
    return (rare.ended ??= new Promise<void>((resolve) => (rare.onEnded = resolve)));
  }

  /** @internal {@link ConnectionListener}: one frame from the peer. */
  onMessage(frame: Uint8Array): void {
    // After a fatal error, frames still in flight are not processed.
    if (this.closedFlag || this.failed) return;
    try {
      this.receive(frame);
    } catch (error) {
      this.endWith(error);
    }
  }

  /** @internal {@link ConnectionListener}: the connection closed (`error`: it failed). */
  onEnd(error: Error | null): void {
    if (error === null) this.finish(this.rare?.failReason ?? 'connection closed');
    else this.endWith(error);
  }

  private endWith(error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    if (!this.closedFlag) this.#host.reportError(asError(error));
    this.finish(reason);
  }

  /** The receive loop for a Connection without `listen`. */
  private async pull(): Promise<void> {
    let reason: string | undefined;
    try {
      // receive() rather than `for await`: no async generator kept per idle session.
      let frame: Uint8Array | null;
      while ((frame = await this.conn.receive()) !== null) {
        // After a fatal error, frames still buffered in the connection are not processed.
        if (this.closedFlag || this.failed) break;
        this.receive(frame);
        frame = null; // not held by the suspended loop until the next frame
      }
      reason = this.rare?.failReason ?? 'connection closed';
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error);
      if (!this.closedFlag) this.#host.reportError(asError(error));
    } finally {
      this.finish(reason);
    }
  }

  /** Awareness client ids this peer told us about. */
  get awarenessClients(): readonly number[] {
    const ids = this.#awarenessClients;
    return ids === null ? [] : typeof ids === 'number' ? [clientIdOf(ids)] : ids.map(clientIdOf);
  }

  /** The peer told us about awareness client `id`. */
  addAwarenessClient(client: number): void {
    const id = smallClientId(client);
    const ids = this.#awarenessClients;
    if (ids === null) this.#awarenessClients = id;
    else if (typeof ids === 'number') {
      if (ids !== id) this.#awarenessClients = [ids, id];
    } else if (!ids.includes(id)) ids.push(id);
  }

  /** The peer's awareness client `id` went away. */
  removeAwarenessClient(client: number): void {
    const id = smallClientId(client);
    const ids = this.#awarenessClients;
    if (ids === null) return;
    if (typeof ids === 'number') {
      if (ids === id) this.#awarenessClients = null;
      return;
    }
    const i = ids.indexOf(id);
    if (i < 0) return;
    ids.splice(i, 1);
    if (ids.length === 1) this.#awarenessClients = ids[0]!;
  }

  /**
   * Queues what every session opens with: the REPLICA message, sync step 1, our awareness, as one
   * {@link MSG_BATCH} message (one sealed frame). A peer that predates batches skips it; when its
   * own opening comes without one, {@link #noteOpening} sends the same messages again, separately.
   */
  private open(): void {
    this.enqueue({ kind: 'message', bytes: encodeBatch(this.openingMessages()) }, HANDSHAKE);
  }

  /** The REPLICA message, sync step 1 (current state vector, our request id), our awareness. */
  private openingMessages(): Uint8Array[] {
    const messages: Uint8Array[] = [];
    if (this.#host.replicaHello) messages.push(this.#host.replicaHello);
    // (Before sync only: a peer's opening comes before the answer to ours.)
    messages.push(encodeStep1(this.requestId === null ? newRequestId() : textToBytes(this.requestId), stateVector(this.#host.doc)));
    const { awareness } = this.#host;
    if (awareness.states.size > 0) {
      const update = awarenessProtocol.encodeAwarenessUpdate(awareness, [...awareness.states.keys()]);
      messages.push(encodeAwareness(update));
    }
    return messages;
  }

  /**
   * The peer's opening tells how it speaks: a batch, or (a peer that predates batches) its REPLICA
   * message or step 1 on their own, and then it gets our opening again, unbatched. Other messages
   * decide nothing: a live update can come before the opening (over a relay, the peer's BROADCAST
   * reaches us as soon as we joined, its opening only once it heard of us).
   */
  private noteOpening(type: number | undefined): void {
    if (this.peerOpening !== 0) return;
    if (type === MSG_BATCH) this.peerOpening = 1;
    else if (type === MSG_REPLICA || type === MSG_SYNC_STEP1) this.peerOpening = 2;
    else return;
    if (this.peerOpening === 2 && !this.closedFlag) for (const bytes of this.openingMessages()) this.enqueue({ kind: 'message', bytes });
  }

  /** Queues a live update (not sent back to the peer it came from: the caller checks origin). */
  sendUpdate(update: Uint8Array): void {
    if (this.closedFlag) return;
    this.enqueue({ kind: 'update', bytes: update });
    // (Never the shared empty queue here: the update was just queued.)
    const q = this.#queue;
    const bytes = (q[BYTES] as number) + update.length;
    q[BYTES] = bytes;
    if (bytes > this.#host.maxQueuedBytes) this.collapse();
  }

  /**
   * Queues one catch-up diff (everything the peer may lack, against its step-1 state vector,
   * computed when sent): used when updates meant for this peer were dropped elsewhere (a
   * broadcast queue that overflowed or failed).
   */
  catchUp(): void {
    if (this.closedFlag) return;
    this.enqueue({ kind: 'catch-up' });
  }

  /** Queues an awareness update. */
  sendAwareness(update: Uint8Array): void {
    if (this.closedFlag) return;
    this.enqueue({ kind: 'message', bytes: encodeAwareness(update) });
  }

  /**
   * True once our sync step 2 has left: a ping queued from then on is answered only after the
   * peer processed that step 2 and every update queued before the ping.
   */
  get canPing(): boolean {
    return this.sentStep2 && !this.closedFlag && !this.failed;
  }

  /**
   * Queues a sealed ping. Its pong gives a round-trip sample and acknowledges local updates up
   * to `seq` (every update queued before it).
   */
  ping(seq: number): void {
    if (this.closedFlag) return;
    const id = this.meter.newPing(seq, this.#host.now());
    this.enqueue({ kind: 'ping', bytes: encodeProbe(MSG_PING, id), id });
  }

  /** Resolves once the outbound queue is empty (or the session closed). */
  drained(): Promise<void> {
    if (this.closedFlag || (this.queued === 0 && !this.pumping)) return Promise.resolve();
    return new Promise((resolve) => (this.r().drainWaiters ??= []).push(resolve));
  }

  /**
   * Resolves `true` once the peer has applied everything queued for it so far (it answered a
   * fresh sync step 1 sent behind it), `false` if the session ends first. See delivery.ts.
   */
  acknowledge(): Promise<boolean> {
    const rare = this.r();
    if (rare.acks === null) {
      const acks = new AckRequests(
        (requestId) => this.enqueue({ kind: 'message', bytes: encodeStep1(requestId, Y.encodeStateVector(this.#host.doc)) }),
        newRequestId,
      );
      // Held first (a rare part holding acks is never dropped, see settleRare), then told its state.
      rare.acks = acks;
      if (this.closedFlag) acks.close();
      else if (this.acksReady) acks.ready();
    }
    return rare.acks.request();
  }

  /**
   * Re-runs the exchange: a diff of everything since the peer's last known state vector, and a
   * new step 1. For a standby session that becomes its replica's active one (see `replicas.ts`).
   */
  resync(): void {
    if (this.closedFlag) return;
    if (this.#remoteStateVector !== null) this.enqueue({ kind: 'catch-up' });
    this.enqueue({ kind: 'message', bytes: encodeStep1(this.requestId === null ? newRequestId() : textToBytes(this.requestId), Y.encodeStateVector(this.#host.doc)) });
  }

  /** The message a frame completes (see wire.ts); a Reassembler lives only while chunks arrive. */
  private reassemble(plain: Uint8Array): ReassemblyResult {
    let reassembler = this.rare?.reassembler ?? null;
    if (reassembler === null) {
      const whole = wholeFrame(plain, this.#host.maxMessageBytes);
      if (whole !== null) return whole;
      reassembler = this.r().reassembler = new Reassembler(this.#host.maxMessageBytes);
    }
    const result = reassembler.push(plain);
    if (result.kind === 'message' && reassembler.bufferedBytes === 0) this.r().reassembler = null;
    return result;
  }

  /** Closes the connection; the receive loop then ends and the host hears `onClosed`. */
  async close(): Promise<void> {
    await this.conn.close();
  }

  // ---- inbound ------------------------------------------------------------------------------

  private receive(frame: Uint8Array): void {
    this.meter.received(frame.length, this.#host.now());
    let plain: Uint8Array;
    try {
      plain = this.#host.sealer.open(frame);
    } catch (error) {
      // Wrong key or tampered bytes: drop the frame, report it, carry on.
      const errors = ++this.r().decryptErrors;
      this.#host.reportError(error instanceof DecryptError ? error : new DecryptError());
      if (!this.flag(OPENED) && errors === 1) this.#host.onForeign(this);
      return;
    }
    this.#flags |= OPENED;
    let whole: Uint8Array;
    try {
      const result = this.reassemble(plain);
      if (result.kind === 'pending') return;
      if (result.kind === 'dropped') {
        this.#host.reportError(result.error);
        return;
      }
      whole = result.message;
    } catch (error) {
      // Only a holder of the key can produce these (the frame opened): a broken or hostile peer.
      this.fail(error);
      return;
    }
    this.noteOpening(whole[0]);
    if (whole[0] !== MSG_BATCH) {
      this.dispatch(whole);
      return;
    }
    let messages: Uint8Array[];
    try {
      messages = decodeBatch(whole);
    } catch (error) {
      this.fail(error);
      return;
    }
    for (const message of messages) if (!this.dispatch(message)) return;
  }

  /** Handles one whole message; false once the session failed or closed (the rest of a batch is dropped). */
  private dispatch(bytes: Uint8Array): boolean {
    let message: Message;
    try {
      if (bytes[0] === MSG_REPLICA) {
        if (this.replicaId === null) {
          const id = decodeReplica(bytes);
          // A relay transport that a database made for itself has its replica id as peer id
          // (openDatabase): then the session keeps the Connection's string, not a copy.
          this.replicaId = id === this.conn.peerId ? this.conn.peerId : id;
          this.#host.onReplica?.(this);
        }
        return !this.closedFlag && !this.failed;
      }
      if (!KNOWN_TYPES.has(bytes[0] ?? -1)) {
        // A newer peer's message type: skip it (reported), so the protocol can grow.
        this.#host.reportError(new ProtocolError(`unknown message type ${String(bytes[0])}: ignored`));
        return true;
      }
      message = decodeMessage(bytes);
    } catch (error) {
      // Only a holder of the key can produce these (the frame opened): a broken or hostile peer.
      this.fail(error);
      return false;
    }
    try {
      this.handle(message);
    } catch (error) {
      this.fail(error instanceof RhizomeError ? error : new ProtocolError(`bad ${messageName(message.type)} message: ${asError(error).message}`));
      return false;
    }
    return !this.closedFlag && !this.failed;
  }

  /** Dispatches a decoded message (a method with a switch, not a table of closures per session). */
  private handle(message: Message): void {
    switch (message.type) {
      case MSG_SYNC_STEP1:
        return this.onStep1(message);
      case MSG_SYNC_STEP2:
        return this.onStep2(message);
      case MSG_UPDATES:
        // An app observer that throws is reported by the host, not a protocol failure of the peer.
        applyRemoteUpdates(this.#host.doc, message.updates, this, this.#host);
        return;
      case MSG_AWARENESS:
        this.onAwareness(message.update);
        return;
      case MSG_PING:
        // Answered ahead of queued traffic, so a backed-up queue does not read as latency.
        this.enqueueFirst({ kind: 'message', bytes: encodeProbe(MSG_PONG, message.id) });
        return;
      case MSG_PONG:
        this.meter.pong(message.id, this.#host.now());
        return;
    }
  }

  private onAwareness(update: Uint8Array): void {
    // Decoded first: a malformed update throws here (a protocol failure of the peer) ...
    const entries = readAwarenessEntries(update);
    try {
      awarenessProtocol.applyAwarenessUpdate(this.#host.awareness, update, this);
    } catch (error) {
      // ... so this is a listener's error (an app's): the states are applied. Reported, and this
      // peer's clients tracked here, as the database's 'update' listener (which a throwing
      // 'change' listener keeps from running) would have, so they go when the peer does.
      this.#host.reportError(asError(error));
      const states = this.#host.awareness.getStates();
      for (const { client, present } of entries) {
        if (present && states.has(client)) this.addAwarenessClient(client);
        else if (!present) this.removeAwarenessClient(client);
      }
    }
  }

  /**
   * A step 1 is answered with the diff against its state vector. While an earlier answer is still
   * unsent (the link is slower than the peer's requests), the request is held instead: once that
   * answer is sent, the held requests are answered together, the first with one diff against the
   * latest state vector and the rest with empty updates (an answer tells the asker that its step 1
   * was processed; the data the rest would carry is in that one diff). So a peer repeating step 1
   * cannot queue a whole-document diff per request.
   */
  private onStep1(m: Extract<Message, { type: typeof MSG_SYNC_STEP1 }>): void {
    // An empty state vector (`00`, a fresh replica's) is valid: no decoding (a Map and a decoder) needed.
    if (m.stateVector.length !== 1 || m.stateVector[0] !== 0) {
      try {
        Y.decodeStateVector(m.stateVector);
      } catch {
        throw new ProtocolError('malformed state vector');
      }
    }
    this.#remoteStateVector = bytesToText(m.stateVector);
    if (this.answersUnsent > 0) {
      const held = (this.r().heldRequests ??= []);
      if (held.push(m.requestId) > MAX_HELD_SYNC_REQUESTS) throw new ProtocolError(`more than ${MAX_HELD_SYNC_REQUESTS} sync requests waiting for an answer`);
      return;
    }
    this.answer([m.requestId]);
    this.acksReady = true;
    this.rare?.acks?.ready();
    this.flush();
  }

  /** Queues the answers to `requestIds`: the diff against the peer's latest state vector, then empty updates. */
  private answer(requestIds: Uint8Array[]): void {
    let diff: Uint8Array;
    try {
      // An empty document answers `00 00` whatever the peer holds: no state vector to rebuild.
      diff = emptyDocument(this.#host.doc) ? EMPTY_UPDATE : encodeDiff(this.#host.doc, textToBytes(this.#remoteStateVector as string));
    } catch {
      throw new ProtocolError('malformed state vector');
    }
    for (let i = 0; i < requestIds.length; i++) {
      this.#flags += ANSWER;
      this.enqueue({ kind: 'answer', bytes: encodeStep2(requestIds[i] as Uint8Array, i === 0 ? diff : EMPTY_UPDATE) }, HANDSHAKE);
    }
  }

  private onAnswerSent(): void {
    this.#flags -= ANSWER;
    this.sentStep2 = true;
    this.checkSynced();
    const held = this.rare?.heldRequests ?? null;
    if (this.answersUnsent > 0 || held === null || this.closedFlag) return;
    this.r().heldRequests = null;
    this.answer(held);
  }

  private onStep2(m: Extract<Message, { type: typeof MSG_SYNC_STEP2 }>): void {
    applyRemoteUpdates(this.#host.doc, [m.update], this, this.#host);
    // A step 2 answering another request (a replay from an older session) is applied (updates
    // are idempotent) but does not count as the answer to ours.
    const requestId = this.requestId;
    if (requestId !== null && sameBytesAsText(m.requestId, requestId)) {
      this.receivedStep2 = true;
      this.checkSynced();
    } else {
      this.rare?.acks?.answered(m.requestId);
    }
  }

  private checkSynced(): void {
    if (this.syncedFlag || !this.receivedStep2 || !this.sentStep2 || this.closedFlag) return;
    this.syncedFlag = true;
    const rare = this.#rare;
    if (typeof rare === 'string') this.#rare = null;
    else if (rare !== null) {
      rare.requestId = null;
      this.settleRare();
    }
    this.#host.onSynced(this);
  }

  private fail(error: unknown): void {
    if (this.closedFlag || this.failed) return;
    this.failed = true;
    const err = asError(error);
    this.r().failReason = err.code ? `${err.code}: ${err.message}` : err.message;
    this.#host.reportError(err);
    void this.conn.close().catch(() => undefined);
  }

  private finish(reason?: string): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    // The meter's numbers leave the process's rows (still readable and counted: see PeerMeter).
    this.releaseMeterRow();
    this.#queue = NO_QUEUE;
    this.releaseDrainWaiters();
    this.rare?.acks?.close();
    void this.conn.close().catch(() => undefined);
    this.#host.onClosed(this, reason);
    const rare = this.rare;
    const onEnded = rare?.onEnded ?? null;
    if (rare !== null) rare.onEnded = null;
    onEnded?.();
  }

  // ---- outbound -----------------------------------------------------------------------------

  /**
   * Queues `item`. It leaves on the scheduler's next turn (coalescing, coalesce.ts), or, with
   * {@link HANDSHAKE}, when the caller calls {@link flush} before it returns: the opening and a step
   * 2 answer, each one message whatever else comes in the turn. Waiting for the next turn is what
   * a handshake cannot afford when many connect at once: it is made while a socket's frames are
   * read, and the next turn (Node's check phase) comes only after every other ready socket was
   * read, while the young generation fills with their garbage. Under a burst of thousands of
   * replicas connecting, 87 % of answers and 45 % of openings lived through two scavenges in the
   * queue and were promoted, to die in the old generation (BENCHMARKS.md § Issue 12, Session 14
   * (rss)); their pages and buffers were what a plain GC then kept as the client's RSS.
   */
  private enqueue(item: Outgoing, when = NEXT_TURN): void {
    if (this.#queue === NO_QUEUE) this.#queue = [FIRST, 0, item];
    else this.#queue.push(item);
    if (!this.pumping && when === NEXT_TURN) this.#host.scheduler.request(this, item.kind === 'catch-up' ? 0 : item.bytes.length);
  }

  /** @internal Called by the scheduler once per turn (and after a handshake message was queued): starts the sender if it is idle. */
  flush(): void {
    if (!this.pumping && !this.closedFlag && this.queued > 0) this.pump();
  }

  /** Queues a message ahead of everything not yet sent (messages are sent whole, so this never splits one). */
  private enqueueFirst(item: Outgoing): void {
    const q = this.#queue;
    const head = q[HEAD] as number;
    if (q === NO_QUEUE) this.#queue = [FIRST, 0, item];
    else if (head > FIRST) {
      q[head - 1] = item;
      q[HEAD] = head - 1;
    } else q.splice(FIRST, 0, item);
    if (!this.pumping) this.pump();
  }

  /** Drops queued updates for one catch-up diff (see the class description). */
  private collapse(): void {
    this.r().collapses++;
    const q = this.#queue;
    const kept: QueueSlots = [FIRST, 0];
    for (let i = q[HEAD] as number; i < q.length; i++) {
      const item = q[i] as Outgoing;
      if (item.kind !== 'update' && item.kind !== 'catch-up') kept.push(item);
    }
    kept.push({ kind: 'catch-up' });
    this.#queue = kept;
  }

  private next(): Sendable | null {
    const q = this.#queue;
    let head = q[HEAD] as number;
    if (head >= q.length) {
      // Drained: let go of what was sent (the step 2 diff and the rest of the opening exchange
      // would otherwise stay referenced by an idle session).
      if (q !== NO_QUEUE) this.#queue = NO_QUEUE;
      return null;
    }
    // (Not the shared empty queue: it holds no message.)
    const first = q[head++] as Outgoing;
    q[HEAD] = head;
    if (first.kind === 'message' || first.kind === 'answer' || first.kind === 'ping') return first;
    if (first.kind === 'catch-up') {
      const sv = this.#remoteStateVector === null ? new Uint8Array([0]) : textToBytes(this.#remoteStateVector);
      return { kind: 'message', bytes: encodeUpdates([encodeDiff(this.#host.doc, sv)]) };
    }
    const batch = [first.bytes];
    let bytes = first.bytes.length;
    while (head < q.length && bytes < UPDATE_BATCH_BYTES) {
      const item = q[head] as Outgoing;
      if (item.kind !== 'update') break;
      batch.push(item.bytes);
      bytes += item.bytes.length;
      head++;
    }
    q[HEAD] = head;
    q[BYTES] = (q[BYTES] as number) - bytes;
    return { kind: 'message', bytes: encodeUpdates(batch) };
  }

  /** What a message's leaving means: a ping's send time, an answer's step 2 gone. */
  private afterSend(item: Sendable): void {
    if (item.kind === 'ping') this.meter.pingSent(item.id, this.#host.now());
    else if (item.kind === 'answer') this.onAnswerSent();
  }

  /**
   * Drains the queue. Each message is sealed and handed to the connection at once while it takes
   * frames without waiting (`Connection.trySend`: no promise, no suspended function per message,
   * the usual case); from the first frame it cannot take, the rest goes by {@link #pumpAsync},
   * which awaits `send`. Never more than one send in flight: `#pumping` stays set until the
   * queue is drained.
   */
  private pump(): void {
    this.pumping = true;
    try {
      for (;;) {
        if (this.closedFlag) break;
        const next = this.next();
        if (!next) break;
        this.compactQueue();
        const waiting = this.sendNow(next.bytes);
        if (waiting !== null) {
          void this.pumpAsync(waiting, next);
          return;
        }
        this.afterSend(next);
      }
    } catch (error) {
      this.sendFailed(error);
    }
    this.pumpEnded();
  }

  /** {@link pump} from a message whose frames wait in `waiting`. */
  private async pumpAsync(waiting: Promise<void>, first: Sendable): Promise<void> {
    try {
      await waiting;
      this.afterSend(first);
      for (;;) {
        if (this.closedFlag) break;
        const next = this.next();
        if (!next) break;
        this.compactQueue();
        const pending = this.sendNow(next.bytes);
        if (pending !== null) await pending;
        this.afterSend(next);
      }
    } catch (error) {
      this.sendFailed(error);
    }
    this.pumpEnded();
  }

  private compactQueue(): void {
    const q = this.#queue;
    const sent = (q[HEAD] as number) - FIRST;
    if (sent > 1024 && sent * 2 > q.length - FIRST) {
      const rest: QueueSlots = [FIRST, q[BYTES] as number];
      for (let i = FIRST + sent; i < q.length; i++) rest.push(q[i]!);
      this.#queue = rest;
    }
  }

  /** The connection is unusable: stop sending for good (the receive loop ends on the close). */
  private sendFailed(error: unknown): void {
    if (!this.closedFlag && !this.conn.closed) this.fail(error instanceof FrameTooLargeError ? error : asError(error));
    this.#queue = NO_QUEUE;
    void this.conn.close().catch(() => undefined);
  }

  private pumpEnded(): void {
    this.pumping = false;
    if (this.queued === 0 || this.closedFlag) this.releaseDrainWaiters();
    else this.pump();
  }

  /**
   * Seals one message and hands its frames to the connection: null once all were taken at once
   * (`trySend`), else a promise for the rest (from the first frame that has to wait).
   */
  private sendNow(message: Uint8Array): Promise<void> | null {
    const conn = this.conn;
    if (conn.trySend === undefined) return this.sendMessage(message);
    const sealer = this.#host.sealer;
    const plains = toFrames(message, this.maxFrameBytes - sealer.overhead);
    for (let i = 0; i < plains.length; i++) {
      const frame = sealer.seal(plains[i]!);
      if (!conn.trySend(frame)) return this.sendRest(message, plains, i, frame);
      this.sentFrame(frame);
    }
    return null;
  }

  /** The frames of `message` from `plains[i]` (sealed as `frame`) on, by `send`; see {@link #sendMessage} for a refused size. */
  private async sendRest(message: Uint8Array, plains: Uint8Array[], i: number, frame: Uint8Array): Promise<void> {
    try {
      await this.conn.send(frame);
      this.sentFrame(frame);
      for (let j = i + 1; j < plains.length; j++) {
        const next = this.#host.sealer.seal(plains[j]!);
        await this.conn.send(next);
        this.sentFrame(next);
      }
    } catch (error) {
      if (!(error instanceof FrameTooLargeError) || error.limit >= this.maxFrameBytes || error.limit < this.#host.minFrameBytes) throw error;
      this.r().maxFrameBytes = error.limit;
      await this.sendMessage(message);
    }
  }

  private sentFrame(frame: Uint8Array): void {
    this.meter.sent(frame.length, this.#host.now());
  }

  /**
   * Seals and sends one message, split into frames of at most {@link maxFrameBytes}. If the
   * transport refuses a frame as too large while announcing a usable smaller limit (a relay
   * whose frame cap is below what the transport advertised), the session adopts that limit and
   * sends the message again, re-chunked; a receiver drops the chunks of the first attempt.
   */
  private async sendMessage(message: Uint8Array): Promise<void> {
    for (;;) {
      try {
        for (const plain of toFrames(message, this.maxFrameBytes - this.#host.sealer.overhead)) {
          const frame = this.#host.sealer.seal(plain);
          await this.conn.send(frame);
          this.sentFrame(frame);
        }
        return;
      } catch (error) {
        if (!(error instanceof FrameTooLargeError) || error.limit >= this.maxFrameBytes || error.limit < this.#host.minFrameBytes) throw error;
        this.r().maxFrameBytes = error.limit;
      }
    }
  }

  /** Largest sealed frame this session sends (lowered when the transport refuses bigger ones). */
  get maxFrameBytes(): number {
    // The transport's limit unless it refused a frame as too large (rare: kept in the rare part).
    return this.rare?.maxFrameBytes || this.#host.maxFrameBytes;
  }

  private releaseDrainWaiters(): void {
    const waiters = this.rare?.drainWaiters ?? null;
    if (waiters === null) return;
    this.r().drainWaiters = null;
    for (const w of waiters) w();
  }
}

/**
 * An awareness client id (a varuint, y-protocols draws uint32s) as a session keeps it: a uint32 as
 * the int32 of the same bits, made by `| 0` — always a small integer, stored in the field itself
 * (an id decoded by lib0 is a heap number even below 2^31, and an id of 2^31 and above can only be
 * one) —, any other id as it is. {@link clientIdOf} is its inverse (ids are never negative).
 */
export function smallClientId(id: number): number {
  return id >= 0 && id < 2 ** 32 && Number.isInteger(id) ? id | 0 : id;
}

/** The awareness client id that {@link smallClientId} made `kept` from. */
export function clientIdOf(kept: number): number {
  return kept < 0 ? kept + 2 ** 32 : kept;
}

/** Yjs's encoding of an empty document's state vector (no clients); shared, never modified. */
const EMPTY_STATE_VECTOR = new Uint8Array([0]);

/** True if the doc holds no structs and nothing pending (its whole encoding is `00 00`). */
function emptyDocument(doc: Y.Doc): boolean {
  const store = doc.store;
  return store.clients.size === 0 && store.pendingStructs === null && store.pendingDs === null;
}

/** `Y.encodeStateVector(doc)`, without an encoder for an empty document (a fresh replica's opening). */
function stateVector(doc: Y.Doc): Uint8Array {
  return doc.store.clients.size === 0 ? EMPTY_STATE_VECTOR : Y.encodeStateVector(doc);
}

function messageName(type: number): string {
  return (
    { [MSG_SYNC_STEP1]: 'sync step 1', [MSG_SYNC_STEP2]: 'sync step 2', [MSG_UPDATES]: 'updates', [MSG_AWARENESS]: 'awareness', [MSG_PING]: 'ping', [MSG_PONG]: 'pong' }[type] ??
    'unknown'
  );
}

function asError(error: unknown): Error & { code?: string } {
  return error instanceof Error ? error : new Error(String(error));
}
