import type { Turn } from './message.ts';

/** Tokens in a text, as the model's tokenizer counts them (injected: see infra/tokenizer.ts). */
export type TokenCounter = (text: string) => number;

/**
 * Framing OpenAI's chat format adds around every message (`<|start|>role…<|end|>`),
 * and once before the reply: the figures of OpenAI's token-counting guide.
 */
export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_REPLY = 3;
/**
 * A content part that is not text (an image, audio, a file) is counted as a
 * flat 85 tokens, OpenAI's figure for a low-detail image: its real cost is
 * only known to the model, and the model's own usage replaces this when it
 * reports one.
 */
export const TOKENS_PER_MEDIA_PART = 85;

/** Longer than any single token of the encodings in use (o200k's longest is well under this): a cheap lower bound. */
export const MAX_CHARS_PER_TOKEN = 256;

/** What one turn costs in the request: its text, tool calls and media parts, plus framing. */
export function turnTokens(turn: Turn, count: TokenCounter): number {
  let tokens = TOKENS_PER_MESSAGE;
  if (turn.parts) {
    for (const part of turn.parts) tokens += part.type === 'text' && typeof part['text'] === 'string' ? count(part['text']) : TOKENS_PER_MEDIA_PART;
  } else tokens += count(turn.content);
  for (const call of turn.toolCalls ?? []) tokens += count(call.function.name) + count(call.function.arguments) + TOKENS_PER_MESSAGE;
  if (turn.toolCallId !== undefined) tokens += 1;
  return tokens;
}

/** Counts of turns that no longer change, per counter: a message is counted once however many read it (its window, the model). */
const settledCosts = new WeakMap<TokenCounter, WeakMap<Turn, number>>();

/**
 * `turnTokens` of a turn that will not change again (a stored prompt, a
 * finished reply), remembered on the turn object for this counter. Each
 * reply's prompt was counted by its session's window and again by the model
 * for its usage, and each reply by the model and again by the window (three
 * BPE counts per reply, 2–4% of the CPU under a burst): now a prompt is
 * counted once, and a reply whose model reported its output tokens is not
 * counted at all (the model's count replaces the tokenizer's, as for usage).
 */
export function settledTurnTokens(turn: Turn & { readonly usage?: { readonly outputTokens: number } }, count: TokenCounter): number {
  let costs = settledCosts.get(count);
  if (!costs) settledCosts.set(count, (costs = new WeakMap()));
  let cost = costs.get(turn);
  if (cost === undefined) {
    cost = turn.role === 'assistant' && turn.usage && !turn.parts ? TOKENS_PER_MESSAGE + turn.usage.outputTokens : turnTokens(turn, count);
    costs.set(turn, cost);
  }
  return cost;
}

/** Input tokens of a whole request (system prompt, history, prompt) as OpenAI's format frames it. */
export function requestTokens(turns: readonly Turn[], count: TokenCounter, system = ''): number {
  let tokens = TOKENS_PER_REPLY + (system ? TOKENS_PER_MESSAGE + count(system) : 0);
  for (const turn of turns) tokens += turnTokens(turn, count);
  return tokens;
}

/**
 * The turns at the end of `history` that the prompt cannot go without: when
 * the prompt is a tool result, the assistant message that made the calls and
 * the results already given (the API refuses a tool result whose call is missing).
 */
function pinnedFrom(history: readonly Turn[], prompt: Turn | undefined): number {
  if (prompt?.role !== 'tool') return history.length;
  let start = history.length;
  while (start > 0 && history[start - 1]!.role === 'tool') start -= 1;
  const caller = history[start - 1];
  return caller?.role === 'assistant' && caller.toolCalls?.length ? start - 1 : history.length;
}

/**
 * The newest turns of `history` that fit in `budgetTokens` once `reservedTokens`
 * (the system prompt and the new prompt, which are always sent) are taken:
 * oldest turns are dropped first, and the kept part starts with a user turn
 * (never an answer or a tool result whose question was dropped). Turns the
 * prompt depends on (see `pinnedFrom`) are always kept.
 */
export function fitHistory<T extends Turn>(
  history: readonly T[],
  budgetTokens: number,
  reservedTokens: number,
  count: TokenCounter,
  prompt?: Turn,
  costOf: (turn: T) => number = (turn) => turnTokens(turn, count),
): T[] {
  const pinned = pinnedFrom(history, prompt);
  let left = budgetTokens - reservedTokens;
  for (let index = pinned; index < history.length; index += 1) left -= costOf(history[index]!);
  let start = pinned;
  while (start > 0) {
    const turn = history[start - 1]!;
    // No token spans more than MAX_CHARS_PER_TOKEN characters: a text that long surely does not fit (no need to count it).
    if (turn.content.length > Math.max(0, left) * MAX_CHARS_PER_TOKEN) break;
    const cost = costOf(turn);
    if (cost > left) break;
    left -= cost;
    start -= 1;
  }
  while (start < pinned && history[start]!.role !== 'user') start += 1;
  return history.slice(start);
}
