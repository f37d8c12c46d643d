import { ChatError } from './errors.ts';
import type { ErrorCode } from './errors.ts';
import type { GenerationOptions } from './generationOptions.ts';
import type { MessageId, SessionId } from './ids.ts';
import { copyMessage } from './message.ts';
import type { FinishReason, Message, Turn, Usage } from './message.ts';
import { applyToolCallDeltas } from './toolCalls.ts';
import { inputMessages } from './userInput.ts';
import type { InputIds, UserInput } from './userInput.ts';
import type { ToolCallDelta } from './toolCalls.ts';
import type { ConversationRecord, SessionDetails, SessionMetadata } from './conversationRecord.ts';

export type { UserInput } from './userInput.ts';

export type FinalReplyStatus = 'complete' | 'cancelled' | 'failed' | 'interrupted';

/**
 * After an unclean stop the store holds the chunk sequence as of its last
 * flush, but clients may have seen later chunks. The sequence jumps by more
 * than one flush interval can stream, so no `seq` a client saw is reused.
 */
export const SEQ_GAP_AFTER_CRASH = 1_000_000;

export interface Accepted {
  /** The message the reply answers: the user message, or the last tool result. */
  readonly user: Message;
  /** Every message the input added, in order (tool results, then the user message). */
  readonly inputs: readonly Message[];
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
  /** The message the reply answers (the last of `inputs`). */
  readonly user: Message;
  readonly inputs: readonly Message[];
  readonly replyId: MessageId;
  readonly options?: GenerationOptions;
}

/** The reply being generated, the message it answers and that message's settings. */
export interface InProgress {
  readonly reply: Message;
  readonly prompt: Message;
  /** The messages of the input the reply answers (the prompt is the last). */
  readonly inputs: readonly Message[];
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
  #inputs: readonly Message[] = [];
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
      (turn): Message => ({
        id: messageId(),
        role: turn.role,
        content: turn.content,
        ...(turn.parts ? { parts: turn.parts } : {}),
        ...(turn.toolCalls ? { toolCalls: turn.toolCalls } : {}),
        ...(turn.toolCallId !== undefined ? { toolCallId: turn.toolCallId } : {}),
        status: 'complete',
        createdAt: now,
        updatedAt: now,
      }),
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

  /** The model this session answers with unless a message names another. */
  get model(): string | undefined {
    return this.#details.model;
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

  /**
   * Takes a user message (plain text, or an input with content parts and tool
   * results): it starts at once when idle, else waits in the bounded queue.
   */
  accept(input: string | UserInput, ids: InputIds & { reply: MessageId }, now: number, options?: GenerationOptions): Accepted {
    if (this.#stopped) throw new ChatError('session_stopped');
    const inputs = inputMessages(typeof input === 'string' ? { text: input } : input, ids, now, this.#messages);
    const waiting = this.#queue.length + (this.#reply ? 1 : 0);
    if (waiting > this.queueLimit) throw new ChatError('busy');
    const user = inputs[inputs.length - 1]!;
    this.#messages.push(...inputs);
    this.#queue.push(options ? { user, inputs, replyId: ids.reply, options } : { user, inputs, replyId: ids.reply });
    this.#lastActiveAt = now;
    return { user: copyMessage(user), inputs: inputs.map(copyMessage), replyId: ids.reply, position: waiting };
  }

  /** Moves the next queued message into generation; returns its reply, or undefined. */
  startNextReply(now: number): InProgress | undefined {
    if (this.#reply || this.#stopped) return undefined;
    const next = this.#queue.shift();
    if (!next) return undefined;
    for (const message of next.inputs) {
      message.status = 'complete';
      message.updatedAt = now;
    }
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
    this.#inputs = next.inputs;
    this.#options = next.options;
    this.#lastActiveAt = now;
    return this.inProgress();
  }

  /** The reply being generated and the message it answers, if any. */
  inProgress(): InProgress | undefined {
    if (!this.#reply || !this.#prompt) return undefined;
    const current = { reply: copyMessage(this.#reply), prompt: copyMessage(this.#prompt), inputs: this.#inputs.map(copyMessage) };
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

  /** Adds streamed tool-call fragments to the reply in progress. */
  appendToolCalls(deltas: readonly ToolCallDelta[], now: number): void {
    const reply = this.#reply;
    if (!reply) throw new ChatError('internal_error', 'No reply is being generated.');
    reply.toolCalls = applyToolCallDeltas(reply.toolCalls ?? [], deltas);
    reply.updatedAt = now;
    this.#lastActiveAt = now;
  }

  /** Records which model answers the reply in progress (after any fallback). */
  recordModel(model: string): void {
    if (this.#reply) this.#reply.model = model;
  }

  /** Records why the model stopped the reply in progress. */
  recordFinishReason(reason: FinishReason): void {
    if (this.#reply) this.#reply.finishReason = reason;
  }

  /** Ends the reply in progress with a final status; the text so far is kept. A complete reply has a finish reason. */
  finishReply(status: FinalReplyStatus, now: number, errorCode?: ErrorCode): Message | undefined {
    const reply = this.#reply;
    if (!reply) return undefined;
    if (status === 'complete') reply.finishReason ??= 'stop';
    reply.status = status;
    reply.updatedAt = now;
    if (errorCode) reply.errorCode = errorCode;
    this.#reply = undefined;
    this.#prompt = undefined;
    this.#inputs = [];
    this.#options = undefined;
    this.#lastActiveAt = now;
    return copyMessage(reply);
  }

  /** Drops every waiting message (each input whole); returns them so their senders can be told. */
  cancelQueued(now: number): Pending[] {
    const dropped = this.#queue;
    this.#queue = [];
    for (const { inputs } of dropped) {
      for (const message of inputs) {
        message.status = 'cancelled';
        message.updatedAt = now;
      }
    }
    return dropped.map(({ user, inputs, replyId }) => ({ user: copyMessage(user), inputs: inputs.map(copyMessage), replyId }));
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
      if (message.role !== 'assistant' && message.status === 'queued') {
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
    ...(source.model !== undefined ? { model: source.model } : {}),
  };
}
