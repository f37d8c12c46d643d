import type { LiveSession } from '../actors/liveSession.ts';
import type { SessionAccess, SessionRegistry } from '../actors/sessionRegistry.ts';
import { ChatError } from '../domain/errors.ts';
import type { IdGenerator, SessionId } from '../domain/ids.ts';
import type { Clock } from '../domain/ports.ts';
import { MISSING } from './activation.ts';
import { runCommand } from './localCommands.ts';
import type { CommandOp, CommandRouter } from './commandRouter.ts';
import type { Leases } from './leases.ts';

export interface OwnerRoutingOptions {
  registry: SessionRegistry;
  leases: Leases;
  nodeId: string;
  ids: IdGenerator;
  clock: Clock;
  leaseMs: number;
  /** How long one routed command waits for the owner's answer before asking again. */
  commandTimeoutMs: number;
  /** Told of each routed command and how it ended (metrics). */
  onRouted: (op: CommandOp, outcome: 'local' | 'remote' | 'waited' | 'failed') => void;
  /** Lease releases under way here: a session is located only once its release is over. */
  releasing: ReadonlyMap<SessionId, Promise<void>>;
  /** Activations under way here: a session is located only once its activation is over. */
  activations: ReadonlyMap<SessionId, Promise<LiveSession | typeof MISSING | undefined>>;
  /** Activates the session here under a fresh lease (within the session cap). */
  activateHere(sessionId: SessionId): Promise<LiveSession | typeof MISSING | undefined>;
  /** True once the sessions are closing: nothing is located any more. */
  isClosed(): boolean;
  /** The router to other nodes, once attached. */
  router(): CommandRouter | undefined;
}

type Located = { local: LiveSession } | { remote: string; pttl: number } | typeof MISSING;

/** A wait on the injected clock (no abort: the callers bound it themselves). */
export const sleep = (clock: Clock, ms: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms));

/**
 * Finds where a session runs (here, on another node, or nowhere: then it is
 * activated here) and runs a command there: locally on the actor, or routed
 * to the owner, asking again while the owner moves or waiting out the lease
 * of an owner that does not answer.
 */
export function createOwnerRouting(options: OwnerRoutingOptions) {
  const { registry, leases, nodeId, ids, clock, leaseMs, commandTimeoutMs, onRouted, releasing, activations, activateHere } = options;

  const ownedHere = (sessionId: SessionId): LiveSession | undefined =>
    leases.holderOf(sessionId) !== undefined ? registry.peek(sessionId) : undefined;

  const runLocal = (session: LiveSession, op: CommandOp, args: unknown, access: SessionAccess | undefined) => runCommand(registry, session, op, args, access);

  /** Where the session runs, activating it here when nobody runs it. */
  const locate = async (sessionId: SessionId, deadline: number): Promise<Located> => {
    for (;;) {
      if (options.isClosed()) throw new ChatError('overloaded', 'The server is shutting down.');
      const pendingRelease = releasing.get(sessionId);
      if (pendingRelease) await pendingRelease;
      // Being activated here already (another request, a takeover): its outcome is this one's.
      const pendingActivation = activations.get(sessionId);
      if (pendingActivation) await pendingActivation.catch(() => undefined);
      const local = ownedHere(sessionId);
      if (local) return { local };
      const found = await leases.holder(sessionId);
      if (!found) {
        const activated = await activateHere(sessionId);
        if (activated === MISSING) return MISSING;
        if (activated) return { local: activated };
        continue; // another node won the lease: ask again who
      }
      if (found.holder.node !== nodeId) return { remote: found.holder.node, pttl: found.pttl };
      // Ours in Redis, lost here (not renewed in time) and no longer running: take it back under a
      // new token rather than wait for a lease that only this node could free.
      if (!releasing.has(sessionId) && leases.holderOf(sessionId) === undefined && !registry.peek(sessionId)) {
        const retaken = await activateHere(sessionId);
        if (retaken === MISSING) return MISSING;
        if (retaken) return { local: retaken };
        continue;
      }
      // Ours in Redis and still being released or set up here: it settles shortly.
      if (clock.now() > deadline) throw new ChatError('unavailable', 'This node still holds the session\'s lease in Redis but no longer runs it; try again shortly.', { retryAfterMs: 1000 });
      await sleep(clock, Math.min(Math.max(found.pttl, 10), 100));
    }
  };

  const route = async (sessionId: SessionId, op: CommandOp, args?: unknown, access?: SessionAccess): Promise<unknown> => {
    const deadline = clock.now() + leaseMs + 1000;
    const requestId = ids.messageId();
    let waited = false;
    for (;;) {
      const where = await locate(sessionId, deadline);
      if (where === MISSING) {
        if (op === 'remove') return false;
        throw new ChatError('session_not_found');
      }
      if ('local' in where) {
        onRouted(op, waited ? 'waited' : 'local');
        return runLocal(where.local, op, args, access);
      }
      const router = options.router();
      if (!router) throw new ChatError('unavailable');
      const outcome = await router.call(where.remote, op, sessionId, { requestId, args, ...(access ? { access } : {}) }, commandTimeoutMs);
      if (outcome.kind === 'answer') {
        onRouted(op, waited ? 'waited' : 'remote');
        return outcome.value;
      }
      if (outcome.kind === 'moved') continue;
      // Gone (nobody listens on its channel) or not answering: wait for its lease to expire, at most about one lease.
      waited = true;
      if (clock.now() > deadline) {
        onRouted(op, 'failed');
        throw new ChatError('unavailable', 'The node that runs this session does not answer; try again shortly.', { retryAfterMs: 1000 });
      }
      if (outcome.kind === 'undelivered') await sleep(clock, Math.min(Math.max(where.pttl + 5, 10), 250));
    }
  };

  const routedRemove = async (sessionId: SessionId, access: SessionAccess | undefined): Promise<boolean> => {
    try {
      return (await route(sessionId, 'remove', undefined, access)) as boolean;
    } catch (error) {
      if (error instanceof ChatError && error.code === 'session_not_found') return false;
      throw error;
    }
  };

  return { ownedHere, runLocal, locate, route, routedRemove };
}
