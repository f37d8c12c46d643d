import { Conversation } from '../domain/conversation.ts';
import type { SessionDetails } from '../domain/conversationRecord.ts';
import { ChatError } from '../domain/errors.ts';
import { isSessionId } from '../domain/ids.ts';
import type { SessionId } from '../domain/ids.ts';
import type { StopReason } from '../domain/events.ts';
import { windowFor } from '../domain/conversationRules.ts';
import type { ConversationPolicy } from '../domain/conversationRules.ts';
import type { LiveSession } from './liveSession.ts';
import type { SessionDeps } from './sessionEffects.ts';
import { createActiveSessions } from './activeSessions.ts';
import type { ActiveEntry } from './activeSessions.ts';
import { drainSessions } from './drainSessions.ts';
import { createStoreHealth, reportingTo } from './storeHealth.ts';
import { createStoreWriter } from './storeWriter.ts';
import { DEFAULT_RESTART_POLICY } from './supervisorActor.ts';
import { createSessionsRoot } from './sessionsRoot.ts';
import { createSessionActivation } from './sessionActivation.ts';
import type { RestartPolicy } from './supervisorActor.ts';

import type { SessionAccess, SessionRegistry, SessionRegistryOptions } from './sessionRegistryContract.ts';

export type { CreateOptions, SessionAccess, SessionListItem, SessionRegistry, SessionRegistryOptions } from './sessionRegistryContract.ts';

/**
 * Finds sessions in O(1), activates them on demand and passivates idle ones.
 * A use only stamps the entry: re-inserting it to keep the Map in LRU order
 * was measured to make V8 rehash a large Map over and over (40× slower
 * lookups at 50,000 sessions). The sweep instead walks every entry, once per
 * sweep interval.
 */
export function createSessionRegistry(options: SessionRegistryOptions): SessionRegistry {
  const { ids, clock, logger, bus } = options;
  const health = options.health ?? createStoreHealth({ ping: () => options.store.ping(), clock, logger });
  const store = reportingTo(health, options.store);
  // Sessions that are never written (see CreateOptions.ephemeral).
  const ephemeral = new Set<SessionId>();
  const writer = createStoreWriter({
    store,
    clock,
    logger,
    flushIntervalMs: options.flushIntervalMs,
    flushStreaming: options.flushStreaming,
    stored: (sessionId) => !ephemeral.has(sessionId),
  });
  const deps: SessionDeps = { bus, store, provider: options.provider, clock, logger, writer, health };
  const budget = options.contextBudgetTokens ?? Number.POSITIVE_INFINITY;
  // Chunk numbers need reserving only where something outlives a crash.
  const policy: ConversationPolicy = {
    queueLimit: options.queueLimit ?? 8,
    contextBudgetTokens: budget,
    reserveSeqs: options.store.durable !== false,
    ...(options.countTokens ? { countTokens: options.countTokens } : {}),
  };
  // An ephemeral session outlives nothing: none of its chunk numbers is ever stored. Its
  // messages are all in memory for its one request anyway, so its window counts no tokens
  // (the provider fits the history it sends): counting prompt and reply was ~2% of a /v1 request.
  const ephemeralPolicy: ConversationPolicy = { ...policy, reserveSeqs: false, contextBudgetTokens: Number.POSITIVE_INFINITY };
  const window = windowFor(budget);
  const ttlMs = options.sessionTtlMs ?? 600_000;
  const sweepMs = options.sweepIntervalMs ?? Math.min(Math.max(Math.floor(ttlMs / 4), 10), 30_000);
  const restartPolicy: RestartPolicy = { ...DEFAULT_RESTART_POLICY, ...options.restartPolicy };
  const root = createSessionsRoot({ clock, ...(options.inspect ? { inspect: options.inspect } : {}) });
  const active = createActiveSessions({ bus, clock, logger, passivate: root.passivate, maxSessions: options.maxSessions, onPassivated: options.onPassivated, onDropped: options.onReleased });
  let sweepTimer: unknown;
  let closed = false;
  // Sessions refuse new messages once the registry closes or drains.
  const admission = {
    get accepting() {
      return !closed;
    },
  };

  const touch = (entry: ActiveEntry) => {
    entry.lastUsedAt = clock.now();
  };

  /** Makes room for one more active session of `owner`; `existing` when a stored one comes back. */
  const admit = (owner: string | undefined, access: SessionAccess | undefined, existing: boolean) => {
    if (closed) throw new ChatError('overloaded', 'The server is shutting down.');
    active.makeRoom(owner, access?.liveLimit ?? 0, existing);
  };

  const { activate, activateStored, pending: activating } = createSessionActivation({ deps, ids, root, active, admission, restartPolicy, policy, window, admit });

  const visible = (session: LiveSession, access: SessionAccess | undefined) => access?.owner === undefined || session.owner === access.owner;

  const stopEntry = (sessionId: SessionId, entry: ActiveEntry, reason: StopReason) => {
    active.drop(sessionId, entry.session);
    if (entry.session.actor.getSnapshot().status === 'active') entry.session.actor.send({ type: 'stop', reason });
  };

  const scheduleSweep = () => {
    if (closed) return;
    sweepTimer = clock.setTimeout(() => {
      registry.passivateIdle();
      scheduleSweep();
    }, sweepMs);
  };

  const registry: SessionRegistry = {
    async create(options = {}, access) {
      const owner = access?.owner;
      health.assertHealthy();
      admit(owner, access, false);
      const now = clock.now();
      const { history = [], ephemeral: unstored = false, sessionId = ids.sessionId(), ...rest } = options;
      const details: SessionDetails = owner === undefined ? rest : { ...rest, owner };
      const conversation =
        history.length === 0
          ? Conversation.start(sessionId, now, unstored ? ephemeralPolicy : policy, details)
          : Conversation.seeded(sessionId, now, unstored ? ephemeralPolicy : policy, details, history, ids.messageId);
      // An ephemeral session's rows would be written only to be deleted when its request ends.
      if (unstored) ephemeral.add(sessionId);
      else await store.create(conversation.toRecord());
      return activate(conversation, false);
    },

    async find(sessionId, access) {
      if (!isSessionId(sessionId)) return undefined;
      const entry = active.get(sessionId);
      if (entry) {
        if (!visible(entry.session, access)) return undefined;
        touch(entry);
        return entry.session;
      }
      const pending = activating(sessionId);
      if (pending) {
        const session = await pending;
        if (session) return visible(session, access) ? session : undefined;
        // That activation was on someone else's behalf and may have found the session not theirs: look again, once.
        return (activating(sessionId) ?? activateStored(sessionId, access)).then((again) => (again && visible(again, access) ? again : undefined));
      }
      const session = await activateStored(sessionId, access);
      return session && visible(session, access) ? session : undefined;
    },

    async remove(sessionId, access) {
      if (!isSessionId(sessionId)) return false;
      if (ephemeral.has(sessionId)) {
        // Never stored: nothing to delete there, whatever the store's health; still only its owner's to end.
        const entry = active.get(sessionId);
        if (entry && !visible(entry.session, access)) return false;
        ephemeral.delete(sessionId);
        if (entry) stopEntry(sessionId, entry, 'deleted');
        writer.forget(sessionId);
        bus.forget(sessionId);
        return entry !== undefined;
      }
      health.assertHealthy();
      // Only the owner may delete: finding it first answers "none" to anyone else.
      if (access?.owner !== undefined && !(await registry.find(sessionId, access))) return false;
      // Nothing changes here until the store has deleted it: a failure leaves the session as it was.
      const existed = await store.delete(sessionId);
      // One being activated meanwhile (loaded before the delete) is stopped with the rest.
      await activating(sessionId)?.catch(() => undefined);
      const entry = active.get(sessionId);
      if (entry) stopEntry(sessionId, entry, 'deleted');
      writer.forget(sessionId);
      if (!entry && existed) bus.publish({ type: 'session.stopped', sessionId, reason: 'deleted' });
      bus.forget(sessionId);
      return existed || entry !== undefined;
    },

    evict(sessionId, reason) {
      if (!isSessionId(sessionId)) return;
      const entry = active.get(sessionId);
      if (!entry) return;
      if (reason) {
        stopEntry(sessionId, entry, reason);
        return;
      }
      // Its unwritten changes would be refused by the fence anyway: the new owner's history wins.
      writer.forget(sessionId);
      active.passivate(sessionId, entry);
    },

    pendingWrites(sessionId) {
      return isSessionId(sessionId) && writer.pending(sessionId);
    },

    passivateIdle() {
      return active.passivateUnusedSince(clock.now() - ttlMs);
    },

    get activeCount() {
      return active.size;
    },

    liveCountOf(owner) {
      return active.countOf(owner);
    },

    async close() {
      closed = true;
      if (sweepTimer !== undefined) clock.clearTimeout(sweepTimer);
      for (const [sessionId, entry] of [...active.entries()]) stopEntry(sessionId, entry, 'shutdown');
      const unwritten = await writer.close(options.closeWriteTimeoutMs ?? 5000);
      if (unwritten > 0) logger.error({ sessions: unwritten }, 'store unreachable at shutdown: recent changes of these sessions were not written');
      if (!options.health) health.close();
      root.stop();
    },

    async listSessions(query, access) {
      health.assertHealthy();
      const page = await store.listSessions(access?.owner === undefined ? query : { ...query, owner: access.owner });
      return {
        sessions: page.sessions.map((summary) => ({
          ...summary,
          status: active.get(summary.sessionId)?.session.status() ?? (summary.stopped ? 'stopped' : 'idle'),
        })),
        nextCursor: page.nextCursor,
      };
    },

    async listMessages(sessionId, query, access) {
      return (await registry.find(sessionId, access))?.messages(query);
    },

    live() {
      return active.sessions();
    },

    peek(sessionId) {
      return isSessionId(sessionId) ? active.get(sessionId)?.session : undefined;
    },

    get draining() {
      return closed;
    },

    drain(deadlineMs) {
      closed = true;
      if (sweepTimer !== undefined) clock.clearTimeout(sweepTimer);
      const working = new Map<SessionId, LiveSession>();
      for (const [sessionId, entry] of [...active.entries()]) {
        if (entry.session.working) working.set(sessionId, entry.session);
        else stopEntry(sessionId, entry, 'shutdown');
      }
      const stop = (sessionId: SessionId) => {
        const entry = active.get(sessionId);
        if (entry) stopEntry(sessionId, entry, 'shutdown');
      };
      return drainSessions(working, { bus, clock, logger, deadlineMs, stop });
    },
  };

  scheduleSweep();
  return registry;
}
