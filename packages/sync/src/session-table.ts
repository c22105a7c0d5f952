/**
 * A database's active sessions, one per transport and peer id (BENCHMARKS.md § Issue 12, Session 11
 * (clipeer2)). An idle replica's database holds one session per remote replica, and a `Map`'s table
 * costs ~42 B of heap per entry against a list's 8: up to {@link SESSION_LIST_LIMIT} sessions are a
 * list of exactly them, looked through by their Connection's transport and peer id; past that, a
 * `Map` by key (the peer id, or `transport NUL peer id` for a Connection of another transport than
 * the database's: the multi-transport).
 *
 * The list is replaced, never changed in place, so a list {@link values} returned stays as it was
 * while sessions come and go (a `Map`'s iterator would show them); the database iterates to send,
 * ask or close, where a session that ended meanwhile is one that ignores it.
 */
import type { Connection } from '@rhizome/core';

/** Sessions a database keeps in a list before it keeps them in a Map. */
export const SESSION_LIST_LIMIT = 16;

/** What the table needs of a session. */
export interface TabledSession {
  readonly conn: Connection;
}

/** No sessions: one shared empty list (frozen: pushing to it would throw). */
const NONE: readonly never[] = Object.freeze([]);

/**
 * The key of a Connection in a database on transport `transportName` (in Map form). Peer ids of
 * different transports may collide, so the key is transport and peer id; a Connection of the
 * transport the database joined by name (every Connection of a single transport) is keyed by its
 * peer id alone, the string it already holds (a key made per session is ~70 B of heap per remote
 * replica). Both forms meet in one map only under a transport whose Connections carry other names
 * than its own (the multi-transport: all composite).
 */
export function sessionKey(conn: Connection, transportName: string): string {
  return conn.transport === transportName ? conn.peerId : `${conn.transport}\u0000${conn.peerId}`;
}

function samePeer(a: Connection, b: Connection): boolean {
  return a.peerId === b.peerId && a.transport === b.transport;
}

export class SessionTable<S extends TabledSession> {
  #sessions: readonly S[] | Map<string, S> = NONE;

  get size(): number {
    const s = this.#sessions;
    return Array.isArray(s) ? s.length : (s as Map<string, S>).size;
  }

  /** The sessions (a list not changed afterwards while they are few; the Map's values past that). */
  values(): Iterable<S> {
    const s = this.#sessions;
    return Array.isArray(s) ? (s as readonly S[]) : (s as Map<string, S>).values();
  }

  /** The session of the peer `conn` reaches (same transport and peer id), if any. */
  find(conn: Connection, transportName: string): S | undefined {
    const s = this.#sessions;
    if (!Array.isArray(s)) return (s as Map<string, S>).get(sessionKey(conn, transportName));
    const list = s as readonly S[];
    for (let i = 0; i < list.length; i++) if (samePeer(list[i]!.conn, conn)) return list[i];
    return undefined;
  }

  /** Adds `session`, in place of the session of the same peer if there is one. */
  set(session: S, transportName: string): void {
    const s = this.#sessions;
    if (!Array.isArray(s)) {
      (s as Map<string, S>).set(sessionKey(session.conn, transportName), session);
      return;
    }
    const list = s as readonly S[];
    const at = list.findIndex((x) => samePeer(x.conn, session.conn));
    if (at >= 0) {
      const next = list.slice();
      next[at] = session;
      this.#sessions = next;
    } else if (list.length < SESSION_LIST_LIMIT) {
      // A list of exactly its entries (push would grow it to 17 slots).
      this.#sessions = list.concat(session);
    } else {
      const map = new Map<string, S>();
      for (const x of list) map.set(sessionKey(x.conn, transportName), x);
      map.set(sessionKey(session.conn, transportName), session);
      this.#sessions = map;
    }
  }

  /** Removes `session` if it is in the table (not another session of the same peer). */
  delete(session: S, transportName: string): void {
    const s = this.#sessions;
    if (!Array.isArray(s)) {
      const map = s as Map<string, S>;
      const key = sessionKey(session.conn, transportName);
      if (map.get(key) === session) map.delete(key);
      return;
    }
    const list = s as readonly S[];
    if (!list.includes(session)) return;
    this.#sessions = list.length === 1 ? NONE : list.filter((x) => x !== session);
  }
}
