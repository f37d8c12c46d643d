import type { InspectionEvent, Observer } from 'xstate';
import type { SessionDetails } from '../domain/conversationRecord.ts';
import type { IdGenerator, SessionId } from '../domain/ids.ts';
import type { StopReason } from '../domain/events.ts';
import type { PublicMessage, Turn } from '../domain/message.ts';
import type { TokenCounter } from '../domain/historyBudget.ts';
import type { MessagePageQuery, PageQuery, SessionSummary } from '../domain/ports.ts';
import type { LiveSession } from './liveSession.ts';
import type { SessionStatus } from './liveSession.ts';
import type { SessionDeps } from './sessionEffects.ts';
import type { DrainResult } from './drainSessions.ts';
import type { StoreHealth } from './storeHealth.ts';
import type { RestartPolicy } from './supervisorActor.ts';

/** What the session registry takes and offers; `createSessionRegistry` (sessionRegistry.ts) is the one implementation. */

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
  /** An inspection observer on the sessions' actor system, so it sees every session's actors (e.g. Stately's inspector); costly. */
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
