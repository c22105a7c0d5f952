/**
 * Replica identity: one sync session per remote replica, however many transports reach it.
 *
 * Transport peer ids differ per transport (a libp2p peer id, a relay session's id, a memory
 * hub name), so they cannot tell that two connections reach one replica. Every session
 * therefore opens with a sealed REPLICA message carrying the sender's replica id, a random
 * 16-byte id drawn when the database opens:
 *
 * `MSG_REPLICA (0x07) || version (1) = 1 || replicaId (16)`
 *
 * It is sealed like every other message, so only holders of the database key can claim a
 * replica id. When a second session reaches a replica that already has one, the better path is
 * kept {@link pathRank} and the other session is parked as a standby: it stays open and still
 * applies what arrives on it, but gets no live updates; if the active session ends, the standby
 * is promoted and re-exchanges state (a catch-up diff and a fresh step 1), so nothing written
 * meanwhile is lost.
 */
import { ProtocolError, flatHex, randomId } from '@rhizome/core';
import type { Connection, PeerPath } from '@rhizome/core';

import { MSG_REPLICA } from './wire.js';

/** Message type of the replica announcement (sync wire, inside a sealed frame; defined in wire.ts). */
export { MSG_REPLICA };
/** Version byte of the replica announcement. */
export const REPLICA_MESSAGE_VERSION = 1;
/** Bytes of a replica id. */
export const REPLICA_ID_LENGTH = 16;

/** A fresh random replica id. */
export function newReplicaId(): Uint8Array {
  return randomId(REPLICA_ID_LENGTH);
}

/** Encodes the replica announcement. */
export function encodeReplica(replicaId: Uint8Array): Uint8Array {
  if (replicaId.length !== REPLICA_ID_LENGTH) throw new ProtocolError(`replica id must be ${REPLICA_ID_LENGTH} bytes`);
  const out = new Uint8Array(2 + REPLICA_ID_LENGTH);
  out[0] = MSG_REPLICA;
  out[1] = REPLICA_MESSAGE_VERSION;
  out.set(replicaId, 2);
  return out;
}

/**
 * Decodes a replica announcement into the id's hex text. A newer version with a longer body
 * is accepted (its first 16 bytes are the id); a short one is a {@link ProtocolError}.
 */
export function decodeReplica(message: Uint8Array): string {
  if (message[0] !== MSG_REPLICA) throw new ProtocolError('not a replica message');
  if (message.length < 2 + REPLICA_ID_LENGTH) throw new ProtocolError('truncated replica message');
  if (message[1] === 0) throw new ProtocolError('replica message version 0');
  return toHex(message.subarray(2, 2 + REPLICA_ID_LENGTH));
}

/** The path a connection takes: what the transport says, else what its name implies. */
export function connectionPath(conn: Connection): PeerPath {
  if (conn.path !== undefined) return conn.path;
  if (conn.transport === 'memory') return 'memory';
  if (conn.transport === 'relay') return 'relay';
  return 'direct';
}

/**
 * How good a path is: direct, hole-punched and in-process first; then the WebSocket relay
 * (infrastructure made to carry sync); then a libp2p circuit relay (limited in time and bytes).
 */
export function pathRank(path: PeerPath): number {
  switch (path) {
    case 'direct':
    case 'holepunched':
    case 'memory':
      return 3;
    case 'relay':
      return 2;
    case 'circuit':
      return 1;
  }
}

/** What the router needs of a session. */
export interface RoutedSession {
  readonly conn: Connection;
  readonly replicaId: string | null;
  readonly closed: boolean;
  /**
   * @internal Set and cleared by the router: this session is its replica's active one (what the
   * router's map would say; a router over a database's sessions keeps no map while they are few).
   */
  routed?: boolean;
}

/**
 * Which of two sessions to one replica stays active. Both ends see the same paths and the same
 * transports, so they choose the same connection: the better path, then the transport whose
 * name sorts first; between two connections of one transport (a reconnect under a new peer
 * id), the newer one.
 */
export function preferred<S extends RoutedSession>(current: S, incoming: S): S {
  const a = pathRank(connectionPath(current.conn));
  const b = pathRank(connectionPath(incoming.conn));
  if (a !== b) return b > a ? incoming : current;
  if (current.conn.transport !== incoming.conn.transport) return incoming.conn.transport < current.conn.transport ? incoming : current;
  return incoming;
}

/** A database's active sessions, as the router reads them (a `Map`'s values, or sync's `SessionTable`). */
export interface ActiveSessions<S> {
  readonly size: number;
  values(): Iterable<S>;
}

/** Active sessions a router over a database's sessions looks through before it keeps a map by replica id. */
export const ROUTER_SCAN_LIMIT = 16;

/**
 * Keeps one active session per remote replica; the others wait as standbys.
 * Pure bookkeeping: the database moves sessions between its active and standby sets as told.
 *
 * Each session's {@link RoutedSession.routed} says whether it is its replica's active one. Given
 * the database's map of active sessions (which holds every active one), the router finds a
 * replica's active session by looking through them — no map entry per remote replica (an idle
 * replica holds one session per remote replica) — until they are more than
 * {@link ROUTER_SCAN_LIMIT}; from then on, and always without that map, it keeps its own map by
 * replica id.
 */
export class ReplicaRouter<S extends RoutedSession> {
  /** The database's active sessions (any key), or null: then {@link #active} is always kept. */
  readonly #sessions: ActiveSessions<S> | null;
  /** Active sessions by replica id; null while the router looks through {@link #sessions}. */
  #active: Map<string, S> | null;
  /** Made at the first standby (most replicas are reached over one path). */
  #standby: Map<string, Set<S>> | null = null;

  /** @param sessions The database's active sessions (see the class); without it, a map by replica id. */
  constructor(sessions?: ActiveSessions<S>) {
    this.#sessions = sessions ?? null;
    this.#active = sessions === undefined ? new Map() : null;
  }

  /** The active session of replica `id`, other than `except`. */
  #current(id: string, except: S): S | undefined {
    const sessions = this.#sessions;
    if (this.#active === null && sessions !== null && sessions.size > ROUTER_SCAN_LIMIT) {
      const active = (this.#active = new Map());
      for (const s of sessions.values()) if (s.routed === true && s.replicaId !== null) active.set(s.replicaId, s);
    }
    if (this.#active !== null) return this.#active.get(id);
    for (const s of sessions!.values()) if (s !== except && s.routed === true && s.replicaId === id) return s;
    return undefined;
  }

  #activate(id: string, session: S): void {
    session.routed = true;
    this.#active?.set(id, session);
  }

  /**
   * A session announced its replica. Returns the session that must become a standby (the
   * incoming one or the one that was active), or null when it is the replica's first.
   */
  bind(session: S): S | null {
    const id = session.replicaId;
    if (id === null) return null;
    const current = this.#current(id, session);
    if (current === undefined || current === session || current.closed) {
      if (current !== undefined && current !== session) current.routed = false;
      this.#activate(id, session);
      return null;
    }
    const keep = preferred(current, session);
    const park = keep === current ? session : current;
    park.routed = false;
    this.#activate(id, keep);
    const standby = (this.#standby ??= new Map());
    let set = standby.get(id);
    if (!set) standby.set(id, (set = new Set()));
    set.add(park);
    return park;
  }

  /** True if the session waits as a standby. */
  isStandby(session: S): boolean {
    const id = session.replicaId;
    return id !== null && (this.#standby?.get(id)?.has(session) ?? false);
  }

  /**
   * A session ended. If it was a replica's active session and a standby is open, returns the
   * standby to promote (the best one left).
   */
  unbind(session: S): S | null {
    const id = session.replicaId;
    if (id === null) return null;
    const set = this.#standby?.get(id);
    if (set?.delete(session)) {
      if (set.size === 0) this.#standby?.delete(id);
      return null;
    }
    if (session.routed !== true) return null;
    session.routed = false;
    this.#active?.delete(id);
    let best: S | null = null;
    for (const s of set ?? []) if (!s.closed) best = best === null ? s : preferred(best, s);
    if (best === null) {
      this.#standby?.delete(id);
      return null;
    }
    set!.delete(best);
    if (set!.size === 0) this.#standby?.delete(id);
    this.#activate(id, best);
    return best;
  }
}

function toHex(bytes: Uint8Array): string {
  // One flat string: a `+=` loop (as in @noble/hashes' bytesToHex) leaves a rope of one piece
  // per byte (~1 KiB for 16 bytes), held for as long as the session keeps the id.
  return flatHex(bytes);
}
