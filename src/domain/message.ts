import type { JsonValue } from './conversationRecord.ts';
import type { MessageId } from './ids.ts';
import type { ErrorCode } from './errors.ts';

/** `tool`: the result of one of the model's tool calls, sent back by the client. */
export type Role = 'user' | 'assistant' | 'tool';

/**
 * - `queued`: a user message waiting for its turn.
 * - `streaming`: an assistant reply being generated.
 * - `complete` / `cancelled` / `failed`: final states; the text streamed so far is kept.
 * - `interrupted`: the server stopped (crash, shutdown deadline) while it streamed.
 */
export type MessageStatus = 'queued' | 'streaming' | 'complete' | 'cancelled' | 'failed' | 'interrupted';

/** Why the model stopped: the upstream's own word (OpenAI's `finish_reason`). */
export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

export const FINISH_REASONS: readonly FinishReason[] = ['stop', 'length', 'tool_calls', 'content_filter'];

/** Tokens of one reply: the model's own count when it reports one, else counted with the tokenizer. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/**
 * One part of a message's content, exactly as the client sent it (OpenAI's
 * content parts: `text`, `image_url`, `input_audio`, `file`). Kept as data
 * and sent to the model unchanged; only the text parts are read here.
 */
export type ContentPart = { readonly type: string } & { readonly [key: string]: JsonValue };

/** A function call the model asked for, in OpenAI's shape; `arguments` is the model's JSON text. */
export interface ToolCall {
  readonly id: string;
  readonly type: 'function';
  readonly function: { readonly name: string; readonly arguments: string };
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
  /** The text (for content given as parts: the text parts joined). */
  content: string;
  status: MessageStatus;
  readonly createdAt: number;
  updatedAt: number;
  /** For a reply: the message it answers (the user message, or the last tool result). */
  readonly replyTo?: MessageId;
  errorCode?: ErrorCode;
  usage?: Usage;
  /** For content sent as parts (images, audio, files): the parts as sent. */
  readonly parts?: readonly ContentPart[];
  /** For a reply: the tool calls the model made. */
  toolCalls?: readonly ToolCall[];
  /** For a `tool` message: the call it answers. */
  readonly toolCallId?: string;
  /** For a finished reply: why the model stopped. */
  finishReason?: FinishReason;
  /** For a reply: the name of the model that answered (after any fallback). */
  model?: string;
}

/** One turn of a conversation as a model sees it. */
export interface Turn {
  readonly role: Role;
  readonly content: string;
  readonly parts?: readonly ContentPart[];
  readonly toolCalls?: readonly ToolCall[];
  readonly toolCallId?: string;
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

/** A plain copy, safe to hand outside the entity that owns the message (parts and tool calls are immutable values). */
export function copyMessage(message: Message): Message {
  return message.usage ? { ...message, usage: { ...message.usage } } : { ...message };
}
