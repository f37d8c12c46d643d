import { ChatError } from './errors.ts';
import type { ErrorCode } from './errors.ts';
import type { GenerationOptions } from './generationOptions.ts';
import type { MessageId, SessionId } from './ids.ts';
import { copyMessage } from './message.ts';
import type { Message, Turn, Usage } from './message.ts';
import type { ConversationRecord, SessionDetails, SessionMetadata } from './conversationRecord.ts';

export type FinalReplyStatus = 'complete' | 'cancelled' | 'failed' | 'interrupted';

/**
 * After an unclean stop the store holds the chunk sequence as of its last
 * flush, but clients may have seen later chunks. The sequence jumps by more
 * than one flush interval can stream, so no `seq` a client saw is reused.
 */
export const SEQ_GAP_AFTER_CRASH = 1_000_000;

export interface Accepted {
  readonly user: Message;
  /** The id the reply will stream under (chunk frames carry it). */
  readonly replyId: MessageId;
  /** 0 when generation starts at once, else the place in the queue. */
  readonly position: number;
}

export interface ChunkRecord {
  readonly messageId: MessageId;
  readonly seq: number;
}

interface Pending {
  readonly user: Message;
  readonly replyId: MessageId;
  readonly options?: GenerationOptions;
}

/** The reply being generated, the message it answers and that message's settings. */
export interface InProgress {
  readonly reply: Message;
  readonly prompt: Message;
  readonly options?: GenerationOptions;
}

/**
 * The conversation of one session and its rules: the bounded queue of user
 * messages, the one reply in progress, the per-session chunk sequence.
 *
 * It is deliberately a mutable entity owned by the session's supervisor and
 * lent to the session actor: chunks append text here without an XState
 * transition each (see xstate-notes: per-event cost), and the history
 * outlives a crashed session actor because the supervisor still holds it.
 */
export class Conversation {
  readonly sessionId: SessionId;
  readonly createdAt: number;
  readonly queueLimit: number;
  #messages: Message[];
  #queue: Pending[] = [];
  #reply: Message | undefined;
  #prompt: Message | undefined;
  #options: GenerationOptions | undefined;
  #lastSeq: number;
  #lastActiveAt: number;
  #stopped: boolean;
  #details: SessionDetails;
  #recovered: Message[] | undefined;

  private constructor(record: ConversationRecord, queueLimit: number) {
    this.sessionId = record.sessionId;
    this.createdAt = record.createdAt;
    this.queueLimit = queueLimit;
    this.#messages = record.messages.map(copyMessage);
    this.#lastSeq = record.lastSeq;
    this.#lastActiveAt = record.lastActiveAt;
    this.#stopped = record.stopped;
    this.#details = detailsOf(record);
    this.#recoverUnfinished(record.lastActiveAt);
  }

  static start(sessionId: SessionId, now: number, queueLimit: number, details: SessionDetails = {}): Conversation {
    return new Conversation(
      { sessionId, createdAt: now, lastActiveAt: now, lastSeq: 0, stopped: false, messages: [], ...detailsOf(details) },
      queueLimit,
    );
  }

  /** A new conversation that starts from earlier turns (e.g. an OpenAI-style request's messages). */
  static seeded(
    sessionId: SessionId,
    now: number,
    queueLimit: number,
    details: SessionDetails,
    turns: readonly Turn[],
    messageId: () => MessageId,
  ): Conversation {
    const messages = turns.map(
      (turn): Message => ({ id: messageId(), role: turn.role, content: turn.content, status: 'complete', createdAt: now, updatedAt: now }),
    );
    return new Conversation(
      { sessionId, createdAt: now, lastActiveAt: now, lastSeq: 0, stopped: false, messages, ...detailsOf(details) },
      queueLimit,
    );
  }

  static restore(record: ConversationRecord, queueLimit: number): Conversation {
    return new Conversation(record, queueLimit);
  }

  get title(): string | undefined {
    return this.#details.title;
  }

  get metadata(): SessionMetadata | undefined {
    return this.#details.metadata;
  }

  /** The API key id the session belongs to; undefined when made without one. */
  get owner(): string | undefined {
    return this.#details.owner;
  }

  /** Messages that restoring changed (a reply interrupted, waiting messages cancelled), once. */
  takeRecovered(): Message[] {
    const recovered = this.#recovered ?? [];
    this.#recovered = undefined;
    return recovered;
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  get generating(): boolean {
    return this.#reply !== undefined;
  }

  get hasQueued(): boolean {
    return this.#queue.length > 0;
  }

  /** Takes a user message: it starts at once when idle, else waits in the bounded queue. */
  accept(text: string, ids: { user: MessageId; reply: MessageId }, now: number, options?: GenerationOptions): Accepted {
    if (this.#stopped) throw new ChatError('session_stopped');
    if (text.trim().length === 0) throw new ChatError('bad_request', 'The message text must not be empty.');
    const waiting = this.#queue.length + (this.#reply ? 1 : 0);
    if (waiting > this.queueLimit) throw new ChatError('busy');
    const user: Message = { id: ids.user, role: 'user', content: text, status: 'queued', createdAt: now, updatedAt: now };
    this.#messages.push(user);
    this.#queue.push(options ? { user, replyId: ids.reply, options } : { user, replyId: ids.reply });
    this.#lastActiveAt = now;
    return { user: copyMessage(user), replyId: ids.reply, position: waiting };
  }

  /** Moves the next queued message into generation; returns its reply, or undefined. */
  startNextReply(now: number): InProgress | undefined {
    if (this.#reply || this.#stopped) return undefined;
    const next = this.#queue.shift();
    if (!next) return undefined;
    next.user.status = 'complete';
    next.user.updatedAt = now;
    const reply: Message = {
      id: next.replyId,
      role: 'assistant',
      content: '',
      status: 'streaming',
      createdAt: now,
      updatedAt: now,
      replyTo: next.user.id,
    };
    this.#messages.push(reply);
    this.#reply = reply;
    this.#prompt = next.user;
    this.#options = next.options;
    this.#lastActiveAt = now;
    return this.inProgress();
  }

  /** The reply being generated and the message it answers, if any. */
  inProgress(): InProgress | undefined {
    if (!this.#reply || !this.#prompt) return undefined;
    const current = { reply: copyMessage(this.#reply), prompt: copyMessage(this.#prompt) };
    return this.#options ? { ...current, options: this.#options } : current;
  }

  /** Ids of the reply in progress and of every queued reply, in order. */
  pendingReplyIds(): MessageId[] {
    const ids = this.#queue.map(({ replyId }) => replyId);
    return this.#reply ? [this.#reply.id, ...ids] : ids;
  }

  /** Appends streamed text to the reply in progress and numbers the chunk. */
  appendChunk(text: string, now: number): ChunkRecord {
    const reply = this.#reply;
    if (!reply) throw new ChatError('internal_error', 'No reply is being generated.');
    reply.content += text;
    reply.updatedAt = now;
    this.#lastSeq += 1;
    this.#lastActiveAt = now;
    return { messageId: reply.id, seq: this.#lastSeq };
  }

  /** Records the tokens the model reported for the reply in progress. */
  recordUsage(usage: Usage, now: number): void {
    const reply = this.#reply;
    if (!reply) return;
    reply.usage = { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens };
    reply.updatedAt = now;
  }

  /** Ends the reply in progress with a final status; the text so far is kept. */
  finishReply(status: FinalReplyStatus, now: number, errorCode?: ErrorCode): Message | undefined {
    const reply = this.#reply;
    if (!reply) return undefined;
    reply.status = status;
    reply.updatedAt = now;
    if (errorCode) reply.errorCode = errorCode;
    this.#reply = undefined;
    this.#prompt = undefined;
    this.#options = undefined;
    this.#lastActiveAt = now;
    return copyMessage(reply);
  }

  /** Drops every waiting message; returns them so their senders can be told. */
  cancelQueued(now: number): Pending[] {
    const dropped = this.#queue;
    this.#queue = [];
    for (const { user } of dropped) {
      user.status = 'cancelled';
      user.updatedAt = now;
    }
    return dropped.map(({ user, replyId }) => ({ user: copyMessage(user), replyId }));
  }

  /** A session stopped for good takes no more messages. */
  stop(now: number): void {
    this.#stopped = true;
    this.#lastActiveAt = now;
  }

  /** Prior turns for the model: complete messages before the prompt, oldest first. */
  context(): Message[] {
    const turns: Message[] = [];
    for (const message of this.#messages) {
      if (message === this.#prompt || message === this.#reply) break;
      if (message.status === 'complete') turns.push(copyMessage(message));
    }
    return turns;
  }

  /** Every message, oldest first, as copies. */
  history(): Message[] {
    return this.#messages.map(copyMessage);
  }

  toRecord(): ConversationRecord {
    return {
      sessionId: this.sessionId,
      createdAt: this.createdAt,
      lastActiveAt: this.#lastActiveAt,
      lastSeq: this.#lastSeq,
      stopped: this.#stopped,
      messages: this.#messages.map(copyMessage),
      ...this.#details,
    };
  }

  get lastActiveAt(): number {
    return this.#lastActiveAt;
  }

  get messageCount(): number {
    return this.#messages.length;
  }

  // A record written while a reply streamed or messages waited (a crash, a
  // passivation race) must not come back as work in progress: a half reply
  // is kept as `interrupted` with the text stored up to the last flush, and
  // waiting user messages are cancelled (nobody waits for their answer any
  // more). The sequence jumps past any chunk a client may have seen.
  #recoverUnfinished(now: number): void {
    const recovered: Message[] = [];
    let interrupted = false;
    for (const message of this.#messages) {
      if (message.role === 'assistant' && message.status === 'streaming') {
        message.status = 'interrupted';
        message.updatedAt = now;
        interrupted = true;
        recovered.push(message);
      }
    }
    for (const message of this.#messages) {
      if (message.role === 'user' && message.status === 'queued') {
        message.status = 'cancelled';
        message.updatedAt = now;
        recovered.push(message);
      }
    }
    if (interrupted) this.#lastSeq += SEQ_GAP_AFTER_CRASH;
    if (recovered.length > 0) this.#recovered = recovered.map(copyMessage);
  }
}

function detailsOf(source: SessionDetails): SessionDetails {
  return {
    ...(source.title !== undefined ? { title: source.title } : {}),
    ...(source.metadata !== undefined ? { metadata: source.metadata } : {}),
    ...(source.owner !== undefined ? { owner: source.owner } : {}),
  };
}
