import { createHash, randomBytes } from 'node:crypto';
import { FrameType, TOPIC_BYTES, encodeDataFrame, encodePeerJoined } from '@rhizome/transport-relay/protocol';
import { Redis, type RedisOptions } from 'ioredis';
import type { LookupEntry, RelayRouter, RoutedPeer, RoutedTopic, RouterHost } from '../router.js';
import type { ResolvedClusterOptions } from './options.js';
import { CLAIM_LUA, LOOKUP_LUA, REGISTER_LUA, RELEASE_LUA } from './scripts.js';
import {
  BeatKind,
  CLUSTER_MAGIC,
  INSTANCE_ID_BYTES,
  MESSAGE_HEADER_BYTES,
  MIN_FRAME,
  PEER_MEMBER,
  RecordKind,
  beatMessage,
  broadcastHead,
  introRecord,
  joinRecord,
  leaveRecord,
  readEntries,
  replaceRecord,
  resyncRecord,
  unicastHead,
  type ListedEntry,
} from './wire.js';

/** Counters and gauges of the scale-out, as `/metrics` and `/healthz` report them. */
export interface ClusterStats {
  /** This instance's id (16 hex digits, new every start). */
  instanceId: string;
  /** Both Redis connections are up and this instance is registered. */
  up: boolean;
  /** Live relay instances this one knows, itself included (1 while Redis is down). */
  instances: number;
  /** Peers on other instances paired with or findable by this one's clients. */
  remotePeers: number;
  /** Topics this instance shares through Redis. */
  topics: number;
  /** Times Redis was lost (connection closed, or the publish backlog overflowed). */
  outages: number;
  /** Times this instance (re)registered after connecting to Redis. */
  registrations: number;
  /** Instances declared dead after `instanceTtlMs` without a heartbeat. */
  instancesExpired: number;
  /** PUBLISH commands and their payload bytes. */
  messagesOut: number;
  bytesOut: number;
  /** Pub/sub messages received and their bytes. */
  messagesIn: number;
  bytesIn: number;
  /** Records (frames, membership changes) in published and received messages. */
  recordsOut: number;
  recordsIn: number;
  /** Other Redis commands (scripts, key refreshes). */
  commands: number;
  /** Published bytes Redis has not acknowledged yet. */
  backlogBytes: number;
  /** Redis connection errors. */
  errors: number;
  /** Records dropped: from an unknown sender or for an unknown peer, malformed, or while Redis was down. */
  drops: { unknownPeer: number; malformed: number; down: number };
}

/** @internal A relay instance other than this one. */
interface Remote {
  readonly id: string;
  readonly channel: string;
  lastSeen: number;
  /** Stand-ins of its connections, by its session numbers. */
  readonly ghosts: Map<number, Ghost>;
  /** Topics where it has listed peers (or was told to exist by Redis). */
  readonly mirrors: Set<Mirror>;
  /** Records waiting for the next flush. */
  parts: Buffer[];
  bytes: number;
  records: number;
}

/** @internal A connection on another instance, with a session number reserved here. */
interface Ghost {
  readonly session: number;
  readonly remote: Remote;
  readonly remoteSession: number;
  readonly peerId: Buffer;
  /** Topics it is listed on here, and whether it is a member (paired) there. */
  readonly topics: Map<Mirror, boolean>;
}

/** @internal What this instance knows about a topic beyond itself. */
interface Mirror {
  readonly key: string;
  readonly bytes: Buffer;
  readonly hashKey: string;
  readonly ghosts: Set<Ghost>;
  /**
   * Ghosts by peer id (latin1). A peer id has one holder in the cluster (claims), so a second
   * one with the same id means the first is stale: its client moved and the old instance has
   * not noticed yet (or died). The newer one replaces it here at once.
   */
  readonly byPeerId: Map<string, Ghost>;
  /** Remote members (paired), all instances together. */
  members: number;
  /** Instances to tell about local JOIN / LEAVE, with how many peers each lists here. */
  readonly instances: Map<Remote, number>;
  /** Instances with members, and how many: a broadcast goes once to each. */
  readonly memberInstances: Map<Remote, number>;
}

interface ScriptCommands {
  rhzRegister(key: string, ...args: Array<string | Buffer | number>): Promise<string[]>;
  rhzLookupBuffer(key: string, self: string, alivePrefix: string, max: number): Promise<Buffer[]>;
  rhzClaim(key: string, value: string, px: number, alivePrefix: string, mode: 'take' | 'keep'): Promise<[number, string?]>;
  rhzRelease(key: string, value: string): Promise<number>;
}

type ScriptedRedis = Redis & ScriptCommands;

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/**
 * Routes between relay instances through Redis (the `RelayRouter` of `createRelayServer({ redis })`).
 *
 * Each instance publishes records to the instances that need them, on one channel per
 * instance, batched per event-loop turn: a frame to peers on N other instances is N records,
 * whatever the number of peers there; a frame between two peers of this instance never leaves
 * it. Redis holds only who is where (hashes with expiry) and the messages in flight.
 * ARCHITECTURE.md § Relay › Scale-out describes the design and the failure cases.
 */
export class RedisRouter implements RelayRouter {
  readonly instanceId: string;
  readonly #idBytes: Buffer;
  readonly #host: RouterHost;
  readonly #o: ResolvedClusterOptions;
  readonly #cmd: ScriptedRedis;
  readonly #sub: Redis;
  readonly #hbChannel: string;
  readonly #hbChannelBytes: Buffer;
  readonly #ownChannel: string;
  readonly #aliveKey: string;
  readonly #alivePrefix: string;
  /** Expiry of topic hashes and peer-id claims: long, refreshed while in use; liveness comes from `alive`. */
  readonly #refreshTtlMs: number;
  readonly #remotes = new Map<string, Remote>();
  /** Instances declared dead, and when: if one speaks again it is asked to re-introduce itself. */
  readonly #dead = new Map<string, number>();
  readonly #mirrors = new Map<string, Mirror>();
  readonly #ghosts = new Map<number, Ghost>();
  /** Peer ids of local connections: the key, and the value that says it is ours. */
  readonly #claims = new Map<RoutedPeer, { key: string; value: string }>();
  readonly #dirty = new Set<Remote>();
  #flushScheduled = false;
  #cmdReady = false;
  #subReady = false;
  #up = false;
  /** Changes whenever the link to Redis goes down or up: replies from an older epoch are stale. */
  #epoch = 0;
  #closed = false;
  #timer: ReturnType<typeof setInterval> | null = null;
  #ticks = 0;
  #upWaiters: Array<() => void> = [];
  readonly #stats = {
    outages: 0,
    registrations: 0,
    instancesExpired: 0,
    messagesOut: 0,
    bytesOut: 0,
    messagesIn: 0,
    bytesIn: 0,
    recordsOut: 0,
    recordsIn: 0,
    commands: 0,
    backlogBytes: 0,
    errors: 0,
    unknownPeer: 0,
    malformed: 0,
    down: 0,
  };

  constructor(host: RouterHost, options: ResolvedClusterOptions) {
    this.#host = host;
    this.#o = options;
    this.#idBytes = randomBytes(INSTANCE_ID_BYTES);
    this.instanceId = this.#idBytes.toString('hex');
    const p = options.prefix;
    this.#hbChannel = `${p}hb`;
    this.#hbChannelBytes = Buffer.from(this.#hbChannel);
    this.#ownChannel = `${p}i:${this.instanceId}`;
    this.#alivePrefix = `${p}alive:`;
    this.#aliveKey = `${this.#alivePrefix}${this.instanceId}`;
    this.#refreshTtlMs = Math.max(60_000, 10 * options.instanceTtlMs);
    const base: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
      maxRetriesPerRequest: 0,
      connectTimeout: Math.min(10_000, Math.max(1000, options.instanceTtlMs)),
      // Reconnect with capped exponential backoff and jitter.
      retryStrategy: (times: number) => Math.round(Math.min(5000, 100 * 2 ** Math.min(times, 6)) * (0.5 + Math.random() / 2)),
    };
    this.#cmd = new Redis(options.url, { ...base, enableAutoPipelining: true, connectionName: `rhizome-relay-${this.instanceId}` }) as ScriptedRedis;
    this.#sub = new Redis(options.url, { ...base, connectionName: `rhizome-relay-sub-${this.instanceId}` });
    this.#cmd.defineCommand('rhzRegister', { numberOfKeys: 1, lua: REGISTER_LUA });
    this.#cmd.defineCommand('rhzLookup', { numberOfKeys: 1, lua: LOOKUP_LUA });
    this.#cmd.defineCommand('rhzClaim', { numberOfKeys: 1, lua: CLAIM_LUA });
    this.#cmd.defineCommand('rhzRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    this.#cmd.on('error', this.#onError);
    this.#sub.on('error', this.#onError);
    this.#cmd.on('ready', () => {
      this.#cmdReady = true;
      this.#maybeUp();
    });
    this.#cmd.on('close', () => {
      this.#cmdReady = false;
      this.#goDown();
    });
    this.#sub.on('ready', () => {
      const sub = this.#sub;
      sub.subscribe(this.#ownChannel, this.#hbChannel).then(
        () => {
          if (sub.status !== 'ready') return;
          this.#subReady = true;
          this.#maybeUp();
        },
        this.#onError,
      );
    });
    this.#sub.on('close', () => {
      this.#subReady = false;
      this.#goDown();
    });
    this.#sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#onMessage(channel, message));
  }

  /** Connects to Redis; resolves once registered, or after `connectTimeoutMs` (then it keeps trying, degraded). */
  async start(): Promise<void> {
    this.#cmd.connect().catch(() => undefined);
    this.#sub.connect().catch(() => undefined);
    this.#timer = setInterval(() => this.#tick(), this.#o.heartbeatMs);
    this.#timer.unref();
    if (this.#up) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#o.connectTimeoutMs);
      timer.unref();
      this.#upWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** True while both Redis connections are up and this instance is registered. */
  get up(): boolean {
    return this.#up;
  }

  /** A snapshot of the counters. */
  stats(): ClusterStats {
    const s = this.#stats;
    return {
      instanceId: this.instanceId,
      up: this.#up,
      instances: this.#remotes.size + 1,
      remotePeers: this.#ghosts.size,
      topics: this.#mirrors.size,
      outages: s.outages,
      registrations: s.registrations,
      instancesExpired: s.instancesExpired,
      messagesOut: s.messagesOut,
      bytesOut: s.bytesOut,
      messagesIn: s.messagesIn,
      bytesIn: s.bytesIn,
      recordsOut: s.recordsOut,
      recordsIn: s.recordsIn,
      commands: s.commands,
      backlogBytes: s.backlogBytes,
      errors: s.errors,
      drops: { unknownPeer: s.unknownPeer, malformed: s.malformed, down: s.down },
    };
  }

  /**
   * Says goodbye (the others forget this instance's peers at once instead of after
   * `instanceTtlMs`) and closes both connections. Call after the core closed its clients.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#up) {
      this.#flush();
      const cmd = this.#cmd;
      await Promise.allSettled([cmd.publish(this.#hbChannel, beatMessage(this.#idBytes, BeatKind.BYE)), cmd.del(this.#aliveKey)]);
    }
    this.#up = false;
    this.#sub.disconnect();
    await this.#cmd.quit().catch(() => this.#cmd.disconnect());
    this.#cmd.disconnect();
  }

  // ------------------------------------------------------------------------------------------
  // RelayRouter: called by the core

  claim(peer: RoutedPeer, peerId: Buffer, sessionKey: Buffer, done: (verdict: 'ok' | 'taken') => void): void {
    const keyHash = sessionKey.length === 0 ? '' : createHash('sha256').update(sessionKey).digest('hex');
    const claim = { key: `${this.#o.prefix}p:${peerId.toString('hex')}`, value: `${this.instanceId}${hex8(peer.session)}${keyHash}` };
    if (!this.#up) {
      // Degraded: only this instance's own check holds now; the id is claimed on re-registration.
      this.#claims.set(peer, claim);
      done('ok');
      return;
    }
    const epoch = this.#epoch;
    this.#command();
    this.#cmd.rhzClaim(claim.key, claim.value, this.#refreshTtlMs, this.#alivePrefix, 'take').then(
      (result) => {
        if (peer.done) return;
        if (Number(result[0]) === 1) {
          done('taken');
          return;
        }
        this.#claims.set(peer, claim);
        const holder = result[1];
        if (Number(result[0]) === 2 && typeof holder === 'string' && epoch === this.#epoch && this.#up) {
          this.#queue(this.#remote(holder.slice(0, 16)), replaceRecord(Number.parseInt(holder.slice(16, 24), 16), peerId));
        }
        done('ok');
      },
      (error: unknown) => {
        // Redis failed under us: only the local check held (claimed again on re-registration).
        this.#onError(error);
        this.#claims.set(peer, claim);
        done('ok');
      },
    );
  }

  listed(topic: RoutedTopic, peer: RoutedPeer, member: boolean): void {
    if (!this.#up || peer.peerId === null) return;
    const mirror = this.#mirrors.get(topic.key);
    if (mirror === undefined) {
      this.#register(topic);
      return;
    }
    // A ghost with this peer id is a stale session of the same client (it moved here).
    const stale = mirror.byPeerId.get(peer.peerId.toString('latin1'));
    if (stale !== undefined) this.#removeGhostFrom(mirror, stale, true);
    this.#command();
    void this.#cmd.hset(mirror.hashKey, this.#field(peer.session), this.#value(peer.peerId, member)).catch(this.#onError);
    if (mirror.instances.size > 0) {
      const record = joinRecord(topic.bytes, { session: peer.session, member, peerId: peer.peerId });
      for (const remote of mirror.instances.keys()) this.#queue(remote, record);
    }
    if (member && mirror.members > 0) {
      for (const ghost of mirror.ghosts) {
        if (ghost.topics.get(mirror) === true) this.#host.sendTo(peer, encodePeerJoined(topic.id, ghost.session, ghost.peerId));
      }
    }
  }

  unlisted(topic: RoutedTopic, peer: RoutedPeer): void {
    if (!this.#up) return;
    const mirror = this.#mirrors.get(topic.key);
    if (mirror === undefined) return;
    this.#command();
    void this.#cmd.hdel(mirror.hashKey, this.#field(peer.session)).catch(this.#onError);
    if (mirror.instances.size > 0) {
      const record = leaveRecord(topic.bytes, peer.session);
      for (const remote of mirror.instances.keys()) this.#queue(remote, record);
    }
    if (topic.listedCount === 0) this.#dropMirror(mirror);
  }

  disconnected(peer: RoutedPeer): void {
    const claim = this.#claims.get(peer);
    if (claim === undefined) return;
    this.#claims.delete(peer);
    if (!this.#up) return;
    this.#command();
    void this.#cmd.rhzRelease(claim.key, claim.value).catch(this.#onError);
  }

  remoteMembers(topic: RoutedTopic): number {
    return this.#mirrors.get(topic.key)?.members ?? 0;
  }

  unicast(topic: RoutedTopic, _from: RoutedPeer, to: number, frame: Buffer): boolean {
    const ghost = this.#ghosts.get(to);
    if (ghost === undefined || !this.#up) return false;
    const mirror = this.#mirrors.get(topic.key);
    if (mirror === undefined || ghost.topics.get(mirror) !== true) return false;
    this.#queueParts(ghost.remote, unicastHead(topic.bytes, ghost.remoteSession, frame.length), frame);
    return true;
  }

  broadcast(topic: RoutedTopic, _from: RoutedPeer, frame: Buffer): void {
    const mirror = this.#mirrors.get(topic.key);
    if (mirror === undefined || !this.#up) return;
    const head = broadcastHead(topic.bytes, frame.length);
    for (const remote of mirror.memberInstances.keys()) this.#queueParts(remote, head, frame);
  }

  lookup(topicBytes: Buffer, _asker: RoutedPeer, reply: (remote: LookupEntry[]) => void): boolean {
    if (!this.#up) return false;
    const epoch = this.#epoch;
    this.#command();
    this.#cmd.rhzLookupBuffer(`${this.#o.prefix}m:${topicBytes.toString('hex')}`, this.instanceId, this.#alivePrefix, 0xffff).then(
      (pairs) => {
        const out: LookupEntry[] = [];
        for (let i = 0; i + 1 < pairs.length; i += 2) {
          const field = pairs[i]!.toString('latin1');
          const value = pairs[i + 1]!;
          if (value.length < 2) continue;
          const remote = epoch === this.#epoch ? this.#remotes.get(field.slice(0, 16)) : undefined;
          const ghost = remote?.ghosts.get(Number.parseInt(field.slice(16, 24), 16));
          out.push({ session: ghost?.session ?? 0, peerId: value.subarray(1) });
        }
        reply(out);
      },
      (error: unknown) => {
        this.#onError(error);
        reply([]);
      },
    );
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Registration

  #field(session: number): string {
    return `${this.instanceId}${hex8(session)}`;
  }

  #value(peerId: Buffer, member: boolean): Buffer {
    const v = Buffer.allocUnsafe(1 + peerId.length);
    v[0] = member ? PEER_MEMBER : 0;
    peerId.copy(v, 1);
    return v;
  }

  #entries(topic: RoutedTopic): ListedEntry[] {
    const out: ListedEntry[] = [];
    for (const p of topic.listed()) {
      if (p.peerId !== null && !p.done) out.push({ session: p.session, member: topic.member(p.session) === p, peerId: p.peerId });
    }
    return out;
  }

  /** First peer listed on a topic here: write every local peer, learn which instances share it, introduce ourselves to them. */
  #register(topic: RoutedTopic): void {
    const mirror: Mirror = {
      key: topic.key,
      bytes: topic.bytes,
      hashKey: `${this.#o.prefix}m:${topic.key}`,
      ghosts: new Set(),
      byPeerId: new Map(),
      members: 0,
      instances: new Map(),
      memberInstances: new Map(),
    };
    this.#mirrors.set(topic.key, mirror);
    const args: Array<string | Buffer | number> = [this.instanceId, this.#refreshTtlMs, this.#alivePrefix];
    for (const e of this.#entries(topic)) args.push(this.#field(e.session), this.#value(e.peerId, e.member));
    const epoch = this.#epoch;
    this.#command();
    this.#cmd.rhzRegister(mirror.hashKey, ...args).then((ids) => {
      if (epoch !== this.#epoch || this.#mirrors.get(mirror.key) !== mirror) return;
      const current = this.#host.topicByKey(mirror.key);
      if (current === undefined) return;
      const intro = introRecord(mirror.bytes, true, this.#entries(current));
      for (const id of ids) {
        const remote = this.#remote(id);
        if (!mirror.instances.has(remote)) {
          mirror.instances.set(remote, 0);
          remote.mirrors.add(mirror);
        }
        this.#queue(remote, intro);
      }
    }, this.#onError);
  }

  #dropMirror(mirror: Mirror): void {
    this.#mirrors.delete(mirror.key);
    for (const ghost of [...mirror.ghosts]) this.#removeGhostFrom(mirror, ghost, false);
    for (const remote of mirror.instances.keys()) remote.mirrors.delete(mirror);
    mirror.instances.clear();
    mirror.memberInstances.clear();
  }

  // ------------------------------------------------------------------------------------------
  // Link state

  #maybeUp(): void {
    if (this.#closed || this.#up || !this.#cmdReady || !this.#subReady) return;
    this.#up = true;
    this.#epoch++;
    this.#stats.registrations++;
    const cmd = this.#cmd;
    // Whoever still holds peers of an earlier life of this instance forgets them first (same
    // connection, so before the introductions below).
    this.#command(3);
    void cmd.publish(this.#hbChannel, beatMessage(this.#idBytes, BeatKind.RESET)).catch(this.#onError);
    void cmd.set(this.#aliveKey, '1', 'PX', this.#o.instanceTtlMs).catch(this.#onError);
    void cmd.publish(this.#hbChannel, beatMessage(this.#idBytes, BeatKind.HEARTBEAT)).catch(this.#onError);
    // Re-register: peer ids first (a clash that arose while apart is settled now), then topics.
    for (const [peer, claim] of this.#claims) if (!peer.done) this.#reclaim(peer, claim);
    for (const topic of this.#host.topics()) {
      if (topic.listedCount > 0 && !this.#mirrors.has(topic.key)) this.#register(topic);
    }
    const waiters = this.#upWaiters;
    this.#upWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Claims a peer id again after an outage, only if it is free: a live holder elsewhere got it
   * while we were apart, so ours yields (4030 if it was the same client, 4031 if not).
   */
  #reclaim(peer: RoutedPeer, claim: { key: string; value: string }): void {
    this.#command();
    this.#cmd.rhzClaim(claim.key, claim.value, this.#refreshTtlMs, this.#alivePrefix, 'keep').then((result) => {
      if (peer.done) return;
      const verdict = Number(result[0]);
      if (verdict === 1) this.#host.cutPeer(peer, 'PEER_ID_TAKEN');
      else if (verdict === 3) this.#host.cutPeer(peer, 'REPLACED');
    }, this.#onError);
  }

  #goDown(): void {
    if (!this.#up) return;
    this.#up = false;
    this.#epoch++;
    this.#stats.outages++;
    // Frames to and from other instances cannot flow now, and messages may have been lost:
    // every remote peer is gone for our clients (PEER_LEFT); they come back when we re-register.
    for (const remote of [...this.#remotes.values()]) this.#forget(remote);
    this.#remotes.clear();
    this.#dead.clear();
    for (const mirror of [...this.#mirrors.values()]) this.#dropMirror(mirror);
    this.#dirty.clear();
  }

  readonly #onError = (error: unknown): void => {
    this.#stats.errors++;
    void error;
  };

  #tick(): void {
    if (!this.#up) return;
    const now = performance.now();
    this.#ticks++;
    const cmd = this.#cmd;
    this.#command(2);
    void cmd.set(this.#aliveKey, '1', 'PX', this.#o.instanceTtlMs).catch(this.#onError);
    void cmd.publish(this.#hbChannel, beatMessage(this.#idBytes, BeatKind.HEARTBEAT)).catch(this.#onError);
    for (const remote of [...this.#remotes.values()]) {
      if (now - remote.lastSeen > this.#o.instanceTtlMs) {
        this.#stats.instancesExpired++;
        this.#forget(remote);
        this.#dead.set(remote.id, now);
      }
    }
    for (const [id, at] of this.#dead) if (now - at > 3_600_000) this.#dead.delete(id);
    // Topic hashes and peer-id claims live long and are refreshed well before they expire.
    const every = Math.max(1, Math.floor(this.#refreshTtlMs / 3 / this.#o.heartbeatMs));
    if (this.#ticks % every === 0) {
      for (const mirror of this.#mirrors.values()) {
        this.#command();
        void cmd.pexpire(mirror.hashKey, this.#refreshTtlMs).catch(this.#onError);
      }
      for (const claim of this.#claims.values()) {
        this.#command();
        void cmd.pexpire(claim.key, this.#refreshTtlMs).catch(this.#onError);
      }
    }
  }

  #command(n = 1): void {
    this.#stats.commands += n;
  }

  // ------------------------------------------------------------------------------------------
  // Remote instances and their peers

  #remote(id: string): Remote {
    let remote = this.#remotes.get(id);
    if (remote === undefined) {
      remote = { id, channel: `${this.#o.prefix}i:${id}`, lastSeen: performance.now(), ghosts: new Map(), mirrors: new Set(), parts: [], bytes: 0, records: 0 };
      this.#remotes.set(id, remote);
      if (this.#dead.delete(id)) {
        // We declared it dead and forgot its peers, but it lives: it must forget ours and
        // introduce itself again, or its clients would keep talking to pairs we no longer hold.
        this.#queue(remote, resyncRecord());
      }
    }
    return remote;
  }

  /** Drops what we know of an instance's peers: they leave (PEER_LEFT) on every topic here. */
  #reset(remote: Remote): void {
    for (const ghost of [...remote.ghosts.values()]) {
      for (const mirror of [...ghost.topics.keys()]) this.#removeGhostFrom(mirror, ghost, true);
    }
    for (const mirror of remote.mirrors) {
      mirror.instances.delete(remote);
      mirror.memberInstances.delete(remote);
    }
    remote.mirrors.clear();
  }

  /** Forgets an instance altogether. */
  #forget(remote: Remote): void {
    this.#reset(remote);
    this.#remotes.delete(remote.id);
    this.#dirty.delete(remote);
    remote.parts = [];
    remote.bytes = 0;
    remote.records = 0;
  }

  #ghost(remote: Remote, session: number, peerId: Buffer): Ghost {
    let ghost = remote.ghosts.get(session);
    if (ghost === undefined) {
      ghost = { session: this.#host.reserveSession(), remote, remoteSession: session, peerId, topics: new Map() };
      remote.ghosts.set(session, ghost);
      this.#ghosts.set(ghost.session, ghost);
    }
    return ghost;
  }

  #addGhostTo(mirror: Mirror, ghost: Ghost, member: boolean): void {
    const before = ghost.topics.get(mirror);
    if (before === true || before === member) return;
    const remote = ghost.remote;
    if (before === undefined) {
      const id = ghost.peerId.toString('latin1');
      const stale = mirror.byPeerId.get(id);
      if (stale !== undefined) this.#removeGhostFrom(mirror, stale, true);
      mirror.byPeerId.set(id, ghost);
      mirror.ghosts.add(ghost);
      mirror.instances.set(remote, (mirror.instances.get(remote) ?? 0) + 1);
      remote.mirrors.add(mirror);
    }
    ghost.topics.set(mirror, member);
    if (!member) return;
    mirror.members++;
    mirror.memberInstances.set(remote, (mirror.memberInstances.get(remote) ?? 0) + 1);
    const topic = this.#host.topicByKey(mirror.key);
    if (topic === undefined || topic.memberCount === 0) return;
    const joined = encodePeerJoined(topic.id, ghost.session, ghost.peerId);
    for (const local of topic.members) this.#host.sendTo(local, joined);
  }

  #removeGhostFrom(mirror: Mirror, ghost: Ghost, tell: boolean): void {
    const was = ghost.topics.get(mirror);
    if (was === undefined) return;
    ghost.topics.delete(mirror);
    mirror.ghosts.delete(ghost);
    const id = ghost.peerId.toString('latin1');
    if (mirror.byPeerId.get(id) === ghost) mirror.byPeerId.delete(id);
    const remote = ghost.remote;
    const listed = (mirror.instances.get(remote) ?? 1) - 1;
    if (listed <= 0) {
      mirror.instances.delete(remote);
      remote.mirrors.delete(mirror);
    } else mirror.instances.set(remote, listed);
    if (was) {
      mirror.members--;
      const members = (mirror.memberInstances.get(remote) ?? 1) - 1;
      if (members <= 0) mirror.memberInstances.delete(remote);
      else mirror.memberInstances.set(remote, members);
      const topic = tell ? this.#host.topicByKey(mirror.key) : undefined;
      if (topic !== undefined && topic.memberCount > 0) {
        const left = encodeDataFrame(FrameType.PEER_LEFT, topic.id, ghost.session);
        for (const member of topic.members) this.#host.sendTo(member, left);
      }
    }
    if (ghost.topics.size === 0) {
      remote.ghosts.delete(ghost.remoteSession);
      this.#ghosts.delete(ghost.session);
      this.#host.releaseSession(ghost.session);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Publishing: records are batched per destination instance and event-loop turn

  #queue(remote: Remote, record: Buffer): void {
    remote.parts.push(record);
    remote.bytes += record.length;
    this.#enqueued(remote);
  }

  #queueParts(remote: Remote, head: Buffer, frame: Buffer): void {
    remote.parts.push(head, frame);
    remote.bytes += head.length + frame.length;
    this.#enqueued(remote);
  }

  #enqueued(remote: Remote): void {
    remote.records++;
    this.#dirty.add(remote);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flushNow);
    }
  }

  readonly #flushNow = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  #flush(): void {
    if (this.#dirty.size === 0) return;
    if (!this.#up) {
      for (const remote of this.#dirty) {
        this.#stats.down += remote.records;
        remote.parts = [];
        remote.bytes = 0;
        remote.records = 0;
      }
      this.#dirty.clear();
      return;
    }
    const cmd = this.#cmd;
    const s = this.#stats;
    for (const remote of this.#dirty) {
      const parts = remote.parts;
      const size = MESSAGE_HEADER_BYTES + remote.bytes;
      const message = Buffer.allocUnsafe(size);
      message[0] = CLUSTER_MAGIC;
      this.#idBytes.copy(message, 1);
      let o = MESSAGE_HEADER_BYTES;
      for (const part of parts) {
        part.copy(message, o);
        o += part.length;
      }
      s.messagesOut++;
      s.bytesOut += size;
      s.recordsOut += remote.records;
      s.backlogBytes += size;
      remote.parts = [];
      remote.bytes = 0;
      remote.records = 0;
      cmd.publish(remote.channel, message).then(
        () => {
          s.backlogBytes -= size;
        },
        (error: unknown) => {
          s.backlogBytes -= size;
          this.#onError(error);
        },
      );
    }
    this.#dirty.clear();
    if (s.backlogBytes > this.#o.maxBacklogBytes) {
      // Redis does not keep up: rather than grow without bound, drop the cross-instance state
      // and reconnect (clients re-pair and resync by state vectors).
      this.#goDown();
      cmd.disconnect(true);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Receiving

  #onMessage(channel: Buffer, message: Buffer): void {
    const s = this.#stats;
    s.messagesIn++;
    s.bytesIn += message.length;
    if (!this.#up) return;
    if (message.length < MESSAGE_HEADER_BYTES || message[0] !== CLUSTER_MAGIC) {
      s.malformed++;
      return;
    }
    const id = message.toString('hex', 1, 1 + INSTANCE_ID_BYTES);
    if (id === this.instanceId) return;
    if (channel.length === this.#hbChannelBytes.length && channel.equals(this.#hbChannelBytes)) {
      this.#onBeat(id, message);
      return;
    }
    const remote = this.#remote(id);
    remote.lastSeen = performance.now();
    let o = MESSAGE_HEADER_BYTES;
    while (o < message.length) {
      if (o + 5 > message.length) {
        s.malformed++;
        return;
      }
      const end = o + 4 + message.readUInt32BE(o);
      if (end > message.length || end < o + 5) {
        s.malformed++;
        return;
      }
      s.recordsIn++;
      if (!this.#onRecord(remote, message, message[o + 4]!, o + 5, end)) s.malformed++;
      if (!this.#up) return;
      o = end;
    }
  }

  #onBeat(id: string, message: Buffer): void {
    const kind = message[MESSAGE_HEADER_BYTES];
    if (kind === BeatKind.HEARTBEAT) {
      this.#remote(id).lastSeen = performance.now();
      return;
    }
    if (kind === BeatKind.BYE) {
      const remote = this.#remotes.get(id);
      if (remote !== undefined) this.#forget(remote);
      this.#dead.delete(id);
      return;
    }
    if (kind === BeatKind.RESET) {
      // Its peers are gone (it re-introduces them); what we queued for it still goes out: an
      // introduction we decided on from a registration that raced with this RESET must not be
      // lost, or neither side would introduce itself again.
      this.#dead.delete(id);
      const remote = this.#remote(id);
      this.#reset(remote);
      remote.lastSeen = performance.now();
      return;
    }
    this.#stats.malformed++;
  }

  /** One record; false when malformed. */
  #onRecord(remote: Remote, m: Buffer, kind: number, at: number, end: number): boolean {
    switch (kind) {
      case RecordKind.BROADCAST:
      case RecordKind.UNICAST: {
        const frameAt = at + TOPIC_BYTES + (kind === RecordKind.UNICAST ? 4 : 0);
        if (frameAt + MIN_FRAME > end) return false;
        const key = m.toString('hex', at, at + TOPIC_BYTES);
        const mirror = this.#mirrors.get(key);
        const topic = this.#host.topicByKey(key);
        const ghost = remote.ghosts.get(m.readUInt32BE(frameAt + 5));
        if (mirror === undefined || topic === undefined || ghost === undefined || ghost.topics.get(mirror) !== true) {
          this.#stats.unknownPeer++;
          return true;
        }
        m.writeUInt32BE(topic.id, frameAt + 1);
        m.writeUInt32BE(ghost.session, frameAt + 5);
        const frame = m.subarray(frameAt, end);
        if (kind === RecordKind.BROADCAST) {
          for (const member of topic.members) this.#host.sendTo(member, frame);
        } else {
          const target = topic.member(m.readUInt32BE(at + TOPIC_BYTES));
          if (target === undefined) this.#stats.unknownPeer++;
          else this.#host.sendTo(target, frame);
        }
        return true;
      }
      case RecordKind.JOIN: {
        if (at + TOPIC_BYTES + 6 > end) return false;
        const o = at + TOPIC_BYTES;
        const len = m[o + 5]!;
        if (len === 0 || o + 6 + len !== end) return false;
        const mirror = this.#mirrors.get(m.toString('hex', at, o));
        if (mirror === undefined) return true;
        const ghost = this.#ghost(remote, m.readUInt32BE(o), Buffer.from(m.subarray(o + 6, end)));
        this.#addGhostTo(mirror, ghost, (m[o + 4]! & PEER_MEMBER) !== 0);
        return true;
      }
      case RecordKind.LEAVE: {
        if (at + TOPIC_BYTES + 4 !== end) return false;
        const mirror = this.#mirrors.get(m.toString('hex', at, at + TOPIC_BYTES));
        const ghost = remote.ghosts.get(m.readUInt32BE(at + TOPIC_BYTES));
        if (mirror !== undefined && ghost !== undefined) this.#removeGhostFrom(mirror, ghost, true);
        return true;
      }
      case RecordKind.INTRO: {
        if (at + TOPIC_BYTES + 5 > end) return false;
        const entries = readEntries(m, at + TOPIC_BYTES + 1, end);
        if (entries === null) return false;
        const mirror = this.#mirrors.get(m.toString('hex', at, at + TOPIC_BYTES));
        if (mirror === undefined) return true;
        this.#onIntro(remote, mirror, entries, (m[at + TOPIC_BYTES]! & 1) !== 0);
        return true;
      }
      case RecordKind.RESYNC: {
        if (at !== end) return false;
        // It forgot us: forget it too (our clients see its peers leave), then introduce
        // ourselves on every topic; its answers bring its peers back.
        this.#reset(remote);
        for (const mirror of this.#mirrors.values()) {
          const topic = this.#host.topicByKey(mirror.key);
          if (topic === undefined) continue;
          mirror.instances.set(remote, mirror.instances.get(remote) ?? 0);
          remote.mirrors.add(mirror);
          this.#queue(remote, introRecord(mirror.bytes, true, this.#entries(topic)));
        }
        return true;
      }
      case RecordKind.REPLACE: {
        if (at + 5 > end) return false;
        const len = m[at + 4]!;
        if (at + 5 + len !== end) return false;
        const peer = this.#host.peerBySession(m.readUInt32BE(at));
        if (peer !== undefined && peer.peerId !== null && peer.peerId.equals(m.subarray(at + 5, end))) this.#host.cutPeer(peer, 'REPLACED');
        return true;
      }
      default:
        return false;
    }
  }

  /** An instance's whole list for a topic: replaces what we knew of it there. */
  #onIntro(remote: Remote, mirror: Mirror, entries: ListedEntry[], replyWanted: boolean): void {
    const keep = new Set<number>();
    for (const e of entries) keep.add(e.session);
    for (const ghost of [...mirror.ghosts]) {
      if (ghost.remote === remote && !keep.has(ghost.remoteSession)) this.#removeGhostFrom(mirror, ghost, true);
    }
    for (const e of entries) this.#addGhostTo(mirror, this.#ghost(remote, e.session, e.peerId), e.member);
    if (entries.length > 0 && !mirror.instances.has(remote)) {
      mirror.instances.set(remote, 0);
      remote.mirrors.add(mirror);
    }
    if (!replyWanted) return;
    const topic = this.#host.topicByKey(mirror.key);
    if (topic === undefined) return;
    if (!mirror.instances.has(remote)) {
      mirror.instances.set(remote, 0);
      remote.mirrors.add(mirror);
    }
    this.#queue(remote, introRecord(mirror.bytes, false, this.#entries(topic)));
  }
}
