import { ChatError, isChatError } from '../domain/errors.ts';

/**
 * A database failure (disk full, server down, lock timeout) becomes
 * `store_unavailable`; the driver's message stays in `cause` for the log and
 * never reaches a client. Errors that are already ChatErrors pass through.
 */
export function storeError(error: unknown): ChatError {
  if (isChatError(error)) return error;
  return new ChatError('store_unavailable', undefined, { cause: error });
}

/** Runs `work`, turning whatever it throws into a store error. */
export async function guarded<T>(work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw storeError(error);
  }
}
