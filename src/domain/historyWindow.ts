import { estimateTokens } from './historyBudget.ts';
import type { Message } from './message.ts';

/**
 * The recent part of a conversation held in memory, oldest first: settled
 * messages, then the prompt and reply in flight. Older messages leave once
 * the settled ones pass the budget (estimated tokens, what a model may be
 * sent); they are in the store, or in the writer's queue on their way there.
 */
export class HistoryWindow {
  readonly #budgetTokens: number;
  #messages: Message[];
  /** Estimated tokens of the settled messages. */
  #tokens = 0;

  constructor(messages: Message[], budgetTokens: number) {
    this.#budgetTokens = budgetTokens;
    this.#messages = messages;
    for (const message of messages) this.#tokens += estimateTokens(message.content);
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
    if (settled) this.#tokens += estimateTokens(message.content);
  }

  /** A message pushed unsettled (a reply) is final: it counts from now on. */
  settle(message: Message): void {
    this.#tokens += estimateTokens(message.content);
  }

  /** Drops the oldest messages while the budget is passed, never one of `keep` (the exchange in flight). */
  trim(keep: readonly (Message | undefined)[]): void {
    while (this.#tokens > this.#budgetTokens && this.#messages.length > 0) {
      const oldest = this.#messages[0]!;
      if (keep.includes(oldest)) break;
      this.#messages.shift();
      this.#tokens -= estimateTokens(oldest.content);
    }
  }
}
