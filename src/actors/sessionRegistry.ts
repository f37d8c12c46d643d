import { createActor } from 'xstate';
import type { InspectionEvent, Observer } from 'xstate';
import { Conversation } from '../domain/conversation.ts';
import type { SessionDetails } from '../domain/conversationRecord.ts';
import { ChatError } from '../domain/errors.ts';
import { isSessionId } from '../domain/ids.ts';
import type { IdGenerator, SessionId } from '../domain/ids.ts';
import type { StopReason } from '../domain/events.ts';
import type { Turn } from '../domain/message.ts';
import type { MessagePage, MessagePageQuery, PageQuery, SessionSummary } from '../domain/ports.ts';
import { LiveSession } from './liveSession.ts';
import type { SessionStatus } from './liveSession.ts';
import type { SessionDeps } from './sessionMachine.ts';
import { drainSessions } from './drainSessions.ts';
import type { DrainResult } from './drainSessions.ts';
import { createStoreWriter } from './storeWriter.ts';
import { DEFAULT_RESTART_POLICY, supervisorMachine } from './supervisorMachine.ts';
import type { RestartPolicy } from './supervisorMachine.ts';

export interface SessionRegistryOptions extends Omit<SessionDeps, 'writer'> {
  ids: IdGenerator;
  /** How often a streaming reply's text is written to the store (default 500 ms). */
  flushIntervalMs?: number;
  /** Write streaming replies before they end (default true; see StoreWriterOptions). */
  flushStreaming?: boolean;
  /** How long close() waits for unwritten changes to reach the store (default 5 s). */
  closeWriteTimeoutMs?: number;
  /** Messages that may wait while a reply streams (default 8). */
  queueLimit?: number;
  /** An actor idle this long is passivated (default 10 min); its history stays in the store. */
  sessionTtlMs?: number;
  /** How often idle actors are looked for (default: a quarter of the TTL, at most 30 s). */
  sweepIntervalMs?: number;
  /** Most active sessions on this node (default unlimited); past it, `overloaded`. */
  maxSessions?: number;
  restartPolicy?: Partial<RestartPolicy>;
  /** Told how many idle actors a sweep passivated (metrics). */
  onPassivated?: (count: number) => void;
  /** An inspection observer given to every session's actor system (e.g. Stately's inspector); costly. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Told whenever a session leaves this node's registry (passivated, stopped, deleted, evicted): its lease may go. */
  onReleased?: (sessionId: SessionId) => void;
}

/** A session in the list: what the store keeps, with its live status on this node. */
export interface SessionListItem extends SessionSummary {
  /** Live status when active on this node; else `stopped` or `idle` (passivated, re-activated on use). */
  readonly status: SessionStatus;
}

export interface SessionRegistry {
  /** Creates and activates a new session, optionally starting from earlier turns (stored first: throws `store_unavailable` when the store fails). */
  create(options?: SessionDetails & { history?: readonly Turn[]; sessionId?: SessionId }): Promise<LiveSession>;
  /** Sessions from the store, newest first. */
  listSessions(query: PageQuery): Promise<{ sessions: SessionListItem[]; nextCursor: string | null }>;
  /** A page of a session's history from the store, with live versions of messages still changing; undefined if none. */
  listMessages(sessionId: string, query: MessagePageQuery): Promise<MessagePage | undefined>;
  /** The session with this id, re-activated from the store if needed; undefined if none. */
  find(sessionId: string): Promise<LiveSession | undefined>;
  /** Deletes a session everywhere; its watchers are told. False when there was none. */
  remove(sessionId: string): Promise<boolean>;
  /** Passivates actors idle past the TTL now; returns how many. */
  passivateIdle(): number;
  /**
   * Takes a session off this node: with a reason, as a stop (its watchers are
   * told, a reply in flight ends as the reason says); without one, quietly, as
   * a passivation (another node has taken it over and speaks for it now).
   */
  evict(sessionId: string, reason?: StopReason): void;
  /** True while some change of this session is not yet in the store. */
  pendingWrites(sessionId: string): boolean;
  /** Number of active (not passivated) sessions. */
  readonly activeCount: number;
  /** Stops every actor (reason `shutdown`) and the sweeper. */
  close(): Promise<void>;
  /** The active sessions in activation order, oldest first (a use only stamps an entry, it never moves it); neither activates nor touches them. */
  live(): IterableIterator<LiveSession>;
  /** The active session with this id, or undefined; neither activates nor touches it. */
  peek(sessionId: string): LiveSession | undefined;
  /**
   * Graceful stop: takes no new sessions or messages, stops each session as
   * soon as it has no reply in flight or queued, and at the deadline stops the
   * rest (their replies end `interrupted`). Resolves when all have stopped.
   */
  drain(deadlineMs: number): Promise<DrainResult>;
  /** True once draining or closed. */
  readonly draining: boolean;
}

interface Entry {
  session: LiveSession;
  lastUsedAt: number;
}

/**
 * Finds sessions in O(1), activates them on demand and passivates idle ones.
 * A use only stamps the entry: re-inserting it to keep the Map in LRU order
 * was measured to make V8 rehash a large Map over and over (40× slower
 * lookups at 50,000 sessions). The sweep instead walks every entry, once per
 * sweep interval.
 */
export function createSessionRegistry(options: SessionRegistryOptions): SessionRegistry {
  const { ids, clock, logger, bus, store } = options;
  const writer = createStoreWriter({ store, clock, logger, flushIntervalMs: options.flushIntervalMs, flushStreaming: options.flushStreaming });
  const deps: SessionDeps = { bus, store, provider: options.provider, clock, logger, writer };
  const queueLimit = options.queueLimit ?? 8;
  const ttlMs = options.sessionTtlMs ?? 600_000;
  const sweepMs = options.sweepIntervalMs ?? Math.min(Math.max(Math.floor(ttlMs / 4), 10), 30_000);
  const maxSessions = options.maxSessions ?? Number.POSITIVE_INFINITY;
  const policy: RestartPolicy = { ...DEFAULT_RESTART_POLICY, ...options.restartPolicy };
  const entries = new Map<SessionId, Entry>();
  const activating = new Map<SessionId, Promise<LiveSession | undefined>>();
  let sweepTimer: unknown;
  let closed = false;
  // Sessions refuse new messages once the registry closes or drains.
  const admission = {
    get accepting() {
      return !closed;
    },
  };

  const touch = (entry: Entry) => {
    entry.lastUsedAt = clock.now();
  };

  const activate = (conversation: Conversation, resumed: boolean): LiveSession => {
    const sessionId = conversation.sessionId;
    const actor = createActor(supervisorMachine, {
      input: { conversation, deps, policy },
      clock,
      ...(options.inspect ? { inspect: options.inspect } : {}),
    });
    const session = new LiveSession(actor, conversation, deps, ids, admission);
    const forgetIfCurrent = () => {
      if (entries.get(sessionId)?.session !== session) return;
      entries.delete(sessionId);
      options.onReleased?.(sessionId);
    };
    actor.subscribe({
      complete: forgetIfCurrent,
      // Only a bug in the supervisor itself lands here; without this observer
      // XState would rethrow it and take the whole process down.
      error: (error: unknown) => {
        logger.error({ sessionId, err: String(error) }, 'supervisor failed');
        forgetIfCurrent();
        bus.publish({ type: 'session.stopped', sessionId, reason: 'crashed' });
      },
    });
    entries.set(sessionId, { session, lastUsedAt: clock.now() });
    // What restoring changed (an interrupted reply, cancelled waiting messages) is written back once.
    const recovered = resumed ? conversation.takeRecovered() : [];
    if (recovered.length > 0) {
      // Chunks this node may still hold from before the sequence jump would confuse resume.
      bus.forget(sessionId);
      writer.save(conversation, recovered);
    }
    actor.start();
    bus.publish({ type: 'session.started', sessionId, resumed });
    // Watchers still attached (on any node) learn that the reply they were following will not go on.
    for (const message of recovered) {
      if (message.role === 'assistant' && message.status === 'interrupted') bus.publish({ type: 'message.interrupted', sessionId, messageId: message.id });
    }
    return session;
  };

  const admit = () => {
    if (closed) throw new ChatError('overloaded', 'The server is shutting down.');
    if (entries.size >= maxSessions) throw new ChatError('overloaded');
  };

  const stopEntry = (sessionId: SessionId, entry: Entry, reason: StopReason) => {
    entries.delete(sessionId);
    if (entry.session.actor.getSnapshot().status === 'active') entry.session.actor.send({ type: 'stop', reason });
    options.onReleased?.(sessionId);
  };

  const scheduleSweep = () => {
    if (closed) return;
    sweepTimer = clock.setTimeout(() => {
      registry.passivateIdle();
      scheduleSweep();
    }, sweepMs);
  };

  const registry: SessionRegistry = {
    async create(options = {}) {
      admit();
      const now = clock.now();
      const { history = [], sessionId = ids.sessionId(), ...details } = options;
      const conversation =
        history.length === 0
          ? Conversation.start(sessionId, now, queueLimit, details)
          : Conversation.seeded(sessionId, now, queueLimit, details, history, ids.messageId);
      await store.create(conversation.toRecord());
      return activate(conversation, false);
    },

    async find(sessionId) {
      if (!isSessionId(sessionId)) return undefined;
      const entry = entries.get(sessionId);
      if (entry) {
        touch(entry);
        return entry.session;
      }
      const pending = activating.get(sessionId);
      if (pending) return pending;
      const activation = (async () => {
        try {
          const record = await store.load(sessionId);
          if (!record) return undefined;
          const again = entries.get(sessionId);
          if (again) return again.session;
          admit();
          return activate(Conversation.restore(record, queueLimit), true);
        } finally {
          activating.delete(sessionId);
        }
      })();
      activating.set(sessionId, activation);
      return activation;
    },

    async remove(sessionId) {
      if (!isSessionId(sessionId)) return false;
      const entry = entries.get(sessionId);
      if (entry) stopEntry(sessionId, entry, 'deleted');
      writer.forget(sessionId);
      const existed = await store.delete(sessionId);
      if (!entry && existed) bus.publish({ type: 'session.stopped', sessionId, reason: 'deleted' });
      bus.forget(sessionId);
      return existed || entry !== undefined;
    },

    passivateIdle() {
      const cutoff = clock.now() - ttlMs;
      const stale: [SessionId, Entry][] = [];
      for (const [sessionId, entry] of entries) {
        if (entry.lastUsedAt <= cutoff) stale.push([sessionId, entry]);
      }
      let passivated = 0;
      for (const [sessionId, entry] of stale) {
        if (entry.session.busy) {
          touch(entry);
          continue;
        }
        // The store is current at every lifecycle point, so nothing is written here.
        entries.delete(sessionId);
        entry.session.actor.stop();
        bus.forget(sessionId);
        options.onReleased?.(sessionId);
        passivated += 1;
      }
      if (passivated > 0) {
        logger.debug({ passivated, active: entries.size }, 'passivated idle sessions');
        options.onPassivated?.(passivated);
      }
      return passivated;
    },

    evict(sessionId, reason) {
      if (!isSessionId(sessionId)) return;
      const entry = entries.get(sessionId);
      if (!entry) return;
      if (reason) {
        stopEntry(sessionId, entry, reason);
        return;
      }
      entries.delete(sessionId);
      entry.session.actor.stop();
      bus.forget(sessionId);
      // Its unwritten changes would be refused by the fence anyway: the new owner's history wins.
      writer.forget(sessionId);
      options.onReleased?.(sessionId);
    },

    pendingWrites(sessionId) {
      return isSessionId(sessionId) && writer.pending(sessionId);
    },

    get activeCount() {
      return entries.size;
    },

    async close() {
      closed = true;
      if (sweepTimer !== undefined) clock.clearTimeout(sweepTimer);
      for (const [sessionId, entry] of [...entries]) stopEntry(sessionId, entry, 'shutdown');
      const unwritten = await writer.close(options.closeWriteTimeoutMs ?? 5000);
      if (unwritten > 0) logger.error({ sessions: unwritten }, 'store unreachable at shutdown: recent changes of these sessions were not written');
    },

    async listSessions(query) {
      const page = await store.listSessions(query);
      return {
        sessions: page.sessions.map((summary) => ({
          ...summary,
          status: entries.get(summary.sessionId)?.session.status() ?? (summary.stopped ? 'stopped' : 'idle'),
        })),
        nextCursor: page.nextCursor,
      };
    },

    async listMessages(sessionId, query) {
      const session = await registry.find(sessionId);
      if (!session) return undefined;
      const page = await store.listMessages(session.sessionId, query);
      if (!page) return undefined;
      // The store is current up to the last flush; the live conversation is current now.
      const live = new Map(session.view().messages.map((message) => [message.id, message]));
      return { ...page, messages: page.messages.map((message) => live.get(message.id) ?? message) };
    },

    *live() {
      for (const entry of entries.values()) yield entry.session;
    },

    peek(sessionId) {
      return isSessionId(sessionId) ? entries.get(sessionId)?.session : undefined;
    },

    get draining() {
      return closed;
    },

    drain(deadlineMs) {
      closed = true;
      if (sweepTimer !== undefined) clock.clearTimeout(sweepTimer);
      const working = new Map<SessionId, LiveSession>();
      for (const [sessionId, entry] of [...entries]) {
        if (entry.session.working) working.set(sessionId, entry.session);
        else stopEntry(sessionId, entry, 'shutdown');
      }
      const stop = (sessionId: SessionId) => {
        const entry = entries.get(sessionId);
        if (entry) stopEntry(sessionId, entry, 'shutdown');
      };
      return drainSessions(working, { bus, clock, logger, deadlineMs, stop });
    },
  };

  scheduleSweep();
  return registry;
}
