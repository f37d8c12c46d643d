import type { Conversation } from '../domain/conversation.ts';
import type { MessageId } from '../domain/ids.ts';
import type { GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import { ReplyAbort } from './replyAbort.ts';

/**
 * A reply's head start: the model is asked while the message it answers is
 * still being committed, so the store's round trip and the model's time to
 * its first token overlap instead of adding up. In the 5,000-session burst
 * a message waited a median 280 ms between being taken in and its commit
 * answering (the main thread busy taking in the others), and the model was
 * asked only then (the burst traced on the server: README, Round 10).
 *
 * Nothing of it reaches anyone before the message is stored: what the model
 * sends waits in its stream until the session actor starts the reply (after
 * `accepted`) and reads it from there, as from a stream it opened itself.
 * A message the store refuses, or a session stopped meanwhile, aborts it at
 * once, so the model's request is cancelled and nothing is kept or counted.
 *
 * Only for a message answered the moment it is stored (nothing generating,
 * queued or being stored ahead of it, the supervisor dormant): a queued
 * message's request is made when its turn comes, as before.
 */
export class HeadStart implements AsyncIterator<ProviderChunk>, AsyncIterable<ProviderChunk> {
  readonly replyId: MessageId;
  readonly #replyAbort = new ReplyAbort();
  readonly #iterator: AsyncIterator<ProviderChunk>;
  #first: Promise<IteratorResult<ProviderChunk>> | undefined;

  private constructor(replyId: MessageId, provider: ModelProvider, request: GenerationRequest) {
    this.replyId = replyId;
    this.#iterator = provider.stream(request, this.#replyAbort)[Symbol.asyncIterator]();
    const first = this.#iterator.next();
    // Read by the reply once it starts; a failure before then is the reply's to report, or moot if it never starts.
    first.catch(ignore);
    this.#first = first;
  }

  /** Asks the model now; undefined when the provider throws at once (the reply then asks it itself, and hears why). */
  static begin(replyId: MessageId, provider: ModelProvider, request: GenerationRequest): HeadStart | undefined {
    try {
      return new HeadStart(replyId, provider, request);
    } catch {
      return undefined;
    }
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ProviderChunk>> {
    const first = this.#first;
    if (first) {
      this.#first = undefined;
      return first;
    }
    return this.#iterator.next();
  }

  return(): Promise<IteratorResult<ProviderChunk>> {
    this.#first = undefined;
    return this.#iterator.return?.() ?? Promise.resolve({ done: true, value: undefined });
  }

  /** What aborts the model's request: the reply that takes the head start makes it its own (one per reply). */
  get replyAbort(): ReplyAbort {
    return this.#replyAbort;
  }

  /** Never to be read: the model's request is aborted and its stream closed. */
  abandon(): void {
    this.#replyAbort.abort();
    try {
      this.return().catch(ignore);
    } catch {
      // A provider whose return throws has nothing left to close.
    }
  }
}

const ignore = (): void => {};

/** At most one per conversation, from the message's acceptance to its reply's start, within one `send`. */
const headStarts = new WeakMap<Conversation, HeadStart>();

/** Keeps `headStart` for the reply of `conversation` about to start. */
export function holdHeadStart(conversation: Conversation, headStart: HeadStart): void {
  headStarts.get(conversation)?.abandon();
  headStarts.set(conversation, headStart);
}

/** The head start of the reply `replyId`, if it has one, handed over to that reply. A head start for another reply is abandoned. */
export function takeHeadStart(conversation: Conversation, replyId: MessageId): HeadStart | undefined {
  const headStart = headStarts.get(conversation);
  if (!headStart) return undefined;
  headStarts.delete(conversation);
  if (headStart.replyId === replyId) return headStart;
  headStart.abandon();
  return undefined;
}

/** Abandons the conversation's head start, if one is still held (its message was not stored, or its reply did not start). */
export function dropHeadStart(conversation: Conversation): void {
  const headStart = headStarts.get(conversation);
  if (!headStart) return;
  headStarts.delete(conversation);
  headStart.abandon();
}
