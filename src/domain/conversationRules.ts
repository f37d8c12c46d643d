import type { SessionDetails } from './conversationRecord.ts';
import type { GenerationOptions } from './generationOptions.ts';
import type { TokenCounter } from './historyBudget.ts';
import type { MessageId } from './ids.ts';
import { copyMessage } from './message.ts';
import type { Message, Turn } from './message.ts';
import type { LoadWindow } from './ports.ts';

/**
 * What re-activation loads to fill a context budget: enough of the newest
 * history (≈ 4 characters a token, at least 5 tokens a message); everything
 * when there is no budget.
 */
export function windowFor(budgetTokens: number): LoadWindow | undefined {
  return Number.isFinite(budgetTokens) ? { maxChars: budgetTokens * 4, maxMessages: Math.max(1, Math.ceil(budgetTokens / 5)) } : undefined;
}

/** User messages take even places, their replies the odd one right after. */
export function nextUserOrder(highestOrder: number): number {
  return Math.floor(highestOrder / 2) * 2 + 2;
}

/** The rules a conversation is held to, set by whoever hosts it (the registry). */
export interface ConversationPolicy {
  /** Messages that may wait while a reply streams (beyond: `busy`). */
  readonly queueLimit: number;
  /**
   * Estimated tokens of complete turns kept in memory, the most a model is
   * sent (older turns stay in the store). Default: no limit.
   */
  readonly contextBudgetTokens?: number;
  /** Counts those tokens (the model's tokenizer; default: about four characters a token). */
  readonly countTokens?: TokenCounter;
  /**
   * True when the store outlives the process: chunk numbers are then
   * reserved durably ahead of use. False (memory store): nothing survives a
   * crash, so there is nothing to reserve against.
   */
  readonly reserveSeqs?: boolean;
}

/**
 * A record written while a reply streamed or messages waited (a crash, a
 * store that failed before the last write) must not come back as work in
 * progress: a half reply is kept as `interrupted` with the text stored up to
 * the last flush, and waiting user messages are cancelled (nobody waits for
 * their answer any more). Changes `messages` in place; returns the changed ones.
 */
export function recoverUnfinished(messages: readonly Message[], now: number): Message[] {
  const recovered: Message[] = [];
  for (const message of messages) {
    if (message.role === 'assistant' && message.status === 'streaming') message.status = 'interrupted';
    else if (message.role !== 'assistant' && message.status === 'queued') message.status = 'cancelled';
    else continue;
    message.updatedAt = now;
    recovered.push(message);
  }
  return recovered;
}

export type FinalReplyStatus = 'complete' | 'cancelled' | 'failed' | 'interrupted';

/** A user message taken in but not yet stored: it waits for the store before it joins the queue. */
export interface Acceptance {
  /** The message the reply answers: the user message, or the last tool result. */
  readonly user: Message;
  /** Every message the input added, in order (tool results, then the user message). */
  readonly inputs: readonly Message[];
  /** The id the reply will stream under (chunk frames carry it). */
  readonly replyId: MessageId;
}

/** A stored user message, in the queue. */
export interface Accepted extends Acceptance {
  /** 0 when generation starts at once, else the place in the queue. */
  readonly position: number;
}

export interface ChunkRecord {
  readonly messageId: MessageId;
  readonly seq: number;
  /** The text as kept (U+0000 replaced). */
  readonly text: string;
}

/** A user message taken in (awaiting storage) or queued, with its reply's id and settings. */
export interface Pending {
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

export function detailsOf(source: SessionDetails): SessionDetails {
  return {
    ...(source.title !== undefined ? { title: source.title } : {}),
    ...(source.metadata !== undefined ? { metadata: source.metadata } : {}),
    ...(source.owner !== undefined ? { owner: source.owner } : {}),
    ...(source.model !== undefined ? { model: source.model } : {}),
  };
}

/** Earlier turns as the messages a seeded conversation starts from: complete, in even places from 2 (see `Conversation.seeded`). */
export function seededMessages(turns: readonly Turn[], now: number, messageId: () => MessageId): Message[] {
  return turns.map(
    (turn, index): Message => ({
      id: messageId(),
      order: 2 * (index + 1),
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
}

/** Prior turns for the model: copies of the complete messages before the prompt (or the reply) in flight, in conversation order. */
export function priorTurns(window: readonly Message[], prompt: Message | undefined, reply: Message | undefined): Message[] {
  const turns: Message[] = [];
  for (const message of window) {
    if (message === prompt || message === reply) break;
    if (message.status === 'complete') turns.push(copyMessage(message));
  }
  return turns;
}
