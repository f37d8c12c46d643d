import type { ResolvedLimits } from '../domain/apiKeys.ts';
import { ChatError } from '../domain/errors.ts';

/** Closes one open connection because its key was revoked (an `error` frame and 4401, or the end of a stream). */
export type Revoke = () => void;

export interface KeyConnections {
  /**
   * Counts an open connection (WebSocket, SSE, streamed `/v1`) of a key and
   * remembers how to close it. Throws `rate_limited` past the key's
   * `connections` limit. Call the returned function when it closes. Under
   * `--auth none` (no key id) it only returns a no-op.
   */
  open(caller: { keyId: string | undefined; limits: ResolvedLimits }, revoke: Revoke): () => void;
  /** Closes every connection of a revoked key; returns how many. */
  revoke(keyId: string): number;
  countOf(keyId: string): number;
  /** Keys with at least one open connection (to check for revocations made by other nodes). */
  keyIds(): string[];
}

export function createKeyConnections(): KeyConnections {
  const byKey = new Map<string, Set<Revoke>>();
  return {
    open(caller, revoke) {
      const keyId = caller.keyId;
      if (keyId === undefined) return () => {};
      const open = byKey.get(keyId) ?? new Set<Revoke>();
      const limit = caller.limits.connections;
      if (limit > 0 && open.size >= limit) {
        throw new ChatError('rate_limited', 'This key has as many open connections as it may; close one and try again.', { retryAfterMs: 1000 });
      }
      // Each call gets its own function, so one connection's entry is never mistaken for another's.
      const entry: Revoke = () => revoke();
      open.add(entry);
      byKey.set(keyId, open);
      return () => {
        const set = byKey.get(keyId);
        if (!set?.delete(entry)) return;
        if (set.size === 0) byKey.delete(keyId);
      };
    },
    revoke(keyId) {
      const open = byKey.get(keyId);
      if (!open) return 0;
      byKey.delete(keyId);
      for (const revoke of open) revoke();
      return open.size;
    },
    countOf: (keyId) => byKey.get(keyId)?.size ?? 0,
    keyIds: () => [...byKey.keys()],
  };
}
