import { describe, expect, it } from 'vitest';
import { SLAB_BYTES, SLAB_MAX_FRAME, frameBytes } from './frame-slab.js';

describe('frameBytes', () => {
  it('cuts zeroed, non-overlapping views from one slab; a frame keeps its bytes while later ones are cut; a full slab gives way to a new one', () => {
    // Start from a fresh slab: cut until a frame lands at offset 0 of a new one.
    let first = frameBytes(SLAB_MAX_FRAME);
    while (first.byteOffset !== 0) first = frameBytes(SLAB_MAX_FRAME);
    const frames = [first];
    for (let size = 1; frames.length < 40; size = (size * 7) % 200 || 1) frames.push(frameBytes(size));
    let at = 0;
    for (const [i, f] of frames.entries()) {
      expect(f.buffer).toBe(first.buffer);
      expect(f.buffer.byteLength).toBe(SLAB_BYTES);
      expect(f.byteOffset).toBe(at);
      at += f.length;
      expect(f.every((b) => b === 0)).toBe(true);
      f.fill(i + 1);
    }
    // Filling each frame changed none of the others.
    for (const [i, f] of frames.entries()) expect(f.every((b) => b === i + 1)).toBe(true);
    // The rest of the slab, then a new one.
    while (at + 100 <= SLAB_BYTES) at += frameBytes(100).length;
    const next = frameBytes(100);
    expect(next.buffer).not.toBe(first.buffer);
    expect(next.byteOffset).toBe(0);
    for (const [i, f] of frames.entries()) expect(f.every((b) => b === i + 1)).toBe(true);
  });

  it('gives a frame larger than SLAB_MAX_FRAME a buffer of its own', () => {
    const big = frameBytes(SLAB_MAX_FRAME + 1);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(SLAB_MAX_FRAME + 1);
  });
});
