import type { Message } from './message.ts';

/**
 * Chunk numbers are reserved in blocks: the store holds a high-water mark
 * (`seqReserved`), no chunk above it goes out, and the mark is raised a block
 * ahead, riding on the writes a streaming reply makes anyway (flushes every
 * `--flush-interval-ms`). A reply waits for a store round trip only when it
 * reaches the mark before such a write landed: after activation, once per
 * block. A re-activated session starts above the mark, skipping at most one
 * block of numbers.
 */
export const SEQ_BLOCK = 1000;

/** The mark is raised once fewer than this many numbers are left below it. */
export const SEQ_REFILL_BELOW = SEQ_BLOCK / 2;

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
    else if (message.role === 'user' && message.status === 'queued') message.status = 'cancelled';
    else continue;
    message.updatedAt = now;
    recovered.push(message);
  }
  return recovered;
}
