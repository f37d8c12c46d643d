import { createActor } from 'xstate';
import type { InspectionEvent, Observer } from 'xstate';
import { Conversation } from '../domain/conversation.ts';
import type { SessionDetails } from '../domain/conversationRecord.ts';
import { ChatError } from '../domain/errors.ts';
import { isSessionId } from '../domain/ids.ts';
import type { IdGenerator, SessionId } from '../domain/ids.ts';
import type { StopReason } from '../domain/events.ts';
import type { PublicMessage, Turn } from '../domain/message.ts';
import { windowFor } from '../domain/conversationRules.ts';
import type { TokenCounter } from '../domain/historyBudget.ts';
import type { ConversationPolicy } from '../domain/conversationRules.ts';
import type { MessagePageQuery, PageQuery, SessionSummary } from '../domain/ports.ts';
import { LiveSession } from './liveSession.ts';
import type { SessionStatus } from './liveSession.ts';
import type { SessionDeps } from './sessionMachine.ts';
import { createActiveSessions } from './activeSessions.ts';
import type { ActiveEntry } from './activeSessions.ts';
import { drainSessions } from './drainSessions.ts';
import type { DrainResult } from './drainSessions.ts';
import { createStoreHealth, reportingTo } from './storeHealth.ts';
import type { StoreHealth } from './storeHealth.ts';
import { createStoreWriter } from './storeWriter.ts';
import { DEFAULT_RESTART_POLICY, supervisorMachine } from './supervisorMachine.ts';
import type { RestartPolicy } from './supervisorMachine.ts';

export interface SessionRegistryOptions extends Omit<SessionDeps, 'writer' | 'health'> {
  ids: IdGenerator;
  /** The store's health (default: one made here, probing `store.ping`, closed with the registry). */
  health?: StoreHealth;
  /**
   * Estimated tokens of earlier turns a request may carry (the model's history
   * budget): a session holds that much of its history in memory, the rest
   * stays in the store. Default: no limit.
   */
  contextBudgetTokens?: number;
  /** Counts those tokens (the model's tokenizer). */
  countTokens?: TokenCounter;
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
  /** Told whenever a session leaves this node's registry (passivated, stopped, deleted, evicted): its lease may go. */
  onReleased?: (sessionId: SessionId) => void;
  /** An inspection observer given to every session's actor system (e.g. Stately's inspector); costly. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

/**
 * On whose behalf a call is made. `owner` set: only that owner's sessions
 * exist (anyone else's answer exactly as a missing one); absent: every
 * session (`--auth none`, the inspector).
 */
export interface SessionAccess {
  readonly owner?: string;
  /**
   * Most sessions of `owner` active at once on this node (0 or absent: no
   * limit). Past it, the owner's least recently used idle session is
   * passivated; a new session is refused (`rate_limited`) only when none is
   * idle, and an existing one is always re-activated for its owner.
   */
  readonly liveLimit?: number;
}

/** A session in the list: what the store keeps, with its live status on this node. */
export interface SessionListItem extends SessionSummary {
  /** Live status when active on this node; else `stopped` or `idle` (passivated, re-activated on use). */
  readonly status: SessionStatus;
}

export interface CreateOptions extends Omit<SessionDetails, 'owner'> {
  /** Earlier turns the session starts from. */
  history?: readonly Turn[];
  /** The new session's id (many nodes take its lease before it exists); default a fresh one. */
  sessionId?: SessionId;
  /**
   * Never stored: no session row, no message rows (an ephemeral `/v1`
   * request, removed when it ends, that nobody else can name). Its events
   * and its usage still go on the bus (metrics count them).
   */
  ephemeral?: boolean;
}

export interface SessionRegistry {
  /**
   * Creates and activates a new session (owned by `access.owner`), optionally
   * starting from earlier turns (stored first unless ephemeral: throws
   * `store_unavailable` when the store fails). At `--max-sessions` idle
   * sessions are passivated to make room; `overloaded` only when none is idle.
   */
  create(options?: CreateOptions, access?: SessionAccess): Promise<LiveSession>;
  /** Sessions from the store, newest first (only the owner's when `access.owner` is set). */
  listSessions(query: PageQuery, access?: SessionAccess): Promise<{ sessions: SessionListItem[]; nextCursor: string | null }>;
  /** A page of a session's history from the store, with live versions of messages still changing; undefined if none (or not the owner's). */
  listMessages(sessionId: string, query: MessagePageQuery, access?: SessionAccess): Promise<{ messages: PublicMessage[]; nextCursor: string | null } | undefined>;
  /** The session with this id, re-activated from the store if needed; undefined if none, or another owner's. */
  find(sessionId: string, access?: SessionAccess): Promise<LiveSession | undefined>;
  /**
   * Deletes a session everywhere; its watchers are told. False when there was
   * none (or it is another owner's). The store goes first: when it fails, the
   * session is left as it was.
   */
  remove(sessionId: string, access?: SessionAccess): Promise<boolean>;
  /** Active sessions of one owner on this node. */
  liveCountOf(owner: string): number;
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
  const active = createActiveSessions({ bus, clock, logger, maxSessions: options.maxSessions, onPassivated: options.onPassivated, onDropped: options.onReleased });
  const activating = new Map<SessionId, Promise<LiveSession | undefined>>();
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

  const activate = (conversation: Conversation, resumed: boolean): LiveSession => {
    const sessionId = conversation.sessionId;
    const actor = createActor(supervisorMachine, {
      input: { conversation, deps, policy: restartPolicy },
      clock,
      ...(options.inspect ? { inspect: options.inspect } : {}),
    });
    const session = new LiveSession(actor, conversation, deps, ids, admission);
    // A session stopped for any reason leaves nothing behind: its entry, and its replay log on this node.
    const forgetIfCurrent = () => {
      active.drop(sessionId, session);
      if (!active.get(sessionId) && !activating.has(sessionId)) bus.forget(sessionId);
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
    active.add(sessionId, session);
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

  /** Makes room for one more active session of `owner`; `existing` when a stored one comes back. */
  const admit = (owner: string | undefined, access: SessionAccess | undefined, existing: boolean) => {
    if (closed) throw new ChatError('overloaded', 'The server is shutting down.');
    active.makeRoom(owner, access?.liveLimit ?? 0, existing);
  };

  /** Loads a stored session and activates it, once however many ask at the same time. */
  const activateStored = (sessionId: SessionId, access: SessionAccess | undefined): Promise<LiveSession | undefined> => {
    health.assertHealthy();
    const load = async () => {
      const record = await store.load(sessionId, window);
      if (!record) return undefined;
      const again = active.get(sessionId);
      if (again) return again.session;
      // Checked before activating: a stranger's guess never costs the owner a live slot.
      if (access?.owner !== undefined && record.owner !== access.owner) return undefined;
      admit(record.owner, access, true);
      return activate(Conversation.restore(record, policy), true);
    };
    // `.finally` runs after `set` below even when `load` fails at once: a
    // failed activation must never stay in the map and answer every later find.
    const activation: Promise<LiveSession | undefined> = load().finally(() => {
      if (activating.get(sessionId) === activation) activating.delete(sessionId);
    });
    activating.set(sessionId, activation);
    return activation;
  };

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
      const pending = activating.get(sessionId);
      if (pending) {
        const session = await pending;
        if (session) return visible(session, access) ? session : undefined;
        // That activation was on someone else's behalf and may have found the session not theirs: look again, once.
        return (activating.get(sessionId) ?? activateStored(sessionId, access)).then((again) => (again && visible(again, access) ? again : undefined));
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
      await activating.get(sessionId)?.catch(() => undefined);
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
