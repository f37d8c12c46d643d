import { settledTurnTokens } from './historyBudget.ts';
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
  #messages: Message[];
  /** Tokens of the settled messages. */
  #tokens = 0;

  constructor(messages: Message[], budgetTokens: number, count: TokenCounter = roughly) {
    this.#budgetTokens = budgetTokens;
    this.#count = count;
    this.#messages = messages;
    for (const message of messages) this.#tokens += this.#cost(message);
  }

  /**
   * What a settled message costs: counted once per message and counter (the
   * model reads the same count for its usage), so what is added is what is
   * taken away when it leaves.
   */
  #cost(message: Message): number {
    // No budget, no need to count (the window then holds everything).
    return Number.isFinite(this.#budgetTokens) ? settledTurnTokens(message, this.#count) : 0;
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
