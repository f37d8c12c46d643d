import { ChatError } from './errors.ts';
import type { ErrorCode } from './errors.ts';
import type { GenerationOptions } from './generationOptions.ts';
import type { MessageId, SessionId } from './ids.ts';
import { copyMessage } from './message.ts';
import type { FinishReason, Message, Turn, Usage } from './message.ts';
import type { ToolCallDelta } from './toolCalls.ts';
import type { InputIds, UserInput } from './userInput.ts';
import type { ConversationRecord, SessionDetails, SessionMetadata } from './conversationRecord.ts';
import { ChunkNumbers, SEQ_BLOCK } from './chunkNumbers.ts';
import { detailsOf, nextUserOrder, priorTurns, recoverUnfinished, seededMessages } from './conversationRules.ts';
import { HistoryWindow } from './historyWindow.ts';
import { InputQueue } from './inputQueue.ts';
import { ReplyInProgress } from './replyInProgress.ts';
import type { Acceptance, Accepted, ChunkRecord, ConversationPolicy, FinalReplyStatus, InProgress, Pending } from './conversationRules.ts';

export type { Acceptance, Accepted, ChunkRecord, FinalReplyStatus, InProgress } from './conversationRules.ts';
export type { UserInput } from './userInput.ts';

/**
 * The conversation of one session and its rules: user messages taken in,
 * stored, then queued (bounded); one reply at a time; history in
 * conversation order (each reply right after its question, whatever waited
 * meanwhile); chunk numbers that never repeat, even across a crash; and only
 * a recent window of history held in memory (the rest is in the store).
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
  readonly #window: HistoryWindow;
  readonly #numbers: ChunkNumbers;
  readonly #inputQueue: InputQueue;
  readonly #current = new ReplyInProgress();
  #lastActiveAt: number;
  #stopped: boolean;
  #details: SessionDetails;
  #recovered: Message[] | undefined;

  private constructor(record: ConversationRecord, policy: ConversationPolicy, restored: boolean) {
    this.sessionId = record.sessionId;
    this.createdAt = record.createdAt;
    this.queueLimit = policy.queueLimit;
    const messages = record.messages.map(copyMessage).sort((a, b) => a.order - b.order);
    this.#inputQueue = new InputQueue(policy.queueLimit, nextUserOrder(messages.reduce((highest, message) => Math.max(highest, message.order), 0)));
    this.#lastActiveAt = record.lastActiveAt;
    this.#stopped = record.stopped;
    this.#details = detailsOf(record);
    const durable = policy.reserveSeqs ?? false;
    this.#numbers = restored ? ChunkNumbers.restored(durable, record.lastSeq, record.seqReserved) : ChunkNumbers.fresh(durable);
    if (restored) {
      const recovered = recoverUnfinished(messages, record.lastActiveAt);
      if (recovered.length > 0) this.#recovered = recovered.map(copyMessage);
    }
    this.#window = new HistoryWindow(messages, policy.contextBudgetTokens ?? Number.POSITIVE_INFINITY, policy.countTokens);
    this.#window.trim([]);
  }

  static start(sessionId: SessionId, now: number, policy: ConversationPolicy, details: SessionDetails = {}): Conversation {
    return Conversation.#fresh(sessionId, now, policy, details, []);
  }

  /** A new conversation that starts from earlier turns (e.g. an OpenAI-style request's messages). */
  static seeded(
    sessionId: SessionId,
    now: number,
    policy: ConversationPolicy,
    details: SessionDetails,
    turns: readonly Turn[],
    messageId: () => MessageId,
  ): Conversation {
    return Conversation.#fresh(sessionId, now, policy, details, seededMessages(turns, now, messageId));
  }

  static #fresh(sessionId: SessionId, now: number, policy: ConversationPolicy, details: SessionDetails, messages: Message[]): Conversation {
    const record = { sessionId, createdAt: now, lastActiveAt: now, lastSeq: 0, seqReserved: SEQ_BLOCK, stopped: false, messages, ...detailsOf(details) };
    return new Conversation(record, policy, false);
  }

  /** From a stored record (a recent window of it is enough); unfinished work comes back finished. */
  static restore(record: ConversationRecord, policy: ConversationPolicy): Conversation {
    return new Conversation(record, policy, true);
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
    return this.#numbers.last;
  }

  /** The chunk-number mark to store with the next write. */
  get seqReservation(): number {
    return this.#numbers.mark;
  }

  /** True when the next chunk would pass the stored mark: a reservation must be stored first. */
  get mustReserveSeq(): boolean {
    return this.#numbers.mustReserve;
  }

  /** The store has kept `mark` (a `seqReservation` this conversation handed out). */
  confirmSeqReserved(mark: number): void {
    this.#numbers.confirm(mark);
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  get generating(): boolean {
    return this.#current.reply !== undefined;
  }

  get hasQueued(): boolean {
    return this.#inputQueue.queued > 0;
  }

  /**
   * Takes a user message in (plain text, or an input with content parts and
   * the results of the last reply's tool calls): it counts against the queue
   * limit at once, but joins the queue only once stored (`admit`), or is
   * dropped (`withdraw`). The input's messages take even places in order,
   * its reply the odd one right after the last of them.
   */
  accept(input: string | UserInput, ids: InputIds & { reply: MessageId }, now: number, options?: GenerationOptions): Acceptance {
    if (this.#stopped) throw new ChatError('session_stopped');
    const accepted = this.#inputQueue.accept(typeof input === 'string' ? { text: input } : input, ids, now, options, this.#window.messages, this.#current.reply !== undefined);
    this.#lastActiveAt = now;
    return accepted;
  }

  /** The stored message joins the queue; undefined when it is not waiting to (withdrawn, unknown). */
  admit(userId: MessageId): Accepted | undefined {
    if (this.#stopped) return undefined;
    return this.#inputQueue.admit(userId, this.#current.reply !== undefined);
  }

  /**
   * The message taken in as `userId`, if its reply starts the moment it is
   * stored: nothing generating, queued or being stored ahead of it, and it
   * comes alone (tool results enter the history only as the reply starts).
   * The live message, as the window will hold it, read-only through its type.
   */
  answeredOnceStored(userId: MessageId): { prompt: Turn; options: GenerationOptions | undefined } | undefined {
    if (this.#current.reply || this.#stopped) return undefined;
    return this.#inputQueue.answeredOnceStored(userId);
  }

  /** Drops a message taken in but not stored, as if it never came. */
  withdraw(userId: MessageId): boolean {
    return this.#inputQueue.withdraw(userId);
  }

  /** Moves the next queued message into generation; returns its reply, or undefined. */
  startNextReply(now: number): InProgress | undefined {
    if (this.#current.reply || this.#stopped) return undefined;
    const next = this.#inputQueue.next();
    if (!next) return undefined;
    this.#current.start(next, now, this.#window);
    this.#lastActiveAt = now;
    // The write that records the start also raises the chunk-number mark.
    this.#numbers.planAhead();
    return this.inProgress();
  }

  /** The reply being generated and the message it answers, if any. */
  inProgress(): InProgress | undefined {
    return this.#current.inProgress();
  }

  /**
   * The message being answered, as the model reads it: the live object, not
   * a copy, so a count of it made when it entered the window is found again
   * (see `settledTurnTokens`); read-only through its type.
   */
  promptTurn(): Turn | undefined {
    return this.#current.reply ? this.#current.prompt : undefined;
  }

  /** A copy of the reply being generated, if any (without copying its prompt and inputs, as `inProgress` does). */
  streamingReply(): Message | undefined {
    return this.#current.streamingReply();
  }

  /** Ids of the reply in progress and of every queued reply, in order. */
  pendingReplyIds(): MessageId[] {
    const ids = this.#inputQueue.replyIds();
    return this.#current.reply ? [this.#current.reply.id, ...ids] : ids;
  }

  /** Appends streamed text to the reply in progress and numbers the chunk (within the stored reservation). */
  appendChunk(text: string, now: number): ChunkRecord {
    const chunk = this.#current.appendChunk(text, now, this.#numbers);
    this.#lastActiveAt = now;
    return chunk;
  }

  /** Records the tokens the model reported for the reply in progress. */
  recordUsage(usage: Usage, now: number): void {
    this.#current.recordUsage(usage, now);
  }

  /** Adds streamed tool-call fragments to the reply in progress. */
  appendToolCalls(deltas: readonly ToolCallDelta[], now: number): void {
    this.#current.appendToolCalls(deltas, now);
    this.#lastActiveAt = now;
  }

  /** Records which model answers the reply in progress (after any fallback). */
  recordModel(model: string): void {
    this.#current.recordModel(model);
  }

  /** Records why the model stopped the reply in progress. */
  recordFinishReason(reason: FinishReason): void {
    this.#current.recordFinishReason(reason);
  }

  /** Ends the reply in progress with a final status; the text so far is kept. A complete reply has a finish reason. */
  finishReply(status: FinalReplyStatus, now: number, errorCode?: ErrorCode): Message | undefined {
    const reply = this.#current.finish(status, now, this.#window, errorCode);
    if (!reply) return undefined;
    this.#lastActiveAt = now;
    return copyMessage(reply);
  }

  /** Drops every queued message, each input whole (kept in history as cancelled); returns them so their senders can be told. */
  cancelQueued(now: number): Pending[] {
    const dropped = this.#inputQueue.cancelAll(now, this.#window);
    this.#window.trim([this.#current.prompt, this.#current.reply, ...this.#current.inputs]);
    return dropped;
  }

  /** A session stopped for good takes no more messages. */
  stop(now: number): void {
    this.#stopped = true;
    this.#lastActiveAt = now;
  }

  /** Prior turns for the model: complete messages before the prompt, in conversation order. */
  context(): Message[] {
    return priorTurns(this.#window.messages, this.#current.prompt, this.#current.reply);
  }

  /** The window held in memory, then the queued messages, in conversation order, as copies. */
  history(): Message[] {
    return [...this.#window.messages, ...this.#inputQueue.messages()].map(copyMessage);
  }

  toRecord(): ConversationRecord {
    return {
      sessionId: this.sessionId,
      createdAt: this.createdAt,
      lastActiveAt: this.#lastActiveAt,
      lastSeq: this.lastSeq,
      seqReserved: this.seqReservation,
      stopped: this.#stopped,
      messages: this.history(),
      ...this.#details,
    };
  }

  get lastActiveAt(): number {
    return this.#lastActiveAt;
  }

  /** Messages held in memory (the window and the queue). */
  get messageCount(): number {
    return this.#window.length + this.#inputQueue.messageCount;
  }
}
