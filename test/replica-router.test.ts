// The replica router over a database's sessions (replicas.ts `ReplicaRouter` given the active
// sessions' map): it marks each replica's active session instead of keeping a map entry per remote
// replica, looks through the active sessions while they are few and keeps a map past
// ROUTER_SCAN_LIMIT. Checked against the router that always keeps its map (no sessions given),
// driven the way the database drives it (sync/database.ts #attach, #onReplica, #onSessionClosed),
// under random attaches, replica announcements, reconnects and closes.
import { describe, expect, it } from 'vitest';
import { ReplicaRouter, ROUTER_SCAN_LIMIT, type RoutedSession } from '../packages/sync/src/replicas.js';
import { prng } from './prng.js';

type Path = 'direct' | 'relay' | 'circuit';
interface S extends RoutedSession {
  readonly n: number;
  readonly key: string;
  conn: RoutedSession['conn'];
  replicaId: string | null;
  closed: boolean;
}

/** One database's side of the router: its active sessions by key and its standbys (as database.ts). */
class Db {
  readonly sessions = new Map<string, S>();
  readonly standby = new Set<S>();
  readonly router: ReplicaRouter<S>;
  /** What the router answered, as session numbers: the same for both databases. */
  readonly log: string[] = [];
  readonly all: S[] = [];

  constructor(withSessions: boolean) {
    this.router = withSessions ? new ReplicaRouter<S>(this.sessions) : new ReplicaRouter<S>();
  }

  attach(n: number, key: string, transport: string, path: Path): void {
    const previous = this.sessions.get(key);
    if (previous) {
      this.sessions.delete(key);
      previous.closed = true;
      this.ended(previous);
    }
    const s: S = { n, key, conn: { transport, path } as unknown as S['conn'], replicaId: null, closed: false };
    this.all.push(s);
    this.sessions.set(key, s);
  }

  announce(i: number, replicaId: string): void {
    const s = this.all[i]!;
    if (s.closed || s.replicaId !== null) return;
    s.replicaId = replicaId;
    const park = this.router.bind(s);
    this.log.push(`bind ${s.n} -> ${park?.n ?? '-'}`);
    if (park === null) return;
    if (this.sessions.get(park.key) === park) this.sessions.delete(park.key);
    this.standby.add(park);
  }

  /** The session closes; the database hears of it later ({@link end}), as from an async close. */
  close(i: number): void {
    this.all[i]!.closed = true;
  }

  end(i: number): void {
    const s = this.all[i]!;
    if (!s.closed || this.#ended.has(s)) return;
    this.ended(s);
  }

  readonly #ended = new Set<S>();

  /** As the database's #onSessionClosed: unbind, then out of the maps; a standby promoted. */
  ended(s: S): void {
    this.#ended.add(s);
    const promote = this.router.unbind(s);
    this.log.push(`unbind ${s.n} -> ${promote?.n ?? '-'}`);
    if (this.standby.delete(s)) return;
    if (this.sessions.get(s.key) === s) this.sessions.delete(s.key);
    if (promote !== null && this.standby.delete(promote)) this.sessions.set(promote.key, promote);
  }

  /** Each open session's role, for comparing the two databases. */
  roles(): string[] {
    return this.all.map((s) => `${s.n}:${s.closed ? 'closed' : this.router.isStandby(s) ? 'standby' : this.sessions.get(s.key) === s ? 'active' : 'out'}`);
  }
}

describe('replica router over the database sessions (no map entry per remote replica while few)', () => {
  it('answers as the router with its own map, below and past the scan limit, under random traffic', () => {
    const transports: Array<[string, Path]> = [
      ['memory', 'direct'],
      ['relay', 'relay'],
      ['dht', 'circuit'],
      ['dht', 'direct'],
    ];
    for (let seed = 1; seed <= 60; seed++) {
      const random = prng(seed);
      const pick = (n: number): number => Math.floor(random() * n);
      // Few replicas and keys: collisions (two paths to one replica, reconnects under one key)
      // are common. Half the seeds stay below the scan limit, half go well past it.
      const replicas = seed % 2 === 0 ? 6 : 3 * ROUTER_SCAN_LIMIT;
      const keys = seed % 2 === 0 ? 5 : 4 * ROUTER_SCAN_LIMIT; // per transport name (three)
      const a = new Db(false);
      const b = new Db(true);
      let n = 0;
      let maxActive = 0;
      for (let step = 0; step < 600; step++) {
        const op = random();
        if (op < 0.4 || a.all.length === 0) {
          const [transport, path] = transports[pick(transports.length)]!;
          const key = `${transport}:${pick(keys)}`;
          // Not the key of a standby: promoting it later would put it over this session in the
          // database's map (database.ts #onSessionClosed), which would leave this one open outside
          // the map — a path of the database, not of the router (where the two routers would part:
          // the one with its own map would still route that replica to the session left outside).
          if ([...a.standby].some((s) => s.key === key)) continue;
          n++;
          a.attach(n, key, transport, path);
          b.attach(n, key, transport, path);
        } else if (op < 0.8) {
          const i = pick(a.all.length);
          const id = `r${pick(replicas)}`;
          a.announce(i, id);
          b.announce(i, id);
        } else if (op < 0.9) {
          const i = pick(a.all.length);
          a.close(i);
          b.close(i);
        } else {
          const i = pick(a.all.length);
          a.end(i);
          b.end(i);
        }
        maxActive = Math.max(maxActive, b.sessions.size);
        if (b.log.length !== a.log.length || b.log.at(-1) !== a.log.at(-1)) expect(b.log, `seed ${seed} step ${step}`).toEqual(a.log);
        const rolesA = a.roles().join(' ');
        const rolesB = b.roles().join(' ');
        if (rolesB !== rolesA) expect(rolesB, `seed ${seed} step ${step}`).toBe(rolesA);
        // Exactly one routed session per replica id among the open, non-standby ones.
        for (const db of [a, b]) {
          const routed = db.all.filter((s) => s.routed === true);
          if (new Set(routed.map((s) => s.replicaId)).size !== routed.length || routed.some((s) => db.router.isStandby(s))) {
            expect.fail(`seed ${seed} step ${step}: two routed sessions for one replica, or a routed standby`);
          }
        }
      }
      expect(b.log).toEqual(a.log);
      if (seed % 2 === 1) expect(maxActive).toBeGreaterThan(ROUTER_SCAN_LIMIT);
      else expect(maxActive).toBeLessThanOrEqual(ROUTER_SCAN_LIMIT);
    }
  });

  it('the router with the database sessions keeps the better path and promotes the standby', () => {
    const db = new Db(true);
    db.attach(1, 'dht:1', 'dht', 'circuit');
    db.attach(2, 'relay:1', 'relay', 'relay');
    db.attach(3, 'dht:2', 'dht', 'direct');
    db.announce(0, 'r');
    db.announce(1, 'r'); // the WebSocket relay beats a circuit relay
    db.announce(2, 'r'); // direct beats both
    expect(db.log).toEqual(['bind 1 -> -', 'bind 2 -> 1', 'bind 3 -> 2']);
    expect(db.roles()).toEqual(['1:standby', '2:standby', '3:active']);
    db.close(2);
    db.end(2);
    expect(db.roles()).toEqual(['1:standby', '2:active', '3:closed']);
    db.close(1);
    db.end(1);
    expect(db.roles()).toEqual(['1:active', '2:closed', '3:closed']);
    db.close(0);
    db.end(0);
    expect(db.log.slice(3)).toEqual(['unbind 3 -> 2', 'unbind 2 -> 1', 'unbind 1 -> -']);
    expect(db.all.every((s) => s.routed === false)).toBe(true);
  });
});
