import type { Actor } from 'xstate';
import type { Accepted, Conversation } from '../domain/conversation.ts';
import type { SessionMetadata } from '../domain/conversationRecord.ts';
import { ChatError } from '../domain/errors.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { IdGenerator, MessageId, SessionId } from '../domain/ids.ts';
import type { Message } from '../domain/message.ts';
import { persist } from './sessionMachine.ts';
import type { SessionDeps } from './sessionMachine.ts';
import type { SupervisorMachine } from './supervisorMachine.ts';

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
  messages: Message[];
  title?: string;
  metadata?: SessionMetadata;
}

/**
 * The face of one active session: what transports call. A class rather than
 * a closure bag because 100,000 of them share one prototype.
 */
export class LiveSession {
  readonly sessionId: SessionId;
  readonly actor: Actor<SupervisorMachine>;
  readonly #conversation: Conversation;
  readonly #deps: SessionDeps;
  readonly #ids: IdGenerator;
  readonly #admission: Admission | undefined;

  constructor(actor: Actor<SupervisorMachine>, conversation: Conversation, deps: SessionDeps, ids: IdGenerator, admission?: Admission) {
    this.sessionId = conversation.sessionId;
    this.actor = actor;
    this.#conversation = conversation;
    this.#deps = deps;
    this.#ids = ids;
    this.#admission = admission;
  }

  /**
   * Accepts a user message (throws ChatError `busy`, `session_stopped` or
   * `bad_request`) and hands it to the session actor. The acceptance is
   * published before the actor can stream, so watchers see it first.
   */
  send(text: string, options?: GenerationOptions): Accepted {
    if (this.actor.getSnapshot().status !== 'active') throw new ChatError('session_stopped');
    if (this.#admission?.accepting === false) throw new ChatError('overloaded', 'The server is shutting down; try again shortly.');
    // While the store refuses writes, accepting would promise what cannot be kept.
    if (this.#deps.writer.failing) throw new ChatError('store_unavailable');
    const accepted = this.#conversation.accept(
      text,
      { user: this.#ids.messageId(), reply: this.#ids.messageId() },
      this.#deps.clock.now(),
      options,
    );
    persist(this.#conversation, this.#deps, [accepted.user]);
    this.#deps.bus.publish({
      type: 'message.accepted',
      sessionId: this.sessionId,
      messageId: accepted.replyId,
      userMessageId: accepted.user.id,
      text: accepted.user.content,
      position: accepted.position,
    });
    this.actor.send({ type: 'user.message' });
    return accepted;
  }

  /** The API key id the session belongs to; undefined when made without one (`--auth none`). */
  get owner(): string | undefined {
    return this.#conversation.owner;
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

  /** Busy sessions (and those with unwritten changes) are never passivated. */
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

  view(): SessionView {
    const record = this.#conversation.toRecord();
    return {
      sessionId: this.sessionId,
      status: this.status(),
      createdAt: record.createdAt,
      lastActiveAt: record.lastActiveAt,
      lastSeq: record.lastSeq,
      messages: [...record.messages],
      ...(record.title !== undefined ? { title: record.title } : {}),
      ...(record.metadata !== undefined ? { metadata: record.metadata } : {}),
    };
  }
}
