import type { SessionAccess, SessionRegistry } from '../actors/sessionRegistry.ts';
import type { Sessions } from '../actors/sessions.ts';
import { ChatError } from '../domain/errors.ts';
import type { ChatEvent } from '../domain/events.ts';
import { isSessionId } from '../domain/ids.ts';
import type { IdGenerator, SessionId } from '../domain/ids.ts';
import type { Clock, Logger, SessionStore } from '../domain/ports.ts';
import type { PublicMessage } from '../domain/message.ts';
import type { RedisBus } from '../infra/redisBus.ts';
import { MOVED } from './commandRouter.ts';
import { createActivator, MISSING } from './activation.ts';
import { createOwnerRouting, sleep } from './ownerRouting.ts';
import { RemoteSession } from './remoteSession.ts';
import type { CommandOp, CommandRequest, CommandRouter } from './commandRouter.ts';
import type { Leases } from './leases.ts';
import type { NodeWatch } from './nodeWatch.ts';

export interface ClusterSessionsOptions {
  registry: SessionRegistry;
  store: SessionStore;
  bus: RedisBus;
  leases: Leases;
  nodeWatch: NodeWatch;
  nodeId: string;
  ids: IdGenerator;
  clock: Clock;
  logger: Logger;
  leaseMs: number;
  /** How long one routed command waits for the owner's answer before asking again (default 1 s). */
  commandTimeoutMs?: number;
  /** Most live sessions across the cluster (from the nodes' heartbeats, so a few over is possible while they race); absent: no cap. */
  maxSessions?: number;
  /** Told of each routed command and how it ended (metrics). */
  onRouted?: (op: CommandOp, outcome: 'local' | 'remote' | 'waited' | 'failed') => void;
}

const ENDS_WORK: ReadonlySet<ChatEvent['type']> = new Set(['message.completed', 'message.cancelled', 'message.failed', 'message.interrupted', 'session.stopped']);

export interface ClusterSessions extends Sessions {
  /** Runs `op` on the session's owner (activating it here if nobody owns it); the owner's answer. */
  route(sessionId: SessionId, op: CommandOp, args?: unknown, access?: SessionAccess): Promise<unknown>;
  /** Serves a command routed to this node. */
  serve(request: CommandRequest): Promise<unknown>;
  /** The registry's hook: a session left this node; its lease goes once its writes have landed. */
  released(sessionId: SessionId): void;
  /** Leases this node lost: stop those sessions here. */
  lost(sessionIds: readonly SessionId[], reason: 'moved' | 'unavailable'): void;
  /** The store refused a write of this session (a newer owner): drop it here. */
  fenced(sessionId: SessionId): void;
  /** A dead node's working sessions: activate them here (their replies end `interrupted` for every watcher). */
  adopt(sessionIds: readonly SessionId[]): Promise<void>;
  attachRouter(router: CommandRouter): void;
  close(): void;
}

/**
 * Sessions across nodes: exactly one node runs a session's actor, the holder
 * of its lease. A transport on any node finds a session here; when another
 * node owns it, every command (message, cancel, view, history, delete) is
 * routed to the owner and answered with the owner's answer. When nobody owns
 * it, this node takes the lease, claims the session in the store with the
 * lease's token (so the previous owner can no longer write) and only then
 * loads it. A command for a session whose owner died waits, at most about
 * one lease, for the lease to expire, then activates it here.
 */
export function createClusterSessions(options: ClusterSessionsOptions): ClusterSessions {
  const { registry, store, bus, leases, nodeWatch, nodeId, ids, clock, logger, leaseMs } = options;
  const commandTimeoutMs = options.commandTimeoutMs ?? Math.min(1000, leaseMs);
  const onRouted = options.onRouted ?? (() => {});
  const releasing = new Map<SessionId, Promise<void>>();
  const activator = createActivator({ registry, store, leases });
  const activations = activator.pending;
  /** Recent routed commands by request id: a retry after a lost answer gets the first answer, not a second run. */
  const served = new Map<string, Promise<unknown>>();
  let router: CommandRouter | undefined;
  let closed = false;

  // The cap counts what every node last reported plus this node's own now.
  const admitSession = () => {
    const max = options.maxSessions;
    if (max !== undefined && nodeWatch.othersSessions + registry.activeCount >= max) {
      throw new ChatError('overloaded', 'The cluster is at its session limit; try again later.', { retryAfterMs: 1000 });
    }
  };

  const release = (sessionId: SessionId) => {
    nodeWatch.markWorking(sessionId, false);
    // An activation here evicts a stale copy first: the fresh lease it just took stays.
    if (activations.has(sessionId) || releasing.has(sessionId) || leases.tokenOf(sessionId) === undefined) return;
    const done = (async () => {
      // Its last writes carry this lease's token; another node may load the session only after they land.
      const until = clock.now() + 10_000;
      while (registry.pendingWrites(sessionId) && clock.now() < until) await sleep(clock, 20);
      await bus.disowned(sessionId);
      if (!registry.peek(sessionId)) await leases.release(sessionId);
      leases.forgetToken(sessionId);
    })()
      .catch((error: unknown) => logger.warn({ err: String(error) }, 'lease release failed'))
      .finally(() => releasing.delete(sessionId));
    releasing.set(sessionId, done);
  };

  const activateHere = (sessionId: SessionId) => {
    admitSession();
    return activator.activate(sessionId);
  };

  const { ownedHere, runLocal, locate, route, routedRemove } = createOwnerRouting({
    registry, leases, nodeId, ids, clock, leaseMs, commandTimeoutMs, onRouted, releasing, activations, activateHere,
    isClosed: () => closed,
    router: () => router,
  });

  const cluster: ClusterSessions = {
    route,

    async create(details = {}, access) {
      if (closed) throw new ChatError('overloaded', 'The server is shutting down.');
      admitSession();
      const sessionId = ids.sessionId();
      const acquired = await leases.acquire(sessionId);
      if (!acquired.acquired) throw new ChatError('internal_error', 'A new session id was already taken.');
      try {
        return await registry.create({ ...details, sessionId }, access);
      } catch (error) {
        await leases.release(sessionId);
        leases.forgetToken(sessionId);
        throw error;
      }
    },

    async find(sessionId, access) {
      if (!isSessionId(sessionId)) return undefined;
      const local = ownedHere(sessionId);
      if (local) return (await registry.find(sessionId, access)) ?? undefined;
      const where = await locate(sessionId, clock.now() + leaseMs + 1000);
      if (where === MISSING) return undefined;
      if ('local' in where) return (await registry.find(sessionId, access)) ?? undefined;
      // The owner checks whose it is: another key's session is "not found" from every node.
      try {
        await route(sessionId, 'activate', undefined, access);
      } catch (error) {
        if (error instanceof ChatError && error.code === 'session_not_found') return undefined;
        throw error;
      }
      return new RemoteSession(sessionId, route, access);
    },

    async remove(sessionId, access) {
      if (!isSessionId(sessionId)) return false;
      // Owned here, or Redis out of reach (the owner could not be told): the
      // registry's own store-first delete, nothing overlapped.
      if (ownedHere(sessionId) || !leases.healthy) return await routedRemove(sessionId, access);
      // Owned elsewhere (or nowhere): the store delete goes out now, alongside
      // finding the owner and asking it, instead of after that trip. The
      // owner's own store-first delete then waits on this one's row lock and
      // finds nothing, so it still stops the session only once the rows are
      // gone, and the answer (204) still waits for both. This one failing
      // changes nothing: the owner's delete decides. Left: when the rows went
      // but the owner cannot be reached (Redis lost meanwhile), the answer is
      // `unavailable` and the session is gone anyway (its owner stops it as
      // Redis goes; a retry answers 404).
      const early = store.delete(sessionId, access?.owner).catch(() => false);
      const [existed, removed] = await Promise.all([early, routedRemove(sessionId, access)]);
      return existed || removed;
    },

    listSessions: (query, access) => registry.listSessions(query, access),

    async listMessages(sessionId, query, access): Promise<{ messages: PublicMessage[]; nextCursor: string | null } | undefined> {
      if (!isSessionId(sessionId)) return undefined;
      try {
        return ((await route(sessionId, 'messages', query, access)) as { messages: PublicMessage[]; nextCursor: string | null } | null) ?? undefined;
      } catch (error) {
        if (error instanceof ChatError && error.code === 'session_not_found') return undefined;
        throw error;
      }
    },

    async serve(request) {
      const { requestId, args, access } = (request.args ?? {}) as { requestId?: string; args?: unknown; access?: SessionAccess };
      const key = `${request.from}:${requestId ?? request.id}`;
      const earlier = served.get(key);
      if (earlier) return earlier;
      const session = ownedHere(request.sessionId);
      if (!session) return MOVED;
      const running = runLocal(session, request.op, args, access);
      served.set(key, running);
      if (served.size > 10_000) served.delete(served.keys().next().value!);
      clock.setTimeout(() => served.delete(key), 30_000);
      return running;
    },

    released: release,

    lost(sessionIds, reason) {
      for (const sessionId of sessionIds) {
        // `moved`: the new owner speaks for it; `unavailable`: this node's watchers are told (reconnect, resume).
        registry.evict(sessionId, reason === 'moved' ? undefined : 'unavailable');
        release(sessionId);
      }
    },

    fenced(sessionId) {
      if (!registry.peek(sessionId)) return;
      logger.warn({}, 'store refused a write: another node owns this session now; dropping it here');
      void leases.release(sessionId);
      cluster.lost([sessionId], 'moved');
    },

    async adopt(sessionIds) {
      for (let index = 0; index < sessionIds.length; index += 100) {
        const results = await Promise.allSettled(sessionIds.slice(index, index + 100).map((sessionId) => route(sessionId, 'activate')));
        for (const result of results) if (result.status === 'rejected') logger.warn({ err: String(result.reason) }, 'taking over a session failed');
      }
    },

    attachRouter(attached) {
      router = attached;
    },

    close() {
      closed = true;
      unsubscribe();
    },
  };

  // The node's working set in Redis follows this node's own events (two commands per reply).
  const unsubscribe = bus.subscribeAll((event) => {
    if (event.type === 'message.accepted') nodeWatch.markWorking(event.sessionId, true);
    else if (ENDS_WORK.has(event.type)) {
      queueMicrotask(() => {
        if (!registry.peek(event.sessionId)?.working) nodeWatch.markWorking(event.sessionId, false);
      });
    }
  });

  return cluster;
}
