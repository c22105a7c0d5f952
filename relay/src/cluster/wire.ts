/**
 * What relay instances say to each other through Redis pub/sub. Every message is binary:
 * `[0xC1][from instance id: 8]` then, on an instance channel, records; on the heartbeat
 * channel, one kind byte. ARCHITECTURE.md § Relay › Scale-out has the tables.
 *
 * Records keep the client frame they carry intact (header included), so the receiving
 * instance rewrites the 9-byte header in the message buffer itself and sends that slice on.
 */
import { DATA_HEADER_BYTES, TOPIC_BYTES } from '@rhizome/transport-relay/protocol';

/** First byte of every cluster message (format version 1). */
export const CLUSTER_MAGIC = 0xc1;
/** Length of an instance id. */
export const INSTANCE_ID_BYTES = 8;
/** `[magic][instance id]`. */
export const MESSAGE_HEADER_BYTES = 1 + INSTANCE_ID_BYTES;

/** Record kinds on instance channels. */
export const RecordKind = {
  /** `[topic 32][frame: DELIVER header (from in bytes 5..9) + payload]`: to every local member. */
  BROADCAST: 1,
  /** `[topic 32][to u32][frame: DELIVER or PEER_CLOSED header (from in 5..9) + payload]`: to one member. */
  UNICAST: 2,
  /** `[topic 32][session u32][flags u8][idLen u8][peerId]`: a peer listed on the topic (flags bit 0: member). */
  JOIN: 3,
  /** `[topic 32][session u32]`: a peer left the topic. */
  LEAVE: 4,
  /** `[topic 32][flags u8 (bit 0: reply wanted)][count u32] ([session u32][flags u8][idLen u8][peerId])*`: every peer the sender lists on the topic. */
  INTRO: 5,
  /** (no body): the receiver forgot the sender (declared it dead); the sender re-introduces itself. */
  RESYNC: 6,
  /** `[session u32][idLen u8][peerId]`: a newer HELLO with the same session key took the peer id; cut that session (4030). */
  REPLACE: 7,
} as const;

/** Kinds on the heartbeat channel. */
export const BeatKind = {
  /** The instance is alive. */
  HEARTBEAT: 1,
  /** The instance is shutting down: forget it now. */
  BYE: 2,
  /** The instance lost its routing state (Redis outage): forget its peers; it re-introduces them. */
  RESET: 3,
} as const;

/** Flags of a listed peer. */
export const PEER_MEMBER = 1;

/** A listed peer in JOIN and INTRO records. */
export interface ListedEntry {
  session: number;
  member: boolean;
  peerId: Buffer;
}

function recordHead(kind: number, topic: Buffer | null, bodyLen: number): { buf: Buffer; at: number } {
  const topicLen = topic === null ? 0 : TOPIC_BYTES;
  const buf = Buffer.allocUnsafe(5 + topicLen + bodyLen);
  buf.writeUInt32BE(1 + topicLen + bodyLen, 0);
  buf[4] = kind;
  if (topic !== null) topic.copy(buf, 5);
  return { buf, at: 5 + topicLen };
}

/** The head of a BROADCAST record (the frame follows it as its own part). */
export function broadcastHead(topic: Buffer, frameLen: number): Buffer {
  const buf = Buffer.allocUnsafe(5 + TOPIC_BYTES);
  buf.writeUInt32BE(1 + TOPIC_BYTES + frameLen, 0);
  buf[4] = RecordKind.BROADCAST;
  topic.copy(buf, 5);
  return buf;
}

/** The head of a UNICAST record (the frame follows it as its own part). */
export function unicastHead(topic: Buffer, to: number, frameLen: number): Buffer {
  const buf = Buffer.allocUnsafe(5 + TOPIC_BYTES + 4);
  buf.writeUInt32BE(1 + TOPIC_BYTES + 4 + frameLen, 0);
  buf[4] = RecordKind.UNICAST;
  topic.copy(buf, 5);
  buf.writeUInt32BE(to, 5 + TOPIC_BYTES);
  return buf;
}

/** A JOIN record. */
export function joinRecord(topic: Buffer, entry: ListedEntry): Buffer {
  const { buf, at } = recordHead(RecordKind.JOIN, topic, 6 + entry.peerId.length);
  buf.writeUInt32BE(entry.session, at);
  buf[at + 4] = entry.member ? PEER_MEMBER : 0;
  buf[at + 5] = entry.peerId.length;
  entry.peerId.copy(buf, at + 6);
  return buf;
}

/** A LEAVE record. */
export function leaveRecord(topic: Buffer, session: number): Buffer {
  const { buf, at } = recordHead(RecordKind.LEAVE, topic, 4);
  buf.writeUInt32BE(session, at);
  return buf;
}

/** An INTRO record: the whole list of the sender's peers on the topic. */
export function introRecord(topic: Buffer, replyWanted: boolean, entries: readonly ListedEntry[]): Buffer {
  let size = 5;
  for (const e of entries) size += 6 + e.peerId.length;
  const { buf, at } = recordHead(RecordKind.INTRO, topic, size);
  buf[at] = replyWanted ? 1 : 0;
  buf.writeUInt32BE(entries.length, at + 1);
  let o = at + 5;
  for (const e of entries) {
    buf.writeUInt32BE(e.session, o);
    buf[o + 4] = e.member ? PEER_MEMBER : 0;
    buf[o + 5] = e.peerId.length;
    e.peerId.copy(buf, o + 6);
    o += 6 + e.peerId.length;
  }
  return buf;
}

/** A RESYNC record. */
export function resyncRecord(): Buffer {
  return recordHead(RecordKind.RESYNC, null, 0).buf;
}

/** A REPLACE record. */
export function replaceRecord(session: number, peerId: Buffer): Buffer {
  const { buf, at } = recordHead(RecordKind.REPLACE, null, 5 + peerId.length);
  buf.writeUInt32BE(session, at);
  buf[at + 4] = peerId.length;
  peerId.copy(buf, at + 5);
  return buf;
}

/** A heartbeat-channel message. */
export function beatMessage(instanceId: Buffer, kind: number): Buffer {
  const buf = Buffer.allocUnsafe(MESSAGE_HEADER_BYTES + 1);
  buf[0] = CLUSTER_MAGIC;
  instanceId.copy(buf, 1);
  buf[MESSAGE_HEADER_BYTES] = kind;
  return buf;
}

/** Reads the listed entries of an INTRO body starting at `at` (count at `at`); null when malformed. */
export function readEntries(buf: Buffer, at: number, end: number): ListedEntry[] | null {
  if (at + 4 > end) return null;
  const count = buf.readUInt32BE(at);
  const out: ListedEntry[] = [];
  let o = at + 4;
  for (let i = 0; i < count; i++) {
    if (o + 6 > end) return null;
    const len = buf[o + 5]!;
    if (len === 0 || o + 6 + len > end) return null;
    out.push({ session: buf.readUInt32BE(o), member: (buf[o + 4]! & PEER_MEMBER) !== 0, peerId: Buffer.from(buf.subarray(o + 6, o + 6 + len)) });
    o += 6 + len;
  }
  return o === end ? out : null;
}

/** Smallest frame a BROADCAST or UNICAST record carries. */
export const MIN_FRAME = DATA_HEADER_BYTES;
