import { StoreReadOnlyError, type DocStore } from '@rhizome/core';

/** Throws `ERR_STORE_READ_ONLY` for a write to a database opened with `readOnly: true`. */
export function assertWritableDatabase(readOnly: boolean, store: DocStore): void {
  if (!readOnly) return;
  const path = (store as { path?: unknown }).path;
  throw new StoreReadOnlyError(typeof path === 'string' ? path : 'database', 'the database was opened read-only (readOnly: true)');
}
