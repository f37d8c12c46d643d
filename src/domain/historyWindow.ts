import { turnTokens } from './historyBudget.ts';
import type { TokenCounter } from './historyBudget.ts';
import type { Message } from './message.ts';

/** Without a tokenizer: about four characters a token (the window is a memory bound, and this errs on holding more). */
const roughly: TokenCounter = (text) => Math.ceil(text.length / 4);

/**
 * The recent part of a conversation held in memory, oldest first: settled
 * messages, then the prompt and reply in flight. Older messages leave once
 * the settled ones pass the budget (estimated tokens, what a model may be
 * sent); they are in the store, or in the writer's queue on their way there.
 */
export class HistoryWindow {
  readonly #budgetTokens: number;
  readonly #count: TokenCounter;
  /** What each settled message was counted at (counted once; a message that leaves takes its count with it). */
  readonly #costs = new WeakMap<Message, number>();
  #messages: Message[];
  /** Tokens of the settled messages. */
  #tokens = 0;

  constructor(messages: Message[], budgetTokens: number, count: TokenCounter = roughly) {
    this.#budgetTokens = budgetTokens;
    this.#count = count;
    this.#messages = messages;
    for (const message of messages) this.#tokens += this.#cost(message);
  }

  #cost(message: Message): number {
    let cost = this.#costs.get(message);
    if (cost === undefined) {
      // No budget, no need to count (the window then holds everything).
      cost = Number.isFinite(this.#budgetTokens) ? turnTokens(message, this.#count) : 0;
      this.#costs.set(message, cost);
    }
    return cost;
  }

  get length(): number {
    return this.#messages.length;
  }

  /** The messages, oldest first (the live objects: the conversation copies them out). */
  get messages(): readonly Message[] {
    return this.#messages;
  }

  /** Appends a message; `settled` ones count against the budget now, the others when they `settle`. */
  push(message: Message, settled: boolean): void {
    this.#messages.push(message);
    if (settled) this.#tokens += this.#cost(message);
  }

  /** A message pushed unsettled (a reply) is final: it counts from now on. */
  settle(message: Message): void {
    this.#tokens += this.#cost(message);
  }

  /** Drops the oldest messages while the budget is passed, never one of `keep` (the exchange in flight). */
  trim(keep: readonly (Message | undefined)[]): void {
    while (this.#tokens > this.#budgetTokens && this.#messages.length > 0) {
      const oldest = this.#messages[0]!;
      if (keep.includes(oldest)) break;
      this.#messages.shift();
      this.#tokens -= this.#cost(oldest);
    }
  }
}
