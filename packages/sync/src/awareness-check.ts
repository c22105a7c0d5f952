import * as decoding from 'lib0/decoding';

/** One entry of a y-protocols awareness update: a client id, and whether it carries a state (null: the client left). */
export interface AwarenessEntry {
  readonly client: number;
  readonly present: boolean;
}

/**
 * Reads a y-protocols awareness update (`varUint count, then per client: varUint id, varUint
 * clock, varString JSON state`) the way `applyAwarenessUpdate` does, without applying it: it
 * throws where that would throw while decoding. So an error `applyAwarenessUpdate` throws for an
 * update that decodes here comes from a `'change'`/`'update'` listener (an app's), not from the
 * peer's bytes.
 */
export function readAwarenessEntries(update: Uint8Array): AwarenessEntry[] {
  const decoder = decoding.createDecoder(update);
  const count = decoding.readVarUint(decoder);
  const entries: AwarenessEntry[] = [];
  for (let i = 0; i < count; i++) {
    const client = decoding.readVarUint(decoder);
    decoding.readVarUint(decoder); // clock
    const state: unknown = JSON.parse(decoding.readVarString(decoder));
    entries.push({ client, present: state !== null });
  }
  return entries;
}
