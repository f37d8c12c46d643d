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

/** A plain copy, safe to hand outside the entity that owns the message. */
export function copyMessage(message: Message): Message {
  return message.usage ? { ...message, usage: { ...message.usage } } : { ...message };
}
