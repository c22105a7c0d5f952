/**
 * The relay client's outgoing frames (SEND, BROADCAST, CLOSE_PEER, WINDOW), cut from shared slabs
 * instead of a buffer each — what Node's `Buffer.allocUnsafe` pool does for small buffers, here
 * zero-filled and in every runtime.
 *
 * A `Uint8Array` of more than 64 bytes has its bytes outside V8's heap, in a malloc'd backing store
 * with two more native records (~150 B beside the bytes); a smaller one is moved out the same way
 * when `ws` reads its `.buffer` to frame it. While thousands of replicas connect, a frame's
 * JavaScript object is often held past a scavenge (the socket's corked write queue lives until the
 * end of the tick; V8 pretenures some of the queue's records), so it is promoted and its native
 * memory waits for the next full GC: about 2.6 frames' worth per replica in the client's peak of
 * malloc'd bytes, which sets how far glibc's main heap grows and stays (free chunks under later
 * long-lived ones are not returned). A frame cut from a slab is a view: no native allocation of
 * its own, only its bytes in a slab shared with the frames around it (BENCHMARKS.md § Issue 12,
 * Session 15 (rssnative)).
 *
 * A slab is never written twice: a frame's bytes stay as they were sent while anything holds the
 * frame, and a slab is freed with the last frame cut from it. Frames larger than
 * {@link SLAB_MAX_FRAME} get a buffer of their own, as before.
 */

/** Bytes of one slab. */
export const SLAB_BYTES = 16 * 1024;
/** The largest frame cut from a slab. */
export const SLAB_MAX_FRAME = 1024;

let slab: ArrayBuffer | null = null;
let used = SLAB_BYTES;

/** `length` zero bytes for an outgoing frame: a view of the current slab, or a buffer of its own. */
export function frameBytes(length: number): Uint8Array {
  if (length > SLAB_MAX_FRAME) return new Uint8Array(length);
  if (used + length > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    used = 0;
  }
  const out = new Uint8Array(slab!, used, length);
  used += length;
  return out;
}
