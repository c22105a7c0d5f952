/**
 * A topic on the relay: who is joined (paired with each other) and who only announced
 * (findable by LOOKUP, not paired).
 *
 * A relay holds thousands of small topics (a document's few replicas), so a topic is kept
 * small: its members are one array of exactly their number, replaced (not grown) when someone
 * joins or leaves, and the announcers, its 32 bytes and a by-session index are made only when
 * needed. Two `Map`s per topic (members, and members plus announcers) cost ~600 B for a topic
 * of five — ~120 B per connection, a third of what the relay kept per idle connection above a
 * bare `ws` forwarder (BENCHMARKS.md § Issue 12, Session 8 (srvmem)); the array costs ~90 B.
 *
 * Because the arrays are replaced, a loop over {@link Topic.members} sees the members as they
 * were when it started, even when a send inside the loop cuts one of them (callers check
 * `done` where that matters).
 *
 * @packageDocumentation
 */

/** What a topic needs of a connection. */
export interface TopicMember {
  readonly session: number;
}

/** Members above this number are also indexed by session (a `Map`); below, lookups scan the array. */
const INDEX_FROM = 17;
/** An index is dropped again once the members fall to this number. */
const UNINDEX_AT = 8;

const NONE: readonly never[] = Object.freeze([]);

/** A copy of `list` with `item` appended: an array of exactly the new length (`[...list, item]` reserves ~20 slots more). */
function withItem<P>(list: readonly P[], item: P): P[] {
  return list.toSpliced(list.length, 0, item);
}

/** @internal A topic on this relay (see the module description). */
export class Topic<P extends TopicMember> {
  /** This relay's number for the topic (what its clients put in data frames). */
  readonly id: number;
  /** Hex of the 32-byte topic hash. */
  readonly key: string;
  #members: readonly P[] = NONE;
  /** Members by session, once there are {@link INDEX_FROM} or more; null below. */
  #index: Map<number, P> | null = null;
  /** Listed without being members (ANNOUNCE, or a JOIN to a full topic); null for none. */
  #announcers: readonly P[] | null = null;
  #bytes: Buffer | null = null;

  constructor(id: number, key: string) {
    this.id = id;
    this.key = key;
  }

  /** The 32-byte topic hash (made on first use: the scale-out router's frames carry it). */
  get bytes(): Buffer {
    let bytes = this.#bytes;
    if (bytes === null) {
      // An own allocation, not a slice of Node's shared pool (which a long-lived topic would pin).
      bytes = Buffer.alloc(32);
      bytes.write(this.key, 'hex');
      this.#bytes = bytes;
    }
    return bytes;
  }

  /** Joined members in the order they joined. Replaced, never changed in place: safe to loop over while members change. */
  get members(): readonly P[] {
    return this.#members;
  }

  get memberCount(): number {
    return this.#members.length;
  }

  /** The member with this session, if any. */
  member(session: number): P | undefined {
    const index = this.#index;
    if (index !== null) return index.get(session);
    const members = this.#members;
    for (let i = 0; i < members.length; i++) {
      const p = members[i]!;
      if (p.session === session) return p;
    }
    return undefined;
  }

  /** Members and announcers together (what the topic's listing counts). */
  get listedCount(): number {
    return this.#members.length + (this.#announcers?.length ?? 0);
  }

  /** Listed (member or announcer). */
  isListed(peer: P): boolean {
    return this.member(peer.session) === peer || (this.#announcers?.includes(peer) ?? false);
  }

  /** Everyone findable by LOOKUP: members, then announcers. */
  *listed(): IterableIterator<P> {
    yield* this.#members;
    if (this.#announcers !== null) yield* this.#announcers;
  }

  /** Lists `peer` without pairing it (it must not be listed yet). */
  addAnnouncer(peer: P): void {
    this.#announcers = withItem(this.#announcers ?? NONE, peer);
  }

  /** Makes `peer` a member (it must not be one yet); an announcer stops being one. */
  addMember(peer: P): void {
    this.#dropAnnouncer(peer);
    const members = withItem(this.#members, peer);
    this.#members = members;
    if (this.#index !== null) this.#index.set(peer.session, peer);
    else if (members.length >= INDEX_FROM) this.#index = new Map(members.map((p) => [p.session, p]));
  }

  /** Takes `peer` off the topic; true when it was a member. */
  remove(peer: P): boolean {
    this.#dropAnnouncer(peer);
    const members = this.#members;
    const i = members.indexOf(peer);
    if (i < 0) return false;
    this.#members = members.length === 1 ? NONE : members.toSpliced(i, 1);
    const index = this.#index;
    if (index !== null) {
      if (this.#members.length <= UNINDEX_AT) this.#index = null;
      else index.delete(peer.session);
    }
    return true;
  }

  #dropAnnouncer(peer: P): void {
    const announcers = this.#announcers;
    if (announcers === null) return;
    const i = announcers.indexOf(peer);
    if (i < 0) return;
    this.#announcers = announcers.length === 1 ? null : announcers.toSpliced(i, 1);
  }
}
