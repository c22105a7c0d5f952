/**
 * A map that holds its first entry in two fields and makes a `Map` only for a second one.
 *
 * A relay transport usually joins one topic (one database per transport), and an idle process
 * holds thousands of transports: an empty `Map` is ~180 B of heap, a slot two fields
 * (ARCHITECTURE.md § Memory of an idle replica). Same semantics as the `Map` operations it
 * offers, except that {@link values} returns a snapshot array (callers iterate it while they
 * delete).
 */
export class SlotMap<K, V> {
  #key: K | undefined = undefined;
  #value: V | undefined = undefined;
  #inSlot = false;
  /** Every entry but the slot's, made for the first one. */
  #rest: Map<K, V> | null = null;

  get size(): number {
    return (this.#inSlot ? 1 : 0) + (this.#rest?.size ?? 0);
  }

  get(key: K): V | undefined {
    if (this.#inSlot && this.#key === key) return this.#value;
    return this.#rest?.get(key);
  }

  has(key: K): boolean {
    return (this.#inSlot && this.#key === key) || (this.#rest?.has(key) ?? false);
  }

  set(key: K, value: V): this {
    if (this.#inSlot && this.#key === key) this.#value = value;
    else if (!this.#inSlot && !(this.#rest?.has(key) ?? false)) {
      this.#key = key;
      this.#value = value;
      this.#inSlot = true;
    } else (this.#rest ??= new Map()).set(key, value);
    return this;
  }

  delete(key: K): boolean {
    if (this.#inSlot && this.#key === key) {
      this.#key = undefined;
      this.#value = undefined;
      this.#inSlot = false;
      return true;
    }
    const deleted = this.#rest?.delete(key) ?? false;
    if (this.#rest?.size === 0) this.#rest = null;
    return deleted;
  }

  clear(): void {
    this.#key = undefined;
    this.#value = undefined;
    this.#inSlot = false;
    this.#rest = null;
  }

  /** The values, slot first (a snapshot: the map may change while the caller iterates it). */
  values(): V[] {
    const out: V[] = this.#inSlot ? [this.#value as V] : [];
    if (this.#rest !== null) for (const v of this.#rest.values()) out.push(v);
    return out;
  }
}
