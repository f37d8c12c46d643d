import type { Actor } from 'xstate';
import type { Accepted, Conversation, UserInput } from '../domain/conversation.ts';
import type { SessionMetadata } from '../domain/conversationRecord.ts';
import { ChatError, isChatError } from '../domain/errors.ts';
import type { StopReason } from '../domain/events.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { IdGenerator, MessageId, SessionId } from '../domain/ids.ts';
import { publicMessage } from '../domain/message.ts';
import type { Message, PublicMessage } from '../domain/message.ts';
import type { MessagePageQuery } from '../domain/ports.ts';
import { decodeMessageCursor, encodeMessageCursor } from '../infra/pageCursor.ts';
import { ReplyRequest } from './generationTask.ts';
import { dropHeadStart, HeadStart, holdHeadStart } from './headStart.ts';
import type { SessionDeps } from './sessionEffects.ts';
import type { SupervisorLogic } from './supervisorActor.ts';

/** Shared by a registry's sessions: false once the server drains for shutdown. */
export interface Admission {
  readonly accepting: boolean;
}

export type SessionStatus = 'idle' | 'generating' | 'restarting' | 'stopped';

export interface SessionView {
  sessionId: SessionId;
  status: SessionStatus;
  createdAt: number;
  lastActiveAt: number;
  lastSeq: number;
  /** The latest page of history, oldest first. */
  messages: PublicMessage[];
  /** For the page before it: `GET …/messages?order=desc&cursor=…`; null when there is none. */
  olderCursor: string | null;
  title?: string;
  metadata?: SessionMetadata;
  model?: string;
}

const REFUSED_WHEN_STOPPED: Record<StopReason, () => ChatError> = {
  deleted: () => new ChatError('session_not_found'),
  shutdown: () => new ChatError('overloaded', 'The server is shutting down; try again shortly.'),
  restart_limit: () => new ChatError('session_stopped'),
  crashed: () => new ChatError('session_stopped'),
  // Many nodes: this node let the session go; the next request activates it wherever it lands.
  unavailable: () => new ChatError('unavailable'),
};

/**
 * The face of one active session: what transports call. A class rather than
 * a closure bag because 100,000 of them share one prototype.
 */
export class LiveSession {
  readonly sessionId: SessionId;
  readonly actor: Actor<SupervisorLogic>;
  readonly #conversation: Conversation;
  readonly #deps: SessionDeps;
  readonly #ids: IdGenerator;
  readonly #admission: Admission | undefined;

  constructor(actor: Actor<SupervisorLogic>, conversation: Conversation, deps: SessionDeps, ids: IdGenerator, admission?: Admission) {
    this.sessionId = conversation.sessionId;
    this.actor = actor;
    this.#conversation = conversation;
    this.#deps = deps;
    this.#ids = ids;
    this.#admission = admission;
  }

  /**
   * Accepts a user message: resolves once it is committed to the store (the
   * memory store commits at once), and only then does it join the queue and
   * its `accepted` event go out, so an acknowledgement means stored and
   * watchers see it before any chunk of its reply. Rejects with `busy`,
   * `session_stopped`, `bad_request`, `overloaded`, or `store_unavailable` /
   * `store_rejected` when the store would not keep it: the conversation is
   * then as if the message never came.
   */
  async send(input: string | UserInput, options?: GenerationOptions): Promise<Accepted> {
    this.#refuseIfStopped();
    if (!this.#accepting()) throw new ChatError('overloaded', 'The server is shutting down; try again shortly.');
    this.#deps.health.assertHealthy();
    const conversation = this.#conversation;
    const ids = {
      user: this.#ids.messageId(),
      reply: this.#ids.messageId(),
      toolResults: typeof input === 'string' ? [] : (input.toolResults ?? []).map(() => this.#ids.messageId()),
    };
    const taken = conversation.accept(input, ids, this.#deps.clock.now(), options);
    this.#headStart(taken.user.id, ids.reply);
    try {
      try {
        await this.#deps.writer.commit(conversation, taken.inputs);
      } catch (error) {
        conversation.withdraw(taken.user.id);
        throw isChatError(error) ? error : new ChatError('store_unavailable', undefined, { cause: error });
      }
      const stillOpen = this.actor.getSnapshot().status === 'active' && this.#accepting();
      const accepted = stillOpen ? conversation.admit(taken.user.id) : undefined;
      if (!accepted) {
        // Stopped (or draining) while the message was being stored: it will never be answered.
        conversation.withdraw(taken.user.id);
        const now = this.#deps.clock.now();
        this.#deps.writer.save(conversation, taken.inputs.map((message) => ({ ...message, status: 'cancelled' as const, updatedAt: now })));
        this.#refuseIfStopped();
        throw new ChatError('overloaded', 'The server is shutting down; try again shortly.');
      }
      const toolResults = accepted.inputs.filter((message) => message.role === 'tool');
      this.#deps.bus.publish({
        type: 'message.accepted',
        sessionId: this.sessionId,
        messageId: accepted.replyId,
        userMessageId: accepted.user.id,
        text: accepted.user.role === 'user' ? accepted.user.content : '',
        position: accepted.position,
        ...(toolResults.length > 0 ? { toolResults: toolResults.map((message) => ({ messageId: message.id, toolCallId: message.toolCallId ?? '' })) } : {}),
      });
      // The reply starts in this send (its actor takes the head start) unless one is in progress.
      this.actor.send({ type: 'user.message' });
      return accepted;
    } finally {
      // Taken by its reply as it started, or never to be read: the model's request ends with this send either way.
      dropHeadStart(conversation);
    }
  }

  /** Asks the model for the reply now, while the message is stored, if that reply starts the moment it is (headStart.ts). */
  #headStart(userId: MessageId, replyId: MessageId): void {
    const conversation = this.#conversation;
    if (this.actor.getSnapshot().value !== 'dormant') return;
    const next = conversation.answeredOnceStored(userId);
    if (!next) return;
    const headStart = HeadStart.begin(replyId, this.#deps.provider, new ReplyRequest(conversation, replyId, next.prompt, next.options));
    if (headStart) holdHeadStart(conversation, headStart);
  }

  /** The API key id the session belongs to; undefined when made without one (`--auth none`). */
  get owner(): string | undefined {
    return this.#conversation.owner;
  }

  #accepting(): boolean {
    return this.#admission?.accepting !== false;
  }

  #refuseIfStopped(): void {
    const snapshot = this.actor.getSnapshot();
    if (snapshot.status === 'active') return;
    throw REFUSED_WHEN_STOPPED[snapshot.context.stopReason ?? 'restart_limit']();
  }

  /** The model this session answers with unless a message names another (absent: the default). */
  get model(): string | undefined {
    return this.#conversation.model;
  }

  /** Stops the reply in progress and drops queued messages; returns the reply ids cancelled. */
  cancel(): MessageId[] {
    const pending = this.#conversation.pendingReplyIds();
    if (pending.length > 0) this.actor.send({ type: 'cancel' });
    return pending;
  }

  status(): SessionStatus {
    const snapshot = this.actor.getSnapshot();
    if (this.#conversation.stopped || snapshot.status !== 'active') return 'stopped';
    if (snapshot.value === 'restarting') return 'restarting';
    // 'dormant' and 'running' are the supervisor's business; the conversation knows.
    return this.#conversation.generating ? 'generating' : 'idle';
  }

  /** A reply in flight, queued or about to restart: what a graceful shutdown waits for. */
  get working(): boolean {
    return this.#conversation.generating || this.#conversation.hasQueued || this.status() === 'restarting';
  }

  /** Working, or with changes not yet in the store: never passivated. */
  get busy(): boolean {
    return this.working || this.#deps.writer.pending(this.sessionId);
  }

  /** Counters only, no message copies: cheap enough to read for every session (the inspector). */
  summary(): { messageCount: number; pending: number; lastSeq: number; lastActiveAt: number } {
    return {
      messageCount: this.#conversation.messageCount,
      pending: this.#conversation.pendingReplyIds().length,
      lastSeq: this.#conversation.lastSeq,
      lastActiveAt: this.#conversation.lastActiveAt,
    };
  }

  /** What memory holds of the history (a recent window and the queue), newest versions, in order. */
  liveMessages(): Message[] {
    return this.#conversation.history();
  }

  /**
   * A page of history from the store (O(page)), with the live versions of
   * messages still changing, and the live messages not written yet that fall
   * in the page's range of places (a reply that started before a later
   * question was stored belongs between them, not after it), as watchers saw
   * them. Each message is in exactly one page.
   */
  async messages(query: MessagePageQuery): Promise<{ messages: PublicMessage[]; nextCursor: string | null } | undefined> {
    this.#deps.health.assertHealthy();
    const page = await this.#deps.store.listMessages(this.sessionId, query);
    if (!page) return undefined;
    const merged = this.#withUnwritten(page.messages, pageRange(query, page.messages, page.nextCursor));
    const { messages, nextCursor } = withinLimit(merged, query, page.nextCursor);
    return { nextCursor, messages: messages.map(publicMessage) };
  }

  /** Stored messages (their live versions where changing) plus the unwritten live ones `inRange` holds, oldest first. */
  #withUnwritten(page: readonly Message[], inRange: (order: number) => boolean): Message[] {
    // The store is current up to the last flush; the live window is current now (and small).
    const live = new Map(this.liveMessages().map((message) => [message.id, message]));
    const stored = page.map((message) => live.get(message.id) ?? message);
    const ids = new Set(stored.map((message) => message.id));
    const unwritten = [...live.values()].filter((message) => !ids.has(message.id) && inRange(message.order));
    return [...stored, ...unwritten].sort((a, b) => a.order - b.order);
  }

  /**
   * State and the latest page of history (at most `limit` stored messages,
   * plus any newer ones not written yet): a page from the store, in O(page),
   * with the live versions of messages still changing.
   */
  async view(limit = 50): Promise<SessionView> {
    this.#deps.health.assertHealthy();
    const query: MessagePageQuery = { limit, order: 'desc' };
    const page = await this.#deps.store.listMessages(this.sessionId, query);
    if (!page) throw new ChatError('session_not_found');
    const messages = this.#withUnwritten(page.messages, pageRange(query, page.messages, page.nextCursor));
    const conversation = this.#conversation;
    return {
      sessionId: this.sessionId,
      status: this.status(),
      createdAt: conversation.createdAt,
      lastActiveAt: conversation.lastActiveAt,
      lastSeq: conversation.lastSeq,
      messages: messages.map(publicMessage),
      olderCursor: page.nextCursor,
      ...(conversation.title !== undefined ? { title: conversation.title } : {}),
      ...(conversation.metadata !== undefined ? { metadata: conversation.metadata } : {}),
      ...(conversation.model !== undefined ? { model: conversation.model } : {}),
    };
  }
}

/**
 * At most `limit` of the merged messages (oldest first), in the query's
 * order: unwritten live ones can push a page past its limit (the store held
 * exactly `limit` and said there was no more), and then the page ends at its
 * last kept message and the rest start the next one.
 */
function withinLimit(merged: Message[], query: MessagePageQuery, storeCursor: string | null): { messages: Message[]; nextCursor: string | null } {
  const descending = query.order === 'desc';
  const ordered = descending ? merged.reverse() : merged;
  if (ordered.length <= query.limit) return { messages: ordered, nextCursor: storeCursor };
  const kept = ordered.slice(0, query.limit);
  return { messages: kept, nextCursor: encodeMessageCursor(kept[kept.length - 1]!.order) };
}

/**
 * The places (`order`) a page of the store covers, between its cursors: a
 * cursor is the order of the last message of the page before, exclusive; a
 * page with a next cursor ends at its own last message, one without runs to
 * the end of the history in its direction.
 */
function pageRange(query: MessagePageQuery, page: readonly Message[], nextCursor: string | null): (order: number) => boolean {
  const from = query.cursor === undefined ? undefined : decodeMessageCursor(query.cursor);
  const last = nextCursor === null ? undefined : page[page.length - 1]?.order;
  if (query.order === 'desc') return (order) => (from === undefined || order < from) && (last === undefined || order >= last);
  return (order) => (from === undefined || order > from) && (last === undefined || order <= last);
}
