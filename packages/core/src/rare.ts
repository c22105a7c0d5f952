/**
 * Whether a "rare record" holds nothing: every own property null, undefined or false. Long-lived
 * objects that need some state only at times (the database's standby sessions and waiters, the
 * relay transport's lookups and timers) keep it in one such record, made at the first value and
 * dropped when this says it is empty again — one field per idle object instead of one per thing.
 * Every property is looked at, so a field added to a record later cannot be dropped with a value
 * still in it.
 */
export function rareRecordIsEmpty(record: object): boolean {
  for (const key in record) {
    const value = (record as Record<string, unknown>)[key];
    if (value !== null && value !== undefined && value !== false) return false;
  }
  return true;
}
