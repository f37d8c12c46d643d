import type { SessionId } from '../domain/ids.ts';
import { isFencedWrite } from '../domain/ownership.ts';
import type { SessionStore } from '../domain/ports.ts';

export interface FencedStoreOptions {
  /** The token of this node's lease on the session (or of the one it just let go, while its writes drain). */
  tokenOf(sessionId: SessionId): number | undefined;
  /** The store refused a write: a newer owner has claimed the session. */
  onFenced(sessionId: SessionId): void;
}

/**
 * The store as a node of many uses it: every write carries the token of the
 * lease under which it was made. A write without one (the lease is gone) is
 * stamped -1, which no stored token accepts. A refused write is dropped
 * (resolved, so the writer does not retry it) and reported: this node's copy
 * of the session is stale and must go. Everything else passes through.
 */
export function fenceStore(store: SessionStore, options: FencedStoreOptions): SessionStore {
  const claim = store.claim?.bind(store);
  if (!claim) throw new Error('this store cannot fence writes (no claim): it cannot be shared by several nodes');
  return {
    ...store,
    async save(update) {
      try {
        await store.save({ ...update, fence: options.tokenOf(update.sessionId) ?? -1 });
      } catch (error) {
        if (!isFencedWrite(error)) throw error;
        options.onFenced(update.sessionId);
      }
    },
    claim,
  };
}
