import { ChatError, isChatError } from '../domain/errors.ts';

// SQLSTATE classes where the database refuses what was written, not the
// connection or the server: 22 data exception (e.g. 22021, U+0000 in text),
// 23 integrity constraint, 54 program limit (a row too large).
const POSTGRES_CONTENT_CLASSES = ['22', '23', '54'];
// better-sqlite3 result codes for the same (SQLITE_CONSTRAINT_* included).
const SQLITE_CONTENT_CODES = /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/;

/** True when the database refused the data itself: the same write would fail again. */
export function isContentError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  if (SQLITE_CONTENT_CODES.test(code)) return true;
  return /^[0-9A-Z]{5}$/.test(code) && POSTGRES_CONTENT_CLASSES.includes(code.slice(0, 2));
}

/**
 * A database failure becomes `store_rejected` when the content was refused,
 * else `store_unavailable` (disk full, server down, lock or query timeout);
 * the driver's message stays in `cause` for the log and never reaches a
 * client. Errors that are already ChatErrors pass through.
 */
export function storeError(error: unknown): ChatError {
  if (isChatError(error)) return error;
  return new ChatError(isContentError(error) ? 'store_rejected' : 'store_unavailable', undefined, { cause: error });
}

/** Runs `work`, turning whatever it throws into a store error. */
export async function guarded<T>(work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw storeError(error);
  }
}
