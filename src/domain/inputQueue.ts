import { ChatError } from './errors.ts';
import type { GenerationOptions } from './generationOptions.ts';
import type { MessageId } from './ids.ts';
import { copyMessage } from './message.ts';
import type { Message, Turn } from './message.ts';
import { inputMessages } from './userInput.ts';
import type { InputIds, UserInput } from './userInput.ts';
import type { Acceptance, Accepted, Pending } from './conversationRules.ts';
import type { HistoryWindow } from './historyWindow.ts';

/**
 * The user messages of one conversation that wait for their reply, in
 * order: first taken in and being stored, then, once stored, queued; at most
 * `limit` of them besides the reply in progress. The conversation
 * (`Conversation`) holds the reply in progress and the history.
 */
export class InputQueue {
  readonly #limit: number;
  /** Taken in, being stored. */
  #awaiting: Pending[] = [];
  #queue: Pending[] = [];
  #nextOrder: number;

  /** `nextOrder`: the place the next input's first message takes. */
  constructor(limit: number, nextOrder: number) {
    this.#limit = limit;
    this.#nextOrder = nextOrder;
  }

  /** Messages stored and queued. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Takes an input in (`history`: the conversation so far; `generating`: a
   * reply is in progress, which counts against the limit too): it waits for
   * the store before it joins the queue. Returns copies of its messages.
   */
  accept(input: UserInput, ids: InputIds & { reply: MessageId }, now: number, options: GenerationOptions | undefined, history: readonly Message[], generating: boolean): Acceptance {
    const inputs = inputMessages(input, ids, now, this.#nextOrder, history);
    const waiting = this.#queue.length + this.#awaiting.length + (generating ? 1 : 0);
    if (waiting > this.#limit) throw new ChatError('busy');
    const user = inputs[inputs.length - 1]!;
    this.#nextOrder = user.order + 2;
    this.#awaiting.push(options ? { user, inputs, replyId: ids.reply, options } : { user, inputs, replyId: ids.reply });
    return { user: copyMessage(user), inputs: inputs.map(copyMessage), replyId: ids.reply };
  }

  /** The stored message joins the queue (behind the reply in progress, if `generating`); undefined when it is not waiting to (withdrawn, unknown). */
  admit(userId: MessageId, generating: boolean): Accepted | undefined {
    const index = this.#awaiting.findIndex((pending) => pending.user.id === userId);
    if (index === -1) return undefined;
    const [pending] = this.#awaiting.splice(index, 1);
    const position = this.#queue.length + (generating ? 1 : 0);
    this.#queue.push(pending!);
    return { user: copyMessage(pending!.user), inputs: pending!.inputs.map(copyMessage), replyId: pending!.replyId, position };
  }

  /**
   * The message taken in as `userId`, if none is queued or being stored
   * ahead of it and it comes alone; the live message, read-only through its
   * type (the conversation adds: nothing generating).
   */
  answeredOnceStored(userId: MessageId): { prompt: Turn; options: GenerationOptions | undefined } | undefined {
    const pending = this.#awaiting[0];
    if (this.#queue.length > 0 || this.#awaiting.length !== 1) return undefined;
    if (pending?.user.id !== userId || pending.inputs.length !== 1) return undefined;
    return { prompt: pending.user, options: pending.options };
  }

  /** Drops a message taken in but not stored, as if it never came. */
  withdraw(userId: MessageId): boolean {
    const index = this.#awaiting.findIndex((pending) => pending.user.id === userId);
    if (index === -1) return false;
    this.#awaiting.splice(index, 1);
    return true;
  }

  /** The next queued message, taken out of the queue; undefined when none is queued. */
  next(): Pending | undefined {
    return this.#queue.shift();
  }

  /** Empties the queue, each input whole: its messages enter `window` as cancelled. Returns copies of what was queued. */
  cancelAll(now: number, window: HistoryWindow): Pending[] {
    const dropped = this.#queue;
    this.#queue = [];
    for (const { inputs } of dropped) {
      for (const message of inputs) {
        message.status = 'cancelled';
        message.updatedAt = now;
        window.push(message, true);
      }
    }
    return dropped.map(({ user, inputs, replyId }) => ({ user: copyMessage(user), inputs: inputs.map(copyMessage), replyId }));
  }

  /** Ids of every queued reply, in order. */
  replyIds(): MessageId[] {
    return this.#queue.map(({ replyId }) => replyId);
  }

  /** The queued messages, each input whole, in order (the live messages). */
  messages(): Message[] {
    return this.#queue.flatMap(({ inputs }) => inputs);
  }

  /** How many messages are queued (each input counts all of its messages). */
  get messageCount(): number {
    return this.#queue.reduce((count, { inputs }) => count + inputs.length, 0);
  }
}
