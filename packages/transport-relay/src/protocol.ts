/**
 * The relay wire protocol, shared by the relay server (`@rhizome/relay`) and the client
 * (`@rhizome/transport-relay`): frame types, their layouts, encoders, type guards and the
 * WebSocket close codes. No runtime dependencies, so browsers can import it.
 *
 * Every frame is one binary WebSocket message: a type byte, fixed-size big-endian fields,
 * then (for data frames) the opaque payload. ARCHITECTURE.md § Relay has the byte tables.
 *
 * Data frames (SEND, BROADCAST, CLOSE_PEER) and their server-side twins (DELIVER, PEER_CLOSED)
 * share one 9-byte header `[type][topicId u32][peer u32]`, so the relay forwards a frame by
 * rewriting the type byte and the peer field in place and sending the very same buffer on.
 *
 * @packageDocumentation
 */

/** Version carried in HELLO and WELCOME; a relay refuses clients of another version. */
export const PROTOCOL_VERSION = 1;

/** Length of a topic hash on the wire. */
export const TOPIC_BYTES = 32;

/** Header of SEND / BROADCAST / CLOSE_PEER / DELIVER / PEER_CLOSED: type, topic id, peer. */
export const DATA_HEADER_BYTES = 9;

/** Longest peer id (UTF-8 bytes) a HELLO may carry. */
export const MAX_PEER_ID_BYTES = 64;
/** Longest session key a HELLO may carry (the client sends 16 random bytes). */
export const MAX_SESSION_KEY_BYTES = 64;

/** Longest access token (UTF-8 bytes) a HELLO may carry. */
export const MAX_TOKEN_BYTES = 255;

/** Frame type bytes. Client→relay types are below 0x80, relay→client types at or above. */
export const FrameType = {
  /** c→s `[0x01][version u8][idLen u8][peerId][tokenLen u8][token][keyLen u8][sessionKey]`: first frame of a session. */
  HELLO: 0x01,
  /** c→s `[0x02][topic 32]`: join a topic (findable, and paired with its other members). */
  JOIN: 0x02,
  /** c→s `[0x03][topic 32]`: leave a joined or announced topic. */
  LEAVE: 0x03,
  /** c→s `[0x04][topic 32]`: be findable by LOOKUP without being paired. */
  ANNOUNCE: 0x04,
  /** c→s `[0x05][requestId u32][topic 32]`: who is findable on a topic. */
  LOOKUP: 0x05,
  /** c→s `[0x06][topicId u32][to u32][payload]`: unicast to one member. */
  SEND: 0x06,
  /** c→s `[0x07][topicId u32][0 u32][payload]`: to every other member. */
  BROADCAST: 0x07,
  /** c→s `[0x08][topicId u32][to u32]`: close the pair (the remote sees PEER_CLOSED). */
  CLOSE_PEER: 0x08,
  /** c→s `[0x09][nonce u32]`: liveness probe; answered by PONG (browsers cannot see WebSocket pings). */
  PING: 0x09,
  /**
   * c→s `[0x0a][topicId u32][to u32][credit u32]`: per-Connection flow control — lets `to` send
   * `credit` more bytes to this client on the topic (credit 0: "I speak WINDOW"). Only sent to a
   * relay whose LIMITS has {@link LIMITS_FLAG_WINDOW}.
   */
  WINDOW: 0x0a,

  /** s→c `[0x80][version u8][session u32][maxFrameSize u32]`: reply to HELLO. */
  WELCOME: 0x80,
  /** s→c `[0x81][topicId u32][topic 32]`: reply to JOIN and ANNOUNCE. */
  JOINED: 0x81,
  /** s→c `[0x82][topicId u32][session u32][idLen u8][peerId]`: a member to pair with. */
  PEER_JOINED: 0x82,
  /** s→c `[0x83][topicId u32][session u32]`: that member left (or its socket closed). */
  PEER_LEFT: 0x83,
  /** s→c `[0x84][topicId u32][from u32][payload]`: a SEND or BROADCAST, forwarded. */
  DELIVER: 0x84,
  /** s→c `[0x85][topicId u32][from u32]`: the remote closed the pair. */
  PEER_CLOSED: 0x85,
  /** s→c `[0x86][requestId u32][count u16]([session u32][idLen u8][peerId])*`: LOOKUP reply. */
  PEERS: 0x86,
  /** s→c `[0x87][nonce u32]`: reply to PING. */
  PONG: 0x87,
  /**
   * s→c `[0x88][flags u8][maxFramesPerSecond u32][frameBurst u32][maxBytesPerSecond u32][byteBurst u32]`:
   * the relay's per-connection rate limits, sent right after WELCOME, so a client can pace itself
   * under them instead of being cut (older clients ignore the type). `flags` bit 0
   * ({@link LIMITS_FLAG_WINDOW}): this relay forwards WINDOW; the other bits are reserved (0).
   */
  LIMITS: 0x88,
  /** s→c `[0x8a][topicId u32][from u32][credit u32]`: a WINDOW, forwarded. */
  WINDOW_UPDATE: 0x8a,
  /** s→c `[0x8f][error u16][context u32][message utf8]`: a non-fatal refusal. */
  ERROR: 0x8f,
} as const;

/** One of {@link FrameType}'s values. */
export type FrameTypeByte = (typeof FrameType)[keyof typeof FrameType];

/** Codes of non-fatal ERROR frames. */
export const RelayErrorCode = {
  /** A data frame named a topic id this connection has not joined. */
  NOT_JOINED: 1,
  /** A JOIN to a topic at the relay's `maxPeersPerTopic`: the peer is announced, not paired (`context` = topic id). */
  TOPIC_FULL: 2,
} as const;

/**
 * WebSocket close codes the relay uses. 1000–1011 are the standard ones; 4000–4099 are
 * Rhizome's. A client maps them to typed errors (`closeCodeName`, `isFatalCloseCode`).
 */
export const CloseCode = {
  /** Normal close (client leaving, relay closing a client it was asked to close). */
  NORMAL: 1000,
  /** The relay is shutting down (SIGTERM, `close()`); reconnect later. */
  GOING_AWAY: 1001,
  /** Invalid WebSocket framing (reported by the WebSocket library). */
  PROTOCOL_ERROR: 1002,
  /** A text message: the protocol is binary only. */
  UNSUPPORTED_DATA: 1003,
  /** A frame above the relay's `maxFrameSize`. */
  FRAME_TOO_LARGE: 1009,
  /** A frame too short or too long for its type (truncated, trailing bytes). */
  MALFORMED_FRAME: 4000,
  /** A frame whose type byte the relay does not know. */
  UNKNOWN_FRAME_TYPE: 4001,
  /** A frame other than HELLO before HELLO, or a second HELLO. */
  HELLO_REQUIRED: 4002,
  /** HELLO carried another protocol version. */
  VERSION_MISMATCH: 4003,
  /** No HELLO within the relay's `helloTimeoutMs`. */
  HELLO_TIMEOUT: 4004,
  /** The relay requires a token and HELLO carried none or a wrong one. */
  UNAUTHORIZED: 4010,
  /** Joining or announcing more topics than `maxTopicsPerConnection`. */
  TOO_MANY_TOPICS: 4020,
  /** The relay holds `maxConnections` already. */
  TOO_MANY_CONNECTIONS: 4021,
  /** This address holds `maxConnectionsPerIp` already. */
  TOO_MANY_CONNECTIONS_PER_IP: 4022,
  /** More frames per second than `maxFramesPerSecond` (after the burst allowance). */
  FRAME_RATE_EXCEEDED: 4023,
  /** More bytes per second than `maxBytesPerSecond` (after the burst allowance). */
  BYTE_RATE_EXCEEDED: 4024,
  /** The client did not read: its send buffer at the relay passed `maxBufferedBytes`. */
  SLOW_CONSUMER: 4025,
  /** No pong to the relay's ping within a heartbeat interval. */
  HEARTBEAT_TIMEOUT: 4026,
  /** A newer connection of the same client (same peer id and session key) took this one's place. */
  REPLACED: 4030,
  /** The peer id is held by a live connection whose session key this HELLO did not present. */
  PEER_ID_TAKEN: 4031,
} as const;

/** Name of a close code, e.g. `'SLOW_CONSUMER'`. */
export type CloseCodeName = keyof typeof CloseCode;

const CLOSE_NAMES = new Map<number, CloseCodeName>(
  (Object.entries(CloseCode) as Array<[CloseCodeName, number]>).map(([name, code]) => [code, name]),
);

/** The {@link CloseCode} name of a numeric close code, or `undefined` for codes the relay never sends. */
export function closeCodeName(code: number): CloseCodeName | undefined {
  return CLOSE_NAMES.get(code);
}

/**
 * Close codes after which reconnecting would only repeat the refusal (or fight another
 * session for the same peer id): the client stops and reports a typed error instead.
 */
export function isFatalCloseCode(code: number): boolean {
  return (
    code === CloseCode.UNAUTHORIZED ||
    code === CloseCode.VERSION_MISMATCH ||
    code === CloseCode.REPLACED ||
    code === CloseCode.HELLO_REQUIRED
  );
}

// ---------------------------------------------------------------------------------------------
// Field access (runtime-neutral: plain Uint8Array, no Buffer)

/** Reads a big-endian u32 at `offset`. */
export function readU32(b: Uint8Array, offset: number): number {
  return ((b[offset]! << 24) | (b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!) >>> 0;
}

/** Writes a big-endian u32 at `offset`. */
export function writeU32(b: Uint8Array, offset: number, value: number): void {
  b[offset] = value >>> 24;
  b[offset + 1] = (value >>> 16) & 0xff;
  b[offset + 2] = (value >>> 8) & 0xff;
  b[offset + 3] = value & 0xff;
}

/** Reads a big-endian u16 at `offset`. */
export function readU16(b: Uint8Array, offset: number): number {
  return (b[offset]! << 8) | b[offset + 1]!;
}

function writeU16(b: Uint8Array, offset: number, value: number): void {
  b[offset] = (value >>> 8) & 0xff;
  b[offset + 1] = value & 0xff;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Text of UTF-8 bytes, or `null` when they are not valid UTF-8. */
export function fromUtf8(bytes: Uint8Array): string | null {
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Type guards: each checks the length (and inner lengths) of one frame type. A frame that
// passes its guard can be read field by field without further bounds checks.

/** HELLO: `[0x01][version][idLen][id][tokenLen][token][keyLen][key]` with 1 ≤ idLen ≤ 64, keyLen ≤ 64. */
export function isHelloFrame(b: Uint8Array): boolean {
  if (b.length < 6 || b[0] !== FrameType.HELLO) return false;
  const idLen = b[2]!;
  if (idLen < 1 || idLen > MAX_PEER_ID_BYTES || b.length < 5 + idLen) return false;
  const tokenLen = b[3 + idLen]!;
  if (b.length < 5 + idLen + tokenLen) return false;
  const keyLen = b[4 + idLen + tokenLen]!;
  return keyLen <= MAX_SESSION_KEY_BYTES && b.length === 5 + idLen + tokenLen + keyLen;
}

/** The session key a HELLO carries (empty when it has none); the frame must pass {@link isHelloFrame}. */
export function helloSessionKey(b: Uint8Array): Uint8Array {
  const idLen = b[2]!;
  const tokenLen = b[3 + idLen]!;
  return b.subarray(5 + idLen + tokenLen);
}

/** JOIN, LEAVE or ANNOUNCE: `[type][topic 32]`, exactly 33 bytes. */
export function isTopicFrame(b: Uint8Array): boolean {
  return b.length === 1 + TOPIC_BYTES;
}

/** LOOKUP: `[0x05][requestId u32][topic 32]`, exactly 37 bytes. */
export function isLookupFrame(b: Uint8Array): boolean {
  return b.length === 5 + TOPIC_BYTES && b[0] === FrameType.LOOKUP;
}

/** SEND, BROADCAST, DELIVER: at least the 9-byte data header. */
export function isDataFrame(b: Uint8Array): boolean {
  return b.length >= DATA_HEADER_BYTES;
}

/** CLOSE_PEER, PEER_CLOSED, PEER_LEFT: exactly the 9-byte header. */
export function isPairFrame(b: Uint8Array): boolean {
  return b.length === DATA_HEADER_BYTES;
}

/** PING or PONG: exactly 5 bytes. */
export function isPingFrame(b: Uint8Array): boolean {
  return b.length === 5;
}

/** PING (`FrameType.PING`) or PONG (`FrameType.PONG`) with a nonce. */
export function encodePing(type: typeof FrameType.PING | typeof FrameType.PONG, nonce: number): Uint8Array {
  const b = new Uint8Array(5);
  b[0] = type;
  writeU32(b, 1, nonce);
  return b;
}

/** WELCOME: exactly 10 bytes. */
export function isWelcomeFrame(b: Uint8Array): boolean {
  return b.length === 10 && b[0] === FrameType.WELCOME;
}

/** JOINED: exactly 37 bytes. */
export function isJoinedFrame(b: Uint8Array): boolean {
  return b.length === 5 + TOPIC_BYTES && b[0] === FrameType.JOINED;
}

/** PEER_JOINED: `[0x82][topicId][session][idLen][id]`. */
export function isPeerJoinedFrame(b: Uint8Array): boolean {
  return b.length >= 10 && b[0] === FrameType.PEER_JOINED && b.length === 10 + b[9]! && b[9]! > 0;
}

/** PEERS: `[0x86][requestId][count u16]` then `count` entries, nothing after them. */
export function isPeersFrame(b: Uint8Array): boolean {
  if (b.length < 7 || b[0] !== FrameType.PEERS) return false;
  const count = readU16(b, 5);
  let o = 7;
  for (let i = 0; i < count; i++) {
    if (o + 5 > b.length) return false;
    o += 5 + b[o + 4]!;
  }
  return o === b.length;
}

/** LIMITS flag: the relay forwards WINDOW frames (per-Connection flow control, transport-relay `flow.ts`). */
export const LIMITS_FLAG_WINDOW = 0x01;

/** Bytes of a WINDOW / WINDOW_UPDATE frame. */
export const WINDOW_FRAME_BYTES = DATA_HEADER_BYTES + 4;

/** WINDOW or WINDOW_UPDATE: exactly 13 bytes. */
export function isWindowFrame(b: Uint8Array): boolean {
  return b.length === WINDOW_FRAME_BYTES;
}

/** A WINDOW frame granting `credit` bytes to `to` on `topicId` (in `out`'s first 13 bytes, zero, if given). */
export function encodeWindow(topicId: number, to: number, credit: number, out?: Uint8Array): Uint8Array {
  const b = out ?? new Uint8Array(WINDOW_FRAME_BYTES);
  b[0] = FrameType.WINDOW;
  writeU32(b, 1, topicId);
  writeU32(b, 5, to);
  writeU32(b, 9, Math.max(0, Math.min(0xffffffff, Math.floor(credit))));
  return b;
}

/** Bytes of a LIMITS frame as this version writes it (a longer one is accepted: newer relays may append fields). */
export const LIMITS_FRAME_BYTES = 18;

/** The per-connection rates a relay announces in LIMITS. */
export interface RelayRateLimits {
  maxFramesPerSecond: number;
  frameBurst: number;
  maxBytesPerSecond: number;
  byteBurst: number;
}

/** LIMITS: at least 18 bytes, every rate positive. */
export function isLimitsFrame(b: Uint8Array): boolean {
  if (b.length < LIMITS_FRAME_BYTES || b[0] !== FrameType.LIMITS) return false;
  for (let o = 2; o < LIMITS_FRAME_BYTES; o += 4) if (readU32(b, o) === 0) return false;
  return true;
}

/** LIMITS with the relay's rates (each clamped to a u32). */
export function encodeLimits(limits: RelayRateLimits, flags = 0): Uint8Array {
  const b = new Uint8Array(LIMITS_FRAME_BYTES);
  b[0] = FrameType.LIMITS;
  b[1] = flags & 0xff;
  const u32 = (v: number): number => Math.max(1, Math.min(0xffffffff, Math.floor(v)));
  writeU32(b, 2, u32(limits.maxFramesPerSecond));
  writeU32(b, 6, u32(limits.frameBurst));
  writeU32(b, 10, u32(limits.maxBytesPerSecond));
  writeU32(b, 14, u32(limits.byteBurst));
  return b;
}

/** Decodes a LIMITS frame that passed {@link isLimitsFrame}. */
export function decodeLimits(b: Uint8Array): RelayRateLimits & { flags: number } {
  return { flags: b[1]!, maxFramesPerSecond: readU32(b, 2), frameBurst: readU32(b, 6), maxBytesPerSecond: readU32(b, 10), byteBurst: readU32(b, 14) };
}

/** ERROR: at least `[0x8f][error u16][context u32]`. */
export function isErrorFrame(b: Uint8Array): boolean {
  return b.length >= 7 && b[0] === FrameType.ERROR;
}

// ---------------------------------------------------------------------------------------------
// Encoders. The hot-path ones write into a buffer the caller allocates, so a client can
// allocate header and payload in one piece.

/**
 * HELLO with this client's peer id, optional token and optional session key (length-checked by
 * the caller). The session key proves that a reconnect comes from the client that holds the
 * peer id: only a HELLO with the same key may replace a live session of that id.
 */
export function encodeHello(peerId: Uint8Array, token: Uint8Array | null, sessionKey: Uint8Array | null = null): Uint8Array {
  const tokenLen = token?.length ?? 0;
  const keyLen = sessionKey?.length ?? 0;
  const b = new Uint8Array(5 + peerId.length + tokenLen + keyLen);
  b[0] = FrameType.HELLO;
  b[1] = PROTOCOL_VERSION;
  b[2] = peerId.length;
  b.set(peerId, 3);
  b[3 + peerId.length] = tokenLen;
  if (token) b.set(token, 4 + peerId.length);
  b[4 + peerId.length + tokenLen] = keyLen;
  if (sessionKey) b.set(sessionKey, 5 + peerId.length + tokenLen);
  return b;
}

/** JOIN, LEAVE or ANNOUNCE of a topic. */
export function encodeTopicFrame(type: typeof FrameType.JOIN | typeof FrameType.LEAVE | typeof FrameType.ANNOUNCE, topic: Uint8Array): Uint8Array {
  const b = new Uint8Array(1 + TOPIC_BYTES);
  b[0] = type;
  b.set(topic, 1);
  return b;
}

/** LOOKUP of a topic under a request id. */
export function encodeLookup(requestId: number, topic: Uint8Array): Uint8Array {
  const b = new Uint8Array(5 + TOPIC_BYTES);
  b[0] = FrameType.LOOKUP;
  writeU32(b, 1, requestId);
  b.set(topic, 5);
  return b;
}

/**
 * A data-header frame (SEND, BROADCAST, CLOSE_PEER, DELIVER, PEER_CLOSED, PEER_LEFT) with a payload
 * copied in; into the zero bytes `alloc` gives for its length, if given.
 */
export function encodeDataFrame(type: number, topicId: number, peer: number, payload?: Uint8Array, alloc?: (length: number) => Uint8Array): Uint8Array {
  const length = DATA_HEADER_BYTES + (payload?.length ?? 0);
  const b = alloc === undefined ? new Uint8Array(length) : alloc(length);
  b[0] = type;
  writeU32(b, 1, topicId);
  writeU32(b, 5, peer);
  if (payload) b.set(payload, DATA_HEADER_BYTES);
  return b;
}

/** WELCOME for a session. */
export function encodeWelcome(session: number, maxFrameSize: number): Uint8Array {
  const b = new Uint8Array(10);
  b[0] = FrameType.WELCOME;
  b[1] = PROTOCOL_VERSION;
  writeU32(b, 2, session);
  writeU32(b, 6, maxFrameSize);
  return b;
}

/** JOINED: the relay's id for a topic on this relay. */
export function encodeJoined(topicId: number, topic: Uint8Array): Uint8Array {
  const b = new Uint8Array(5 + TOPIC_BYTES);
  b[0] = FrameType.JOINED;
  writeU32(b, 1, topicId);
  b.set(topic, 5);
  return b;
}

/** PEER_JOINED: a member of a topic, with its session number and peer id bytes. */
export function encodePeerJoined(topicId: number, session: number, peerId: Uint8Array): Uint8Array {
  const b = new Uint8Array(10 + peerId.length);
  b[0] = FrameType.PEER_JOINED;
  writeU32(b, 1, topicId);
  writeU32(b, 5, session);
  b[9] = peerId.length;
  b.set(peerId, 10);
  return b;
}

/** PEERS: reply to LOOKUP. */
export function encodePeers(requestId: number, peers: ReadonlyArray<{ session: number; peerId: Uint8Array }>): Uint8Array {
  let size = 7;
  for (const p of peers) size += 5 + p.peerId.length;
  const b = new Uint8Array(size);
  b[0] = FrameType.PEERS;
  writeU32(b, 1, requestId);
  writeU16(b, 5, peers.length);
  let o = 7;
  for (const p of peers) {
    writeU32(b, o, p.session);
    b[o + 4] = p.peerId.length;
    b.set(p.peerId, o + 5);
    o += 5 + p.peerId.length;
  }
  return b;
}

/** Decodes a PEERS frame that passed {@link isPeersFrame}. */
export function decodePeers(b: Uint8Array): { requestId: number; peers: Array<{ session: number; peerId: Uint8Array }> } {
  const count = readU16(b, 5);
  const peers: Array<{ session: number; peerId: Uint8Array }> = [];
  let o = 7;
  for (let i = 0; i < count; i++) {
    const len = b[o + 4]!;
    peers.push({ session: readU32(b, o), peerId: b.subarray(o + 5, o + 5 + len) });
    o += 5 + len;
  }
  return { requestId: readU32(b, 1), peers };
}

/** ERROR: a non-fatal refusal with a code, a context number and a short text. */
export function encodeError(error: number, context: number, message: string): Uint8Array {
  const text = utf8(message);
  const b = new Uint8Array(7 + text.length);
  b[0] = FrameType.ERROR;
  writeU16(b, 1, error);
  writeU32(b, 3, context);
  b.set(text, 7);
  return b;
}

export * from './mailbox-wire.js';
