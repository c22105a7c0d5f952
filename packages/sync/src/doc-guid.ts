/**
 * The `guid` of a database's `Y.Doc`.
 *
 * Yjs gives a new doc a random UUID (lib0 `random.uuidv4`), drawing each of its 31 random hex
 * digits with its own `crypto.getRandomValues(new Uint32Array(1))`: ~9 KiB of garbage per doc,
 * a sizeable part of what opening a database allocates. The same kind of id (a version-4 UUID,
 * 122 random bits) is made here from one 16-byte draw. Rhizome never sends the root doc's guid
 * (Yjs encodes a guid only for subdocuments); an app may read it, as with any `Y.Doc`.
 */
import { randomId } from '@rhizome/core';

const HEX = '0123456789abcdef';

/** A random version-4 UUID (RFC 9562 layout: `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`, y ∈ 8–b). */
export function newDocGuid(): string {
  const b = randomId(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const parts: string[] = [];
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) parts.push('-');
    parts.push(HEX[b[i]! >> 4]!, HEX[b[i]! & 15]!);
  }
  // join, not `+=`: one flat string for the doc's life, not a rope of 36 pieces.
  return parts.join('');
}
