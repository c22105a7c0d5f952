import { FrameTooLargeError, ProtocolError } from '@rhizome/core';

/**
 * The Rhizome stream protocol spoken on `${prefix}/sync/1.0.0` (see ARCHITECTURE.md,
 * "DHT transport"). One libp2p stream carries one topic between two peers:
 *
 * 1. dialer → listener: HELLO, exactly {@link HELLO_LENGTH} bytes: `version` (u8, {@link WIRE_VERSION})
 *    followed by the 32-byte topic.
 * 2. listener → dialer: one status byte ({@link HandshakeStatus}). Anything but `OK` is followed
 *    by the listener closing the stream.
 * 3. both ways: frames, each a u32 big-endian payload length followed by that many bytes.
 * 4. a close of the writable end (yamux FIN) ends the connection; the other side closes too.
 */

/** Version byte that opens a HELLO. */
export const WIRE_VERSION = 0x01;
/** Bytes of a HELLO: version + topic. */
export const HELLO_LENGTH = 33;
/** Bytes of a frame header: u32 big-endian payload length. */
export const FRAME_HEADER_LENGTH = 4;

/** The listener's answer to a HELLO: one byte, shared constants on both sides. */
export const HandshakeStatus = {
  /** The topic is joined here and this stream is the pair's connection. */
  OK: 0x00,
  /** The listener has not joined that topic (stale provider record, or a wrong topic). */
  UNKNOWN_TOPIC: 0x01,
  /** The HELLO's version byte is not one the listener speaks. */
  BAD_VERSION: 0x02,
  /** The pair already has a connection on this topic that wins the tie-break. */
  DUPLICATE: 0x03,
  /** The listener is shutting down (a listener that left the topic answers UNKNOWN_TOPIC). */
  GOING_AWAY: 0x04,
} as const;

/** One of the {@link HandshakeStatus} values. */
export type HandshakeStatusCode = (typeof HandshakeStatus)[keyof typeof HandshakeStatus];

const STATUS_NAMES = new Map<number, string>(Object.entries(HandshakeStatus).map(([k, v]) => [v, k]));

/** The name of a status byte, for error messages (`'UNKNOWN_TOPIC'`, or `'0x7f'` if unknown). */
export function statusName(code: number): string {
  return STATUS_NAMES.get(code) ?? `0x${code.toString(16).padStart(2, '0')}`;
}

/** The HELLO a dialer sends for a topic. */
export function encodeHello(topic: Uint8Array): Uint8Array {
  const out = new Uint8Array(HELLO_LENGTH);
  out[0] = WIRE_VERSION;
  out.set(topic, 1);
  return out;
}

/** Splits a HELLO into version and topic (the caller checks the version). */
export function decodeHello(bytes: Uint8Array): { version: number; topic: Uint8Array } {
  if (bytes.length !== HELLO_LENGTH) throw new ProtocolError(`HELLO must be ${HELLO_LENGTH} bytes, got ${bytes.length}`);
  return { version: bytes[0]!, topic: bytes.slice(1) };
}

/** One frame: header + a copy of the payload, in a single buffer (the caller may reuse `payload`). */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_LENGTH + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, FRAME_HEADER_LENGTH);
  return out;
}

/**
 * Received bytes not yet consumed: chunks appended as they arrive, read back as exact byte
 * counts or as frames. Never holds more than one frame's worth beyond what was pushed.
 */
export class ByteQueue {
  #chunks: Uint8Array[] = [];
  #length = 0;

  /** Bytes buffered. */
  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    // A plain Uint8Array view: Node hands Buffers, whose slice() does not copy.
    this.#chunks.push(Object.getPrototypeOf(chunk) === Uint8Array.prototype ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#length += chunk.length;
  }

  /** Removes and returns exactly `n` bytes, or returns null if fewer are buffered. */
  read(n: number): Uint8Array | null {
    if (n > this.#length) return null;
    if (n === 0) return new Uint8Array(0);
    const first = this.#chunks[0]!;
    if (first.length === n) {
      this.#chunks.shift();
      this.#length -= n;
      return first;
    }
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      this.#length -= n;
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const take = Math.min(c.length, n - off);
      out.set(c.subarray(0, take), off);
      off += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#length -= n;
    return out;
  }

  /** Reads the first 4 bytes as a u32 big-endian without consuming them, or null. */
  peekUint32(): number | null {
    if (this.#length < 4) return null;
    const first = this.#chunks[0]!;
    if (first.length >= 4) return new DataView(first.buffer, first.byteOffset, 4).getUint32(0, false);
    const head = new Uint8Array(4);
    let off = 0;
    for (const c of this.#chunks) {
      const take = Math.min(c.length, 4 - off);
      head.set(c.subarray(0, take), off);
      off += take;
      if (off === 4) break;
    }
    return new DataView(head.buffer).getUint32(0, false);
  }

  /**
   * Removes and returns the next complete frame's payload, or null if it has not fully arrived.
   * Throws {@link FrameTooLargeError} as soon as a header announces more than `limit` bytes,
   * before any of the payload is buffered.
   */
  readFrame(limit: number): Uint8Array | null {
    const size = this.peekUint32();
    if (size === null) return null;
    if (size > limit) throw new FrameTooLargeError(size, limit);
    if (this.#length < FRAME_HEADER_LENGTH + size) return null;
    this.read(FRAME_HEADER_LENGTH);
    // Copy: the payload must not share memory with libp2p's receive buffers.
    return this.read(size)!.slice();
  }

  clear(): void {
    this.#chunks = [];
    this.#length = 0;
  }
}
