/**
 * The seam between the routing core and whatever routes beyond this process (the Redis cluster
 * in `cluster/`). The core calls a {@link RelayRouter} at a few points — a HELLO to claim, a
 * peer listed or unlisted on a topic, a frame for a session the core does not hold — and the
 * router calls back into the core through {@link RouterHost}. Without a router the core is the
 * single-process relay it always was.
 */
import type { CloseCodeName } from '@rhizome/transport-relay/protocol';

/** A connection as the router sees it (read-only; the core owns it). */
export interface RoutedPeer {
  readonly session: number;
  /** The HELLO's peer id; null until the HELLO is accepted. */
  readonly peerId: Buffer | null;
  /** Cut or closed. */
  readonly done: boolean;
}

/** A topic as the router sees it (read-only; the core owns it). */
export interface RoutedTopic {
  /** This process's id of the topic (what its clients put in data frames). */
  readonly id: number;
  /** Hex of the topic hash. */
  readonly key: string;
  /** The 32-byte topic hash. */
  readonly bytes: Buffer;
  /** Joined members here, in the order they joined (replaced, not changed, when members come and go). */
  readonly members: readonly RoutedPeer[];
  /** How many members here. */
  readonly memberCount: number;
  /** The member here with this session, if any. */
  member(session: number): RoutedPeer | undefined;
  /** Members and announcers here. */
  readonly listedCount: number;
  /** Members and announcers here. */
  listed(): Iterable<RoutedPeer>;
}

/** One entry of a LOOKUP reply. */
export interface LookupEntry {
  session: number;
  peerId: Uint8Array;
}

/** What the core offers its router. */
export interface RouterHost {
  /** A topic with local members or announcers, by hex key. */
  topicByKey(key: string): RoutedTopic | undefined;
  /** A local connection by session number. */
  peerBySession(session: number): RoutedPeer | undefined;
  /** Every topic with local members or announcers. */
  topics(): Iterable<RoutedTopic>;
  /** Sends a relay→client frame to a local connection (counted; cuts a slow consumer). */
  sendTo(peer: RoutedPeer, frame: Uint8Array): void;
  /** Closes a local connection with a close code. */
  cutPeer(peer: RoutedPeer, name: CloseCodeName): void;
  /** A session number unused by local connections and not handed out again until released. */
  reserveSession(): number;
  /** Gives back a number from {@link RouterHost.reserveSession}. */
  releaseSession(session: number): void;
}

/** Routing beyond this process. Every method is called synchronously from the core's handlers. */
export interface RelayRouter {
  /**
   * A HELLO passed the local checks. The router decides whether the peer id is free beyond
   * this process and calls `done` (now or later) with `'ok'`, or `'taken'` (refused: 4031).
   * Until then the core holds the connection's further frames.
   */
  claim(peer: RoutedPeer, peerId: Buffer, sessionKey: Buffer, done: (verdict: 'ok' | 'taken') => void): void;
  /** The peer is now listed on the topic: `member` true when paired (JOIN), false for ANNOUNCE. */
  listed(topic: RoutedTopic, peer: RoutedPeer, member: boolean): void;
  /** The peer left the topic (LEAVE or its connection ended); `topic.listed` no longer has it. */
  unlisted(topic: RoutedTopic, peer: RoutedPeer, wasMember: boolean): void;
  /** The connection is gone (after `unlisted` for each of its topics). */
  disconnected(peer: RoutedPeer): void;
  /** Members of the topic elsewhere (for charging fan-out). */
  remoteMembers(topic: RoutedTopic): number;
  /**
   * SEND / CLOSE_PEER to a session that is not a local member: route it if it is a remote one.
   * `frame` already has its outgoing type and the sender's session in its header. False: no route.
   */
  unicast(topic: RoutedTopic, from: RoutedPeer, to: number, frame: Buffer): boolean;
  /** A BROADCAST (header already rewritten to DELIVER from the sender), for remote members. */
  broadcast(topic: RoutedTopic, from: RoutedPeer, frame: Buffer): void;
  /**
   * LOOKUP beyond this process: call `reply` with the remote entries (now or later) and return
   * true, or return false to answer with local peers only.
   */
  lookup(topicBytes: Buffer, asker: RoutedPeer, reply: (remote: LookupEntry[]) => void): boolean;
}
