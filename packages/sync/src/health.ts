/**
 * Health of a database and of each peer session: round-trip time from sealed pings, traffic
 * rates over the last minute, silence, lag, and the health states derived from them
 * (see ARCHITECTURE.md § Health).
 *
 * Everything here is bookkeeping on numbers the sessions report; the clock is injected so the
 * rules can be reasoned about (and tested) without timers.
 */
import { InvalidConfigError } from '@rhizome/core';
import type { HealthSeverity, HealthState } from '@rhizome/core';
import {
  F_ACKED,
  F_CARRIES,
  F_COLS,
  F_PING_AT,
  F_RECEIVED_AT,
  F_STARTED,
  I_BUCKET,
  I_COLS,
  I_PINGS,
  I_PONGS,
  I_RTT,
  I_SMALL,
  I_TOTALS,
  LOW_SPAN,
  TOTAL_BYTES_RECEIVED,
  TOTAL_BYTES_SENT,
  TOTAL_FRAMES_RECEIVED,
  TOTAL_FRAMES_SENT,
  allocRow,
  carriedOnce,
  carryOf,
  carrySaturated,
  pageOf,
  releaseRow,
  slotOf,
} from './meter-rows.js';
import type { MeterPage } from './meter-rows.js';

/** Thresholds and periods of the health machinery. Every field has a default. */
export interface HealthOptions {
  /** Turn pings and health states off (stats keep their counters). Default true. */
  enabled?: boolean;
  /** How often each peer is pinged. Default 5000 ms. */
  pingIntervalMs?: number;
  /** How often states are evaluated. Default 1000 ms (never above `pingIntervalMs`). */
  checkIntervalMs?: number;
  /** Round-trip time at or above which a peer is degraded. Default 2000 ms. */
  degradedRttMs?: number;
  /** Outbound queue depth (messages) at or above which a peer is degraded. Default 1024. */
  degradedQueue?: number;
  /** Silence (nothing received) after which a peer is degraded. Default 15000 ms (three pings). */
  degradedSilenceMs?: number;
  /** Silence after which a peer is unreachable. Default 45000 ms. */
  unreachableSilenceMs?: number;
  /**
   * Database level: how long no peer may be reachable while local writes wait to be delivered
   * before the database is `unreachable`. Default 120000 ms.
   */
  offlineAlertMs?: number;
  /** Health events allowed at once per peer (and for the database). Default 4. */
  eventBurst?: number;
  /** One more health event is allowed per this period. Default 10000 ms. */
  eventRefillMs?: number;
}

/** Defaults of {@link HealthOptions}. */
export const HEALTH_DEFAULTS: Required<HealthOptions> = {
  enabled: true,
  pingIntervalMs: 5000,
  checkIntervalMs: 1000,
  degradedRttMs: 2000,
  degradedQueue: 1024,
  degradedSilenceMs: 15_000,
  unreachableSilenceMs: 45_000,
  offlineAlertMs: 120_000,
  eventBurst: 4,
  eventRefillMs: 10_000,
};

/** {@link HEALTH_DEFAULTS} resolved (checkIntervalMs is already at most pingIntervalMs), frozen: shared by every database opened without health options. */
const RESOLVED_DEFAULTS: Required<HealthOptions> = Object.freeze({ ...HEALTH_DEFAULTS, checkIntervalMs: Math.min(HEALTH_DEFAULTS.checkIntervalMs, HEALTH_DEFAULTS.pingIntervalMs) });

/** Validates health options (`ERR_INVALID_CONFIG` naming the field) and fills in defaults. */
export function resolveHealthOptions(options: HealthOptions | undefined): Required<HealthOptions> {
  // Without options every database shares one frozen copy of the defaults (not ~150 B each).
  if (options === undefined) return RESOLVED_DEFAULTS;
  const out = { ...HEALTH_DEFAULTS };
  if (options === null || typeof options !== 'object') throw new InvalidConfigError('health', 'must be an object');
  for (const [key, value] of Object.entries(options) as Array<[keyof HealthOptions, unknown]>) {
    if (!(key in HEALTH_DEFAULTS)) throw new InvalidConfigError(`health.${key}`, 'is not a health option');
    if (value === undefined) continue;
    if (key === 'enabled') {
      if (typeof value !== 'boolean') throw new InvalidConfigError('health.enabled', 'must be a boolean');
      out.enabled = value;
      continue;
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || !Number.isInteger(value)) {
      throw new InvalidConfigError(`health.${key}`, 'must be a positive integer');
    }
    out[key] = value;
  }
  if (out.unreachableSilenceMs <= out.degradedSilenceMs) {
    throw new InvalidConfigError('health.unreachableSilenceMs', 'must be greater than health.degradedSilenceMs');
  }
  out.checkIntervalMs = Math.min(out.checkIntervalMs, out.pingIntervalMs);
  return out;
}

/**
 * The health monitor's record of every healthy peer whose state never changed (monitor.ts), here so
 * that a session can hold it as one bit of its flags instead of a field (see `PeerSession.healthState`).
 */
export const RESPONDING_PEER: Readonly<{ health: HealthState; reason: string; published: HealthState; limiter: null }> = Object.freeze({
  health: 'healthy',
  reason: 'responding',
  published: 'healthy',
  limiter: null,
});

/** Severity of a health state. */
export function severityOf(health: HealthState): HealthSeverity {
  return health === 'healthy' ? 'info' : health === 'degraded' ? 'warning' : 'critical';
}

/**
 * Counts over the last minute in six 10-second buckets, for one or more channels that share the
 * clock (a peer's traffic in and out are two channels of one window). The buckets are
 * allocated on the first non-zero amount and dropped again once a whole window passed empty.
 *
 * Every connected peer is pinged every 5 s (health), so a peer's window is never empty for long:
 * an idle synced peer holds its ring for as long as it is connected. Six buckets of 10 s instead
 * of twelve of 5 s (the minute the rates average over moves in 10 s steps), and a peer's bytes and
 * frames share a bucket (see {@link PeerMeter}): 12 slots, ~140 B per peer (was 48, ~400 B).
 *
 * How many channels a window has is its class's (a getter, {@link channels}), not a field: a
 * peer's meter always has two, and an idle process holds thousands of meters.
 */
abstract class BucketWindow {
  static readonly SECONDS = 60;
  /** Bucket width: 6 buckets of 10 s cover the minute. */
  static readonly BUCKET_MS = 10_000;
  // A literal, not SECONDS / ...: tsc emits static initializers that name their own class
  // through a helper variable that is still undefined when they run (dist/ then threw on import).
  static readonly BUCKETS = 6; // SECONDS / (BUCKET_MS / 1000)
  /** `BUCKETS` slots per channel, channel-major; null while the window is empty. */
  #buckets: number[] | null = null;

  /** How many channels this window counts. */
  protected abstract get channels(): number;

  /**
   * The bucket (clock ms / BUCKET_MS) the window last advanced to; -1 before the first. Where it
   * is kept is the subclass's (a field; a {@link PeerMeter}'s row).
   */
  protected abstract get lastBucket(): number;
  protected abstract set lastBucket(bucket: number);

  /** When the window started (ms, the clock's whole milliseconds: see {@link wholeMs}). */
  abstract get startedAt(): number;

  add(amount: number, now: number, channel = 0): void {
    if (amount === 0) return;
    this.update(now, channel, plus, amount);
  }

  /**
   * Sets the current bucket of `channel` to `f(bucket, arg)` (for a window whose buckets hold
   * something other than one sum, as a {@link PeerMeter}'s). `f` is a module function, not a
   * closure per call.
   */
  protected update(now: number, channel: number, f: (bucket: number, arg: number) => number, arg: number): void {
    this.advance(now);
    const buckets = (this.#buckets ??= new Array<number>(BucketWindow.BUCKETS * this.channels).fill(0));
    const at = channel * BucketWindow.BUCKETS + (Math.floor(now / BucketWindow.BUCKET_MS) % BucketWindow.BUCKETS);
    buckets[at] = f(buckets[at] ?? 0, arg);
  }

  /** Average per second over the last minute (over the time since start, when shorter). */
  perSecond(now: number, channel = 0): number {
    return this.perSecondOf(now, channel, same);
  }

  /** {@link perSecond} of `part(bucket)` (see {@link update}). */
  protected perSecondOf(now: number, channel: number, part: (bucket: number) => number): number {
    this.advance(now);
    if (this.#buckets === null) return 0;
    let sum = 0;
    const from = channel * BucketWindow.BUCKETS;
    for (let i = from; i < from + BucketWindow.BUCKETS; i++) sum += part(this.#buckets[i] ?? 0);
    const span = Math.min(BucketWindow.SECONDS, Math.max(1, (now - this.startedAt) / 1000));
    return sum / span;
  }

  /** True while buckets are allocated (something was counted within the last window). */
  get allocated(): boolean {
    return this.#buckets !== null;
  }

  /** Takes `buckets` (laid out as the window's own, or null: none) as its buckets (a subclass's own form). */
  protected adopt(buckets: number[] | null): void {
    this.#buckets = buckets;
  }

  /** The buckets (null while none); read only. */
  protected get ring(): readonly number[] | null {
    return this.#buckets;
  }

  /** Sets bucket slot `at` to `f(bucket, arg)` (the window allocated and advanced: a caller's fast path). */
  protected setBucket(at: number, f: (bucket: number, arg: number) => number, arg: number): void {
    const buckets = this.#buckets!;
    buckets[at] = f(buckets[at] ?? 0, arg);
  }

  protected advance(now: number): void {
    const bucket = Math.floor(now / BucketWindow.BUCKET_MS);
    if (this.lastBucket < 0 || this.#buckets === null) {
      this.lastBucket = bucket;
      return;
    }
    if (bucket <= this.lastBucket) return;
    const gap = bucket - this.lastBucket;
    this.lastBucket = bucket;
    if (gap >= BucketWindow.BUCKETS) {
      this.#buckets = null;
      return;
    }
    const channels = this.channels;
    for (let c = 0; c < channels; c++) {
      for (let i = 1; i <= gap; i++) this.#buckets[c * BucketWindow.BUCKETS + ((bucket - gap + i) % BucketWindow.BUCKETS)] = 0;
    }
  }
}

/** A {@link BucketWindow} of `channels` channels (1 by default): the database's rates. */
export class RateWindow extends BucketWindow {
  readonly #channels: number;
  #lastBucket = -1;
  readonly #startedAt: number;

  constructor(now: number, channels = 1) {
    super();
    this.#channels = channels;
    this.#startedAt = wholeMs(now);
  }

  protected get channels(): number {
    return this.#channels;
  }

  protected get lastBucket(): number {
    return this.#lastBucket;
  }

  protected set lastBucket(bucket: number) {
    this.#lastBucket = bucket;
  }

  get startedAt(): number {
    return this.#startedAt;
  }
}

/**
 * A clock reading kept for a long time, in whole milliseconds. `performance.now()` has a fraction,
 * and a field holding a fraction is a boxed number (16 B of heap each; a peer's meter keeps four
 * such times, an idle process thousands of meters); a whole number of ms fits in the field itself.
 * Every rule that reads these times works in seconds (silence, ping intervals, rates).
 */
function wholeMs(now: number): number {
  return Math.floor(now);
}

/** The id of the ping a meter sends after `count` pings: 1, 2, ... 0xffffffff, then 1 again. */
function pingId(count: number): number {
  return (count % 0xffffffff) + 1;
}

/** Largest round-trip time a {@link PeerMeter} keeps, in µs (2^30 - 1, ~18 minutes: still a small integer). */
const MAX_RTT_US = 2 ** 30 - 1;


function plus(bucket: number, amount: number): number {
  return bucket + amount;
}

function same(bucket: number): number {
  return bucket;
}

/**
 * Channels of a {@link PeerMeter}'s traffic window: in and out. A bucket holds a direction's
 * bytes AND frames of its 10 s as one number, `bytes * FRAME_SPAN + frames` (exact in a double
 * while bytes < 2^32 and frames < 2^21: a bucket saturates there, at 400 MB/s or 200,000 frames/s
 * for 10 s with one peer). Two channels of six buckets instead of four: a peer's ring is 12
 * numbers (~140 B of heap) instead of 24 (~240 B), and every connected peer holds one.
 */
const IN = 0;
const OUT = 1;
const FRAME_SPAN = 2 ** 21;
const MAX_FRAMES = FRAME_SPAN - 1;
const MAX_BYTES = 2 ** 32 - 1;

/** A bucket of {@link PeerMeter} plus one frame of `bytes` (saturating, see {@link IN}). */
function plusFrame(bucket: number, bytes: number): number {
  const frames = bucket % FRAME_SPAN;
  const total = (bucket - frames) / FRAME_SPAN;
  return Math.min(MAX_BYTES, total + bytes) * FRAME_SPAN + Math.min(MAX_FRAMES, frames + 1);
}

function bytesOf(bucket: number): number {
  return (bucket - (bucket % FRAME_SPAN)) / FRAME_SPAN;
}

function framesOf(bucket: number): number {
  return bucket % FRAME_SPAN;
}

/**
 * A {@link PeerMeter}'s small form of its ring, held while every bucket is small (an idle peer's
 * pings and pongs, a sync of a small document): six fields, one per 10 s bucket, each holding both
 * directions as one small integer — `in * HALF + out`, a direction being `bytes * 16 + frames`
 * (bytes up to 2047, frames up to 15: 15 bits) — so a field stays a small integer (no boxed
 * number) and the meter holds no array (12 doubles and the array: ~144 B per peer). A bucket that
 * would outgrow it moves the meter to the full ring ({@link BucketWindow}) until a whole window
 * passes empty. The rates read the same either way.
 */
const HALF = 2 ** 15;
const SMALL_SPAN = 16;
const SMALL_FRAMES = SMALL_SPAN - 1;
const SMALL_BYTES = 2047;

/** A direction of a small cell (15 bits) as a full-ring bucket (`bytes * FRAME_SPAN + frames`). */
function fullOf(half: number): number {
  return Math.floor(half / SMALL_SPAN) * FRAME_SPAN + (half % SMALL_SPAN);
}

/** A token bucket that bounds how many health events one subject may publish. */
export class EventLimiter {
  readonly #burst: number;
  readonly #refillMs: number;
  #tokens: number;
  #at: number;

  constructor(burst: number, refillMs: number, now: number) {
    this.#burst = burst;
    this.#refillMs = refillMs;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Takes a token if there is one. */
  take(now: number): boolean {
    const refilled = Math.floor((now - this.#at) / this.#refillMs);
    if (refilled > 0) {
      this.#tokens = Math.min(this.#burst, this.#tokens + refilled);
      this.#at += refilled * this.#refillMs;
    }
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}

/**
 * Per-session measurements: traffic windows (a meter is the {@link BucketWindow} of its peer's
 * bytes and frames in and out), silence, pings in flight, RTT and the local updates the peer has
 * acknowledged. A pong acknowledges every message sent before its ping
 * (one ordered connection, processed in order), so `acked` is exact for delivered updates.
 *
 * Its numbers are one row of the process's meter rows (meter-rows.ts: 96 B of typed arrays instead
 * of sixteen 8-byte fields of every peer's session); the meter itself holds the row's number, the
 * full traffic ring while it is in use and the pings in flight while there are any. A meter whose
 * session ended gives its row back ({@link releaseMeterRow}) and keeps its numbers in a page of its own.
 */
export class PeerMeter extends BucketWindow {
  /** The meter's row in the process's meter rows, or once released a page of its own (slot 0). */
  #row: number | MeterPage;
  /**
   * Pings sent (or queued) and not answered, oldest first, two numbers each: the local seq when
   * queued and the time sent (NaN until on the wire). Their ids are those of the last
   * `length / 2` pings {@link pingsSent} counted (ids follow the count, and pongs come back in
   * order, so the pings in flight are always the newest ones). Null while none is in flight: a
   * synced idle peer holds nothing between rounds, and a round makes one small array of doubles
   * per peer (~64 B), not a `Map` and an entry (~220 B) — every peer is pinged every 5 s.
   */
  #inFlight: number[] | null = null;

  constructor(now: number, seqAtStart: number) {
    super();
    this.#row = allocRow();
    const started = wholeMs(now);
    this.setF(F_STARTED, started);
    this.setF(F_RECEIVED_AT, started);
    this.setF(F_ACKED, seqAtStart);
    this.setF(F_PING_AT, -Infinity);
    this.setI(I_BUCKET, -1);
    this.setI(I_RTT, -1);
  }

  // Columns of the row (meter-rows.ts): a row of the shared pages while the meter is in use, a
  // page of its own once released.
  private getF(k: number): number {
    const r = this.#row;
    return typeof r === 'number' ? pageOf(r).f[slotOf(r) * F_COLS + k]! : r.f[k]!;
  }

  private setF(k: number, value: number): void {
    const r = this.#row;
    if (typeof r === 'number') pageOf(r).f[slotOf(r) * F_COLS + k] = value;
    else r.f[k] = value;
  }

  private getI(k: number): number {
    const r = this.#row;
    return typeof r === 'number' ? pageOf(r).i[slotOf(r) * I_COLS + k]! : r.i[k]!;
  }

  /** Sets an integer column (an int32, or a uint32 as the int32 of the same bits: the array keeps the low 32 bits). */
  private setI(k: number, value: number): void {
    const r = this.#row;
    if (typeof r === 'number') pageOf(r).i[slotOf(r) * I_COLS + k] = value;
    else r.i[k] = value;
  }

  /**
   * Gives the meter's row back to the process's rows (its session ended); its numbers stay
   * readable (and countable: a send in flight may still finish) in a page of its own. Once only.
   */
  protected releaseMeterRow(): void {
    const r = this.#row;
    if (typeof r === 'number') this.#row = releaseRow(r);
  }

  /** A traffic total (meter-rows.ts `TOTAL_*`): its low 32 bits and its carry. */
  private total(total: number): number {
    return (this.getI(I_TOTALS + total) >>> 0) + carryOf(this.getF(F_CARRIES), total) * LOW_SPAN;
  }

  /** Adds `amount` (below 2^32: one frame's bytes, or 1) to a traffic total. */
  private addTotal(total: number, amount: number): void {
    const sum = (this.getI(I_TOTALS + total) >>> 0) + amount;
    if (sum < LOW_SPAN) {
      this.setI(I_TOTALS + total, sum);
      return;
    }
    const carries = this.getF(F_CARRIES);
    if (carrySaturated(carries, total)) {
      this.setI(I_TOTALS + total, LOW_SPAN - 1); // at 2^45 - 1 the total stays
      return;
    }
    this.setF(F_CARRIES, carriedOnce(carries, total));
    this.setI(I_TOTALS + total, sum - LOW_SPAN);
  }

  /** The bucket the traffic window last advanced to (the row's). */
  protected get lastBucket(): number {
    return this.getI(I_BUCKET);
  }

  protected set lastBucket(bucket: number) {
    this.setI(I_BUCKET, bucket);
  }

  /** When the window (the session) started, in whole ms. */
  get startedAt(): number {
    return this.getF(F_STARTED);
  }

  /** The last frame from the peer (whole ms, see {@link wholeMs}). */
  get lastReceivedAt(): number {
    return this.getF(F_RECEIVED_AT);
  }

  set lastReceivedAt(at: number) {
    this.setF(F_RECEIVED_AT, at);
  }

  /** Local update sequence number acknowledged by the peer. */
  get ackedSeq(): number {
    return this.getF(F_ACKED);
  }

  get pingsSent(): number {
    return this.getI(I_PINGS) >>> 0;
  }

  get pongsReceived(): number {
    return this.getI(I_PONGS) >>> 0;
  }

  /** Frames and bytes sent and received over the session's life (the session's `stats`). */
  get framesSent(): number {
    return this.total(TOTAL_FRAMES_SENT);
  }

  get framesReceived(): number {
    return this.total(TOTAL_FRAMES_RECEIVED);
  }

  get bytesSent(): number {
    return this.total(TOTAL_BYTES_SENT);
  }

  get bytesReceived(): number {
    return this.total(TOTAL_BYTES_RECEIVED);
  }

  /** Two channels: traffic in and out (see {@link IN}). */
  protected get channels(): number {
    return 2;
  }

  // The small form of the traffic ring (see HALF): bucket i's in and out, while !allocated.
  private smallCell(i: number): number {
    return this.getI(I_SMALL + i);
  }

  private setSmallCell(i: number, value: number): void {
    this.setI(I_SMALL + i, value);
  }

  private smallEmpty(): boolean {
    const ints = this.ints();
    const at = this.intBase() + I_SMALL;
    return (ints[at]! | ints[at + 1]! | ints[at + 2]! | ints[at + 3]! | ints[at + 4]! | ints[at + 5]!) === 0;
  }

  /** The integers of the meter's row are `ints()[intBase() + k]` (one lookup for a method's several columns). */
  private ints(): Int32Array {
    const r = this.#row;
    return typeof r === 'number' ? pageOf(r).i : r.i;
  }

  private intBase(): number {
    const r = this.#row;
    return typeof r === 'number' ? slotOf(r) * I_COLS : 0;
  }

  /** One frame of `bytes`: a direction's frame and byte totals (meter-rows.ts `TOTAL_*`). */
  private countFrame(frames: number, bytesTotal: number, bytes: number): void {
    const ints = this.ints();
    const at = this.intBase() + I_TOTALS;
    const f = (ints[at + frames]! >>> 0) + 1;
    const b = (ints[at + bytesTotal]! >>> 0) + bytes;
    if (f < LOW_SPAN && b < LOW_SPAN) {
      ints[at + frames] = f;
      ints[at + bytesTotal] = b;
      return;
    }
    this.addTotal(frames, 1);
    this.addTotal(bytesTotal, bytes);
  }

  /** As the ring's advance, on the small form: buckets the clock moved past are emptied. */
  private advanceSmall(now: number): void {
    const bucket = Math.floor(now / BucketWindow.BUCKET_MS);
    const ints = this.ints();
    const base = this.intBase();
    const last = ints[base + I_BUCKET]!;
    if (last === bucket) return;
    if (last < 0 || this.smallEmpty()) {
      ints[base + I_BUCKET] = bucket;
      return;
    }
    if (bucket < last) return;
    const gap = bucket - last;
    ints[base + I_BUCKET] = bucket;
    const n = BucketWindow.BUCKETS;
    if (gap >= n) for (let i = 0; i < n; i++) ints[base + I_SMALL + i] = 0;
    else for (let i = 1; i <= gap; i++) ints[base + I_SMALL + ((bucket - gap + i) % n)] = 0;
  }

  /**
   * At a new bucket, the full ring goes back to the small form if every bucket of the window fits
   * it (a peer's sync or burst left the window): a busy peer moves at most once per 10 s bucket.
   */
  private shrink(now: number): void {
    if (Math.floor(now / BucketWindow.BUCKET_MS) <= this.lastBucket) return;
    this.advance(now);
    const ring = this.ring;
    if (ring === null) return;
    const n = BucketWindow.BUCKETS;
    for (let i = 0; i < 2 * n; i++) {
      const b = ring[i] ?? 0;
      if (bytesOf(b) > SMALL_BYTES || framesOf(b) > SMALL_FRAMES) return;
    }
    for (let j = 0; j < n; j++) {
      const inBucket = ring[IN * n + j] ?? 0;
      const outBucket = ring[OUT * n + j] ?? 0;
      this.setSmallCell(j, (bytesOf(inBucket) * SMALL_SPAN + framesOf(inBucket)) * HALF + bytesOf(outBucket) * SMALL_SPAN + framesOf(outBucket));
    }
    this.adopt(null);
  }

  protected override update(now: number, channel: number, f: (bucket: number, arg: number) => number, arg: number): void {
    if (this.allocated) this.shrink(now);
    if (!this.allocated) {
      this.advanceSmall(now);
      const i = Math.floor(now / BucketWindow.BUCKET_MS) % BucketWindow.BUCKETS;
      const cell = this.smallCell(i);
      const out = cell % HALF;
      const next = f(fullOf(channel === IN ? (cell - out) / HALF : out), arg);
      const bytes = bytesOf(next);
      const frames = framesOf(next);
      if (bytes <= SMALL_BYTES && frames <= SMALL_FRAMES) {
        const half = bytes * SMALL_SPAN + frames;
        this.setSmallCell(i, channel === IN ? half * HALF + out : cell - out + half);
        return;
      }
      // Outgrown: the full ring from here on, with what the small form held.
      const n = BucketWindow.BUCKETS;
      const ring = new Array<number>(2 * n).fill(0);
      for (let j = 0; j < n; j++) {
        const c = this.smallCell(j);
        ring[IN * n + j] = fullOf((c - (c % HALF)) / HALF);
        ring[OUT * n + j] = fullOf(c % HALF);
        this.setSmallCell(j, 0);
      }
      this.adopt(ring);
    }
    super.update(now, channel, f, arg);
  }

  protected override perSecondOf(now: number, channel: number, part: (bucket: number) => number): number {
    if (this.allocated) this.shrink(now);
    if (this.allocated) return super.perSecondOf(now, channel, part);
    this.advanceSmall(now);
    if (this.smallEmpty()) return 0;
    let sum = 0;
    for (let i = 0; i < BucketWindow.BUCKETS; i++) {
      const c = this.smallCell(i);
      sum += part(fullOf(channel === IN ? (c - (c % HALF)) / HALF : c % HALF));
    }
    const span = Math.min(BucketWindow.SECONDS, Math.max(1, (now - this.startedAt) / 1000));
    return sum / span;
  }

  /** Smoothed round-trip time (EWMA, 1/4 weight per sample, kept to the microsecond), or null before the first pong. */
  get rttMs(): number | null {
    const us = this.getI(I_RTT);
    return us < 0 ? null : us / 1000;
  }

  set rttMs(ms: number | null) {
    this.setI(I_RTT, ms === null ? -1 : Math.min(MAX_RTT_US, Math.round(ms * 1000)));
  }

  /** When the session started (whole ms): the start of its traffic window. */
  get connectedAt(): number {
    return this.startedAt;
  }

  /**
   * When the last ping was queued (whole ms); -Infinity until the monitor first sees the session
   * able to ping, which then sets it so that the first ping is due one check period later.
   */
  get lastPingAt(): number {
    return this.getF(F_PING_AT);
  }

  set lastPingAt(at: number) {
    this.setF(F_PING_AT, at === -Infinity ? -Infinity : wholeMs(at));
  }

  received(bytes: number, now: number): void {
    if (this.countFast(IN, bytes, now)) return;
    this.countFrame(TOTAL_FRAMES_RECEIVED, TOTAL_BYTES_RECEIVED, bytes);
    this.setF(F_RECEIVED_AT, wholeMs(now));
    this.update(now, IN, plusFrame, bytes);
  }

  sent(bytes: number, now: number): void {
    if (this.countFast(OUT, bytes, now)) return;
    this.countFrame(TOTAL_FRAMES_SENT, TOTAL_BYTES_SENT, bytes);
    this.update(now, OUT, plusFrame, bytes);
  }

  /**
   * One frame of `bytes` on `channel`, counted with one lookup of the row, in the usual case: the
   * meter has its row, the clock is still in the bucket it last counted in, no total passes 2^32
   * and (small form) the bucket's cell still fits. False, having changed nothing, otherwise (then
   * {@link received} / {@link sent} take the general path, which counts the same).
   */
  private countFast(channel: number, bytes: number, now: number): boolean {
    const r = this.#row;
    if (typeof r !== 'number') return false;
    const page = pageOf(r);
    const ints = page.i;
    const base = slotOf(r) * I_COLS;
    const bucket = Math.floor(now / BucketWindow.BUCKET_MS);
    if (ints[base + I_BUCKET] !== bucket) return false;
    const framesAt = base + I_TOTALS + (channel === IN ? TOTAL_FRAMES_RECEIVED : TOTAL_FRAMES_SENT);
    const bytesAt = base + I_TOTALS + (channel === IN ? TOTAL_BYTES_RECEIVED : TOTAL_BYTES_SENT);
    const frames = (ints[framesAt]! >>> 0) + 1;
    const total = (ints[bytesAt]! >>> 0) + bytes;
    if (frames >= LOW_SPAN || total >= LOW_SPAN) return false;
    const i = bucket % BucketWindow.BUCKETS;
    if (this.allocated) {
      this.setBucket(channel * BucketWindow.BUCKETS + i, plusFrame, bytes);
    } else {
      const cellAt = base + I_SMALL + i;
      const cell = ints[cellAt]!;
      const out = cell % HALF;
      const half = channel === IN ? (cell - out) / HALF : out;
      const cellBytes = Math.floor(half / SMALL_SPAN) + bytes;
      const cellFrames = (half % SMALL_SPAN) + 1;
      if (cellBytes > SMALL_BYTES || cellFrames > SMALL_FRAMES) return false;
      const next = cellBytes * SMALL_SPAN + cellFrames;
      ints[cellAt] = channel === IN ? next * HALF + out : cell - out + next;
    }
    ints[framesAt] = frames;
    ints[bytesAt] = total;
    if (channel === IN) page.f[slotOf(r) * F_COLS + F_RECEIVED_AT] = wholeMs(now);
    return true;
  }

  /** Per-second averages over the last minute. */
  rates(now: number): { bytesIn: number; bytesOut: number; framesIn: number; framesOut: number } {
    return {
      bytesIn: this.perSecondOf(now, IN, bytesOf),
      bytesOut: this.perSecondOf(now, OUT, bytesOf),
      framesIn: this.perSecondOf(now, IN, framesOf),
      framesOut: this.perSecondOf(now, OUT, framesOf),
    };
  }

  /** Pings not yet answered. */
  get pingsInFlight(): number {
    return (this.#inFlight?.length ?? 0) / 2;
  }

  /** Which of the pings in flight (0: the oldest) has id `id`; -1 if none. */
  private indexOf(id: number): number {
    const n = this.pingsInFlight;
    for (let i = 0; i < n; i++) if (pingId(this.pingsSent - n + i) === id) return i;
    return -1;
  }

  /** A new ping id, remembering the local sequence it will acknowledge. */
  newPing(seq: number, now: number): number {
    // Ids 1, 2, ... 0xffffffff, then 1 again: the count of pings sent says which is next.
    const id = pingId(this.pingsSent);
    if (this.#inFlight === null) this.#inFlight = [seq, Number.NaN];
    else this.#inFlight.push(seq, Number.NaN);
    this.setF(F_PING_AT, wholeMs(now));
    this.setI(I_PINGS, this.pingsSent + 1);
    return id;
  }

  /** The ping left (the transport accepted it): the RTT clock starts. */
  pingSent(id: number, now: number): void {
    const i = this.indexOf(id);
    if (i >= 0) this.#inFlight![2 * i + 1] = now;
  }

  /** A pong arrived: RTT sample and acknowledgement. Unknown ids are ignored. */
  pong(id: number, now: number): void {
    const i = this.indexOf(id);
    if (i < 0) return;
    const inFlight = this.#inFlight!;
    const seq = inFlight[2 * i]!;
    const sentAt = inFlight[2 * i + 1]!;
    // Pongs come back in order: every older ping is answered (or lost with a replaced link).
    if (inFlight.length === 2 * (i + 1)) this.#inFlight = null;
    else inFlight.splice(0, 2 * (i + 1));
    this.setI(I_PONGS, this.pongsReceived + 1);
    if (seq > this.ackedSeq) this.setF(F_ACKED, seq);
    if (!Number.isNaN(sentAt)) {
      const sample = Math.max(0, now - sentAt);
      const rtt = this.rttMs;
      this.rttMs = rtt === null ? sample : rtt * 0.75 + sample * 0.25;
    }
  }
}

/** What the health rules look at for one peer. */
export interface PeerHealthInput {
  now: number;
  lastReceivedAt: number;
  rttMs: number | null;
  queued: number;
}

/** The health state of one peer and why. */
export function peerHealth(input: PeerHealthInput, o: Required<HealthOptions>): { health: HealthState; reason: string } {
  const silence = input.now - input.lastReceivedAt;
  if (silence >= o.unreachableSilenceMs) return { health: 'unreachable', reason: `nothing received for ${Math.round(silence)} ms` };
  if (silence >= o.degradedSilenceMs) return { health: 'degraded', reason: `nothing received for ${Math.round(silence)} ms` };
  if (input.rttMs !== null && input.rttMs >= o.degradedRttMs) return { health: 'degraded', reason: `round-trip time ${Math.round(input.rttMs)} ms` };
  if (input.queued >= o.degradedQueue) return { health: 'degraded', reason: `${input.queued} messages queued` };
  return { health: 'healthy', reason: 'responding' };
}

/** What the health rules look at for the database. */
export interface DatabaseHealthInput {
  now: number;
  /** The transport can reach others at all (not the disabled transport). */
  networked: boolean;
  /** Peers connected and not unreachable. */
  reachablePeers: number;
  /** Local updates no connected peer has acknowledged. */
  unsentLocal: number;
  /** Since when no peer was reachable (null while one is). */
  unreachableSince: number | null;
  /** The last background write failed and no write has succeeded since. */
  storageError: (Error & { code?: string }) | null;
}

/** The database's health state, its severity, and why. */
export function databaseHealth(input: DatabaseHealthInput, o: Required<HealthOptions>): { health: HealthState; severity: HealthSeverity; reason: string } {
  if (input.storageError) {
    const code = input.storageError.code ? `${input.storageError.code}: ` : '';
    return { health: 'degraded', severity: 'critical', reason: `writes are not reaching the store (${code}${input.storageError.message})` };
  }
  if (input.networked && input.unsentLocal > 0 && input.unreachableSince !== null) {
    const offline = input.now - input.unreachableSince;
    if (offline >= o.offlineAlertMs) {
      return {
        health: 'unreachable',
        severity: 'critical',
        reason: `no peer reachable for ${Math.round(offline / 1000)} s while ${input.unsentLocal} local updates wait to be delivered`,
      };
    }
  }
  return { health: 'healthy', severity: 'info', reason: input.reachablePeers > 0 ? `${input.reachablePeers} peers reachable` : 'no pending deliveries' };
}
