import { ChatError } from './errors.ts';
import type { ErrorCode } from './errors.ts';
import type { GenerationOptions } from './generationOptions.ts';
import { copyMessage, withoutNul } from './message.ts';
import type { FinishReason, Message, Usage } from './message.ts';
import { applyToolCallDeltas } from './toolCalls.ts';
import type { ToolCallDelta } from './toolCalls.ts';
import type { ChunkNumbers } from './chunkNumbers.ts';
import type { HistoryWindow } from './historyWindow.ts';
import type { ChunkRecord, FinalReplyStatus, InProgress, Pending } from './conversationRules.ts';

/**
 * The reply a conversation is generating (one at a time), the message it
 * answers, the messages of that input and its settings: the live objects,
 * which enter the conversation's history window as the reply starts. The
 * conversation (`Conversation`) decides when a reply starts.
 */
export class ReplyInProgress {
  #reply: Message | undefined;
  #prompt: Message | undefined;
  #inputs: readonly Message[] = [];
  #options: GenerationOptions | undefined;

  /** The reply being generated (the live object), if any. */
  get reply(): Message | undefined {
    return this.#reply;
  }

  /** The message it answers (the live object), if any. */
  get prompt(): Message | undefined {
    return this.#prompt;
  }

  /** The messages of the input it answers (the prompt is the last); none when no reply is being generated. */
  get inputs(): readonly Message[] {
    return this.#inputs;
  }

  /** Starts the reply to a queued message: its input's messages enter `window` complete, then the reply, streaming. */
  start(next: Pending, now: number, window: HistoryWindow): void {
    for (const message of next.inputs) {
      message.status = 'complete';
      message.updatedAt = now;
    }
    const reply: Message = {
      id: next.replyId,
      order: next.user.order + 1,
      role: 'assistant',
      content: '',
      status: 'streaming',
      createdAt: now,
      updatedAt: now,
      replyTo: next.user.id,
    };
    for (const message of next.inputs) window.push(message, true);
    window.push(reply, false);
    this.#reply = reply;
    this.#prompt = next.user;
    this.#inputs = next.inputs;
    this.#options = next.options;
  }

  /** Copies of the reply, the message it answers and its input's messages, with its settings; undefined when none. */
  inProgress(): InProgress | undefined {
    if (!this.#reply || !this.#prompt) return undefined;
    const current = { reply: copyMessage(this.#reply), prompt: copyMessage(this.#prompt), inputs: this.#inputs.map(copyMessage) };
    return this.#options ? { ...current, options: this.#options } : current;
  }

  /** A copy of the reply alone, if any. */
  streamingReply(): Message | undefined {
    return this.#reply && this.#prompt ? copyMessage(this.#reply) : undefined;
  }

  /** Appends streamed text to the reply and numbers the chunk (within the stored reservation). */
  appendChunk(text: string, now: number, numbers: ChunkNumbers): ChunkRecord {
    const reply = this.#reply;
    if (!reply) throw new ChatError('internal_error', 'No reply is being generated.');
    const seq = numbers.next();
    const kept = withoutNul(text);
    reply.content += kept;
    reply.updatedAt = now;
    return { messageId: reply.id, seq, text: kept };
  }

  /** Records the tokens the model reported for the reply. */
  recordUsage(usage: Usage, now: number): void {
    const reply = this.#reply;
    if (!reply) return;
    reply.usage = { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens };
    reply.updatedAt = now;
  }

  /** Adds streamed tool-call fragments to the reply. */
  appendToolCalls(deltas: readonly ToolCallDelta[], now: number): void {
    const reply = this.#reply;
    if (!reply) throw new ChatError('internal_error', 'No reply is being generated.');
    reply.toolCalls = applyToolCallDeltas(reply.toolCalls ?? [], deltas);
    reply.updatedAt = now;
  }

  /** Records which model answers the reply. */
  recordModel(model: string): void {
    if (this.#reply) this.#reply.model = model;
  }

  /** Records why the model stopped the reply. */
  recordFinishReason(reason: FinishReason): void {
    if (this.#reply) this.#reply.finishReason = reason;
  }

  /** Ends the reply with a final status (no reply in progress any more): it settles in `window`. Returns it, the live object, or undefined when none. */
  finish(status: FinalReplyStatus, now: number, window: HistoryWindow, errorCode?: ErrorCode): Message | undefined {
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
    window.settle(reply);
    window.trim([]);
    return reply;
  }
}
