import type { LiveSession } from '../actors/liveSession.ts';
import type { SessionRegistry } from '../actors/sessionRegistry.ts';
import { ChatError } from '../domain/errors.ts';
import type { SessionId } from '../domain/ids.ts';
import type { SessionStore } from '../domain/ports.ts';
import type { Leases } from './leases.ts';

/** No such session in the store. */
export const MISSING = Symbol('missing');

export interface ActivatorOptions {
  registry: SessionRegistry;
  store: SessionStore;
  leases: Leases;
}

/**
 * Activates sessions on this node under a fresh lease, one activation per
 * session at a time. Resolves with the session, MISSING, or undefined when
 * another node won the lease.
 */
export function createActivator(options: ActivatorOptions) {
  const { registry, store, leases } = options;
  const pending = new Map<SessionId, Promise<LiveSession | typeof MISSING | undefined>>();

  // Activation under a fresh lease: claim first, load after, so nothing the
  // previous owner writes from now on can land, and everything it wrote is read.
  const activate = (sessionId: SessionId): Promise<LiveSession | typeof MISSING | undefined> => {
    const running = pending.get(sessionId);
    if (running) return running;
    const activation = (async () => {
      const acquired = await leases.acquire(sessionId);
      if (!acquired.acquired) return undefined;
      try {
        let claim = await store.claim!(sessionId, acquired.token);
        if (claim === undefined) {
          await leases.release(sessionId);
          leases.forgetToken(sessionId);
          return MISSING;
        }
        if (!claim.claimed && claim.fence >= acquired.token) {
          // Redis handed out a token the store has already seen (Redis lost its counter): go past it.
          const raised = await leases.raise(sessionId, claim.fence + 1);
          if (raised === undefined) return undefined;
          claim = await store.claim!(sessionId, raised);
          if (!claim?.claimed) throw new ChatError('unavailable', 'The session could not be claimed.');
        }
        // A copy left here from an earlier lease may be stale: the store is the truth now.
        registry.evict(sessionId);
        const session = await registry.find(sessionId);
        if (!session) {
          await leases.release(sessionId);
          leases.forgetToken(sessionId);
          return MISSING;
        }
        return session;
      } catch (error) {
        if (!registry.peek(sessionId)) {
          await leases.release(sessionId);
          leases.forgetToken(sessionId);
        }
        throw error;
      }
    })().finally(() => pending.delete(sessionId));
    pending.set(sessionId, activation);
    return activation;
  };

  return { activate, pending };
}
