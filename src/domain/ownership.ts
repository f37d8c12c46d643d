import type { SessionId } from './ids.ts';

/**
 * Ownership of sessions across nodes. A session's actor runs on at most one
 * node at a time, the holder of its lease; every lease carries a fencing
 * token that rises with each new holder, and the store refuses writes that
 * carry a token older than the newest it has seen for the session.
 */

/** Who holds a session's lease: a node id and the lease's fencing token. */
export interface LeaseHolder {
  readonly node: string;
  readonly token: number;
}

/** A write refused by the store because a newer owner has claimed the session. */
export class FencedWriteError extends Error {
  readonly sessionId: SessionId;

  constructor(sessionId: SessionId, message = 'The store refused a write: a newer owner holds this session.') {
    super(message);
    this.name = 'FencedWriteError';
    this.sessionId = sessionId;
  }
}

export function isFencedWrite(error: unknown): error is FencedWriteError {
  return error instanceof FencedWriteError;
}

/** What claiming a session with a token found in the store (undefined: no such session). */
export interface ClaimResult {
  /** True when the store now carries this token; false when it already had this one or a newer one. */
  readonly claimed: boolean;
  /** The token the store carries after the claim. */
  readonly fence: number;
}
