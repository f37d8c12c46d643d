import type { MessageId } from './ids.ts';
import type { ErrorCode } from './errors.ts';

export type Role = 'user' | 'assistant';

/**
 * - `queued`: a user message waiting for its turn.
 * - `streaming`: an assistant reply being generated.
 * - `complete` / `cancelled` / `failed`: final states; the text streamed so far is kept.
 * - `interrupted`: the server stopped (crash, shutdown deadline) while it streamed.
 */
export type MessageStatus = 'queued' | 'streaming' | 'complete' | 'cancelled' | 'failed' | 'interrupted';

/** Tokens the model reported for one reply, when it reports them. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface Message {
  readonly id: MessageId;
  /**
   * The message's place in its conversation, unique in the session: a user
   * message takes an even number when it is accepted, its reply the odd one
   * right after it, so history reads q1 a1 q2 a2 … however replies and
   * queued messages interleave in time. Stores page by it; never sent.
   */
  readonly order: number;
  readonly role: Role;
  content: string;
  status: MessageStatus;
  readonly createdAt: number;
  updatedAt: number;
  /** For a reply: the user message it answers. */
  readonly replyTo?: MessageId;
  errorCode?: ErrorCode;
  usage?: Usage;
}

/** One turn of a conversation as a model sees it. */
export interface Turn {
  readonly role: Role;
  readonly content: string;
}

/** A message as clients see it: everything but the internal ordering key. */
export type PublicMessage = Omit<Message, 'order'>;

export function publicMessage(message: Message): PublicMessage {
  const { order: _order, ...rest } = message;
  return rest;
}

/** Replaces U+0000, which PostgreSQL cannot keep in text, by U+FFFD (same length, so chunk offsets hold). */
export function withoutNul(text: string): string {
  return text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text;
}

/** A plain copy, safe to hand outside the entity that owns the message. */
export function copyMessage(message: Message): Message {
  return message.usage ? { ...message, usage: { ...message.usage } } : { ...message };
}
