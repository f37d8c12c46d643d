import type { Turn } from './message.ts';

/**
 * A rough token count: about four characters per token for English text with
 * common tokenizers, plus a few tokens of per-message framing. Good enough
 * to keep a request under a context window without shipping a tokenizer.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4) + 4;
}

/**
 * The newest turns of `history` that fit in `budgetTokens` once `reservedTokens`
 * (the system prompt and the new prompt, which are always sent) are taken:
 * oldest turns are dropped first, and the kept part never starts with an
 * assistant turn whose question was dropped.
 */
export function fitHistory<T extends Turn>(history: readonly T[], budgetTokens: number, reservedTokens = 0): T[] {
  let left = budgetTokens - reservedTokens;
  let start = history.length;
  while (start > 0) {
    const cost = estimateTokens(history[start - 1]!.content);
    if (cost > left) break;
    left -= cost;
    start -= 1;
  }
  while (start < history.length && history[start]!.role === 'assistant') start += 1;
  return history.slice(start);
}
