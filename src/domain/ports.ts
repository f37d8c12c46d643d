import type { KeyStore } from './apiKeys.ts';
import type { ConversationRecord, JsonValue, SessionMetadata } from './conversationRecord.ts';
import type { ChatEvent, ChunkEvent } from './events.ts';
import type { GenerationOptions } from './generationOptions.ts';
import type { MessageId, SessionId } from './ids.ts';
import type { FinishReason, Message, Turn, Usage } from './message.ts';
import type { ClaimResult } from './ownership.ts';
import type { ToolCallDelta } from './toolCalls.ts';
import type { UsageStore } from './tokenUsage.ts';

/** Time, injectable so tests run without real sleeps. Shape-compatible with XState's Clock. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
  /** A logger that adds `fields` (a request or connection id) to every line; see `withFields`. */
  child?(fields: Record<string, unknown>): Logger;
}

/**
 * A logger whose every line carries `fields`, with or without native `child`
 * support. A native child (about 2 KB with pino) is made only when a first
 * line is written, so scoping every request costs nearly nothing.
 */
export function withFields(logger: Logger, fields: Record<string, unknown>): Logger {
  return new FieldsLogger(logger, fields);
}

/**
 * `withFields`' logger: one object per request or connection, its methods
 * shared (six closures each, named by tsx as it runs them, were a measured
 * share of a `/v1` request's garbage). A native child is made only when a
 * line is written.
 */
class FieldsLogger implements Logger {
  readonly #base: Logger;
  readonly #fields: Record<string, unknown>;
  #native: Logger | undefined;

  constructor(base: Logger, fields: Record<string, unknown>) {
    this.#base = base;
    this.#fields = fields;
  }

  #write(level: 'debug' | 'info' | 'warn' | 'error', more: Record<string, unknown>, message: string): void {
    if (this.#base.child) (this.#native ??= this.#base.child(this.#fields))[level](more, message);
    else this.#base[level]({ ...this.#fields, ...more }, message);
  }

  debug(more: Record<string, unknown>, message: string): void {
    this.#write('debug', more, message);
  }

  info(more: Record<string, unknown>, message: string): void {
    this.#write('info', more, message);
  }

  warn(more: Record<string, unknown>, message: string): void {
    this.#write('warn', more, message);
  }

  error(more: Record<string, unknown>, message: string): void {
    this.#write('error', more, message);
  }

  child(more: Record<string, unknown>): Logger {
    return withFields(this.#base, { ...this.#fields, ...more });
  }
}

// ---- model provider ---------------------------------------------------------

export interface GenerationRequest {
  readonly sessionId: SessionId;
  readonly messageId: MessageId;
  /** The text of the message being answered (a user message, or a tool result). */
  readonly prompt: string;
  /** That message as the model sees it, with its content parts or tool call id (absent: a plain user text). */
  readonly promptTurn?: Turn;
  /** Earlier complete turns, oldest first (the prompt not included). */
  readonly history: readonly Message[];
  /** Per-message settings (e.g. from an OpenAI-style request); unset ones use the provider's. */
  readonly options?: GenerationOptions;
  /** The model to answer with, by its configured name: the message's, else the session's (absent: the default). */
  readonly model?: string;
}

export interface ProviderChunk {
  readonly text: string;
  /** True on the provider's final piece; a stream may also just end. */
  readonly last: boolean;
  /** On the final piece: tokens in and out (the model's count, or the tokenizer's). */
  readonly usage?: Usage;
  /** On the final piece: why the model stopped (absent: `stop`). */
  readonly finishReason?: FinishReason;
  /** Fragments of tool calls streamed with this piece. */
  readonly toolCalls?: readonly ToolCallDelta[];
  /** The name of the model answering (set by the model router on the first piece). */
  readonly model?: string;
  /** Log probabilities of this piece's tokens, when asked for (OpenAI's `logprobs.content` entries). */
  readonly logprobs?: readonly JsonValue[];
}

/**
 * A model. `stream` yields text pieces; it must stop promptly (and release
 * upstream resources) when `signal` aborts, and throw to report failure:
 * a ChatError `upstream_error` / `upstream_timeout` / `upstream_unavailable`
 * for an expected failure of the model's server (the reply fails, the session
 * goes on), anything else for a bug (the session actor is restarted).
 */
export interface ModelProvider {
  readonly name: string;
  stream(request: GenerationRequest, signal: CancelSignal): AsyncIterable<ProviderChunk>;
}

/** Called once when a reply is aborted: a function, or an object's `handleEvent` (as EventTarget takes them). */
export type AbortListener = (() => void) | { handleEvent(): void };

/**
 * What a provider reads of its reply's abort: the part of an `AbortSignal`
 * it uses, so an AbortSignal is one (tests, callers of a provider of their
 * own), and the session actor gives a lighter one (src/actors/replyAbort.ts).
 * A provider that hands the abort on to an API wanting a real AbortSignal
 * makes its own AbortController and listens here.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: AbortListener, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: AbortListener): void;
}

// ---- event bus ----------------------------------------------------------------

export type Unsubscribe = () => void;

/**
 * Carries domain events, routed by session. May be in-process or span nodes
 * (Redis), so callers assume nothing about where listeners run.
 */
export interface EventBus {
  publish(event: ChatEvent): void;
  /** Every event of one session; the cost does not grow with the number of sessions. */
  subscribe(sessionId: SessionId, listener: (event: ChatEvent) => void): Unsubscribe;
  /** Every event of every session on this node (metrics, inspection). */
  subscribeAll(listener: (event: ChatEvent) => void): Unsubscribe;
  /** Chunks after `afterSeq` still held in the session's bounded recent log, oldest first. */
  replay(sessionId: SessionId, afterSeq: number): Promise<readonly ChunkEvent[]>;
  /** Drops what the bus keeps for a session (its recent log); subscribers stay. */
  forget(sessionId: SessionId): void;
  /**
   * Resolves once events of this session published on any node reach this
   * node's subscribers (a bus spanning nodes subscribes asynchronously).
   * Absent: at once.
   */
  ready?(sessionId: SessionId): Promise<void>;
  close(): Promise<void>;
}

export interface SessionUpdate {
  readonly sessionId: SessionId;
  readonly lastSeq: number;
  /** The chunk-number high-water mark to keep (it never goes down). */
  readonly seqReserved: number;
  readonly lastActiveAt: number;
  readonly stopped: boolean;
  readonly messages: readonly Message[];
  /**
   * Chunks streamed since the last write, oldest first: the store keeps the
   * chunks of a reply until it ends, to serve resume from another node or
   * after a restart.
   */
  readonly chunks?: readonly ChunkEvent[];
  /**
   * Ids of messages whose acknowledging write failed (the sender was refused):
   * removed if that write was committed after all (a connection lost during
   * COMMIT), so a refused message does not linger in history.
   */
  readonly withdrawn?: readonly string[];
  /**
   * The writer's fencing token (many nodes): the store applies the update only
   * if no newer token has claimed the session, and rejects it with
   * FencedWriteError otherwise. Absent: no check (one node).
   */
  readonly fence?: number;
}

/** One row of the session list. */
export interface SessionSummary {
  readonly sessionId: SessionId;
  readonly createdAt: number;
  readonly lastActiveAt: number;
  readonly stopped: boolean;
  readonly messageCount: number;
  readonly title?: string;
  readonly metadata?: SessionMetadata;
  /** The first words (at most 80 characters) of the first user message, when there is one: what a list shows without a title. */
  readonly preview?: string;
  readonly model?: string;
}

export interface PageQuery {
  /** Most items in the page (the caller bounds it). */
  readonly limit: number;
  /** `nextCursor` of the previous page; opaque to callers. */
  readonly cursor?: string;
}

export interface SessionPageQuery extends PageQuery {
  /** Only the sessions of this owner (a key id); absent: every session. */
  readonly owner?: string;
}

export interface MessagePageQuery extends PageQuery {
  /** `asc`: oldest first (default); `desc`: newest first. */
  readonly order?: 'asc' | 'desc';
}

export interface SessionPage {
  readonly sessions: readonly SessionSummary[];
  /** Null on the last page. */
  readonly nextCursor: string | null;
}

export interface MessagePage {
  readonly messages: readonly Message[];
  readonly nextCursor: string | null;
}

// ---- store --------------------------------------------------------------------

/** How much of a session's history `load` brings back: the newest messages, within both bounds. */
export interface LoadWindow {
  readonly maxMessages: number;
  /** Characters of content; the newest message always comes, whatever its size. */
  readonly maxChars: number;
}

/**
 * Durable home of conversations. The live session writes through it at
 * lifecycle points (message accepted, reply started, periodic flushes of the
 * reply streaming, reply finished), never per chunk. Failures reject with
 * ChatError `store_unavailable` (the store did not answer, or failed), or
 * `store_rejected` (it refused the content: that write can never succeed);
 * a malformed cursor with `bad_request`.
 */
export interface SessionStore {
  create(record: ConversationRecord): Promise<void>;
  /**
   * The session's record, messages oldest first (by `order`). With a window,
   * only its newest messages within the window, plus every unfinished one
   * (queued, streaming) however old: what re-activation needs, bounded.
   */
  load(sessionId: SessionId, window?: LoadWindow): Promise<ConversationRecord | undefined>;
  /**
   * Upserts the given messages (by id) and the session's counters; resolves
   * once committed. Rejects with `session_not_found` when the session is not
   * (or no longer) stored: nothing was kept.
   */
  save(update: SessionUpdate): Promise<void>;
  /**
   * Deletes the session and its history; false when there was none. With
   * `owner`, only a session of that owner (another's is left, and false).
   */
  delete(sessionId: SessionId, owner?: string): Promise<boolean>;
  /** False for a store that keeps nothing past the process (memory): there is no crash to write ahead for. */
  readonly durable?: boolean;
  /** Tokens spent per key, day and model, kept in the same database; absent: the server keeps them in memory. */
  readonly usage?: UsageStore;
  /** Resolves when the store answers and can take writes; rejects otherwise (health probes, readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Sessions, newest created first (only `query.owner`'s when given). */
  listSessions(query: SessionPageQuery): Promise<SessionPage>;
  /** Up to `limit` ids of sessions with no activity since `before` (retention), oldest activity first. */
  idleSessions(before: number, limit: number): Promise<SessionId[]>;
  /** The API keys kept in the same database; absent in stores that keep none (the server then keeps keys in memory). */
  readonly keys?: KeyStore;
  /** A page of one session's messages in conversation order; undefined when there is no such session. */
  listMessages(sessionId: SessionId, query: MessagePageQuery): Promise<MessagePage | undefined>;
  /** Stored chunks with seq > afterSeq (of replies not yet finished), oldest first. */
  chunksAfter(sessionId: SessionId, afterSeq: number): Promise<readonly ChunkEvent[]>;
  /**
   * Raises the session's fencing token to `token` unless it already carries
   * this one or a newer one: from then on, writes with an older token are
   * refused. Undefined when there is no such session.
   */
  claim?(sessionId: SessionId, token: number): Promise<ClaimResult | undefined>;
}
