/**
 * Small byte strings kept as text: an idle replica holds a few per remote replica (a request id,
 * the peer's state vector), and a `Uint8Array` of 16 bytes costs ~200 B of heap (the view, its
 * `ArrayBuffer` and the backing store) where a one-byte-per-char string costs ~40 B.
 *
 * @packageDocumentation
 */

/** The bytes as a string of one char per byte (latin1). Exact for every byte value. */
export function bytesToText(bytes: Uint8Array): string {
  let text = '';
  // Chunks: `fromCharCode.apply` takes its arguments on the stack.
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[]);
  }
  return text;
}

/** The bytes of {@link bytesToText}'s string. */
export function textToBytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** True when `bytes` are the bytes of `text` (a {@link bytesToText} string). */
export function sameBytesAsText(bytes: Uint8Array, text: string): boolean {
  if (bytes.length !== text.length) return false;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== text.charCodeAt(i)) return false;
  return true;
}

