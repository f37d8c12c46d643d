import type { JsonValue } from './conversationRecord.ts';
import type { ErrorCode } from './errors.ts';
import type { MessageId, SessionId } from './ids.ts';
import type { FinishReason, ToolCall, Usage } from './message.ts';
import type { ToolCallDelta } from './toolCalls.ts';

/**
 * Domain events. They travel on the event bus, routed by session id, and the
 * transports turn them into WebSocket frames and SSE events.
 */
export interface SessionStartedEvent {
  readonly type: 'session.started';
  readonly sessionId: SessionId;
  /** True when an existing session came back from the store or a passivation. */
  readonly resumed: boolean;
}

export interface MessageAcceptedEvent {
  readonly type: 'message.accepted';
  readonly sessionId: SessionId;
  /** The id the reply streams under. */
  readonly messageId: MessageId;
  readonly userMessageId: MessageId;
  /** The user message's text ('' when the input is only tool results). */
  readonly text: string;
  /** 0 when generation starts at once, else the place in the queue. */
  readonly position: number;
  /** Tool results the input carried (they precede the user message, if any). */
  readonly toolResults?: readonly { readonly messageId: MessageId; readonly toolCallId: string }[];
}

export interface ChunkEvent {
  readonly type: 'chunk';
  readonly sessionId: SessionId;
  readonly messageId: MessageId;
  /** Rises by one per chunk across the whole session: the resume position. */
  readonly seq: number;
  readonly chunk: string;
  readonly is_last: boolean;
  /** On a reply's first chunk (or first tool-call fragment): the name of the model answering. */
  readonly model?: string;
  /** The model's log probabilities for this chunk's tokens, when the request asked for them (OpenAI's `logprobs.content`). */
  readonly logprobs?: readonly JsonValue[];
}

/** Fragments of the reply's tool calls, as the model streams them (between its chunks). */
export interface MessageToolCallsEvent {
  readonly type: 'message.tool_calls';
  readonly sessionId: SessionId;
  readonly messageId: MessageId;
  readonly toolCalls: readonly ToolCallDelta[];
  /** As on ChunkEvent: set when this is the reply's first output. */
  readonly model?: string;
}

export interface MessageCompletedEvent {
  readonly type: 'message.completed';
  readonly sessionId: SessionId;
  readonly messageId: MessageId;
  /** Tokens in and out: the model's own count, or the tokenizer's when it reported none. */
  readonly usage?: Usage;
  /** Why the model stopped. */
  readonly finishReason: FinishReason;
  /** The tool calls the model made, whole. */
  readonly toolCalls?: readonly ToolCall[];
  /** The name of the model that answered. */
  readonly model?: string;
}

export interface MessageCancelledEvent {
  readonly type: 'message.cancelled';
  readonly sessionId: SessionId;
  readonly messageId: MessageId;
}

export interface MessageFailedEvent {
  readonly type: 'message.failed';
  readonly sessionId: SessionId;
  readonly messageId: MessageId;
  readonly code: ErrorCode;
  readonly message: string;
  /** For `upstream_error`: the HTTP status the model's server answered with. */
  readonly upstreamStatus?: number;
  /** For `rate_limited` (the model's server said when): when trying again makes sense. */
  readonly retryAfterMs?: number;
}

/** The server stopped (shutdown deadline) while the reply streamed; the text so far is kept. */
export interface MessageInterruptedEvent {
  readonly type: 'message.interrupted';
  readonly sessionId: SessionId;
  readonly messageId: MessageId;
}

export interface SessionRestartedEvent {
  readonly type: 'session.restarted';
  readonly sessionId: SessionId;
  /** Restarts within the current supervision period, this one included. */
  readonly restarts: number;
}

/**
 * - `deleted`: the session was deleted.
 * - `restart_limit`: its actor failed more often than the restart policy allows.
 * - `crashed`: its supervisor itself failed (a bug); the session may be reopened.
 * - `shutdown`: the server is stopping; the session may be reopened elsewhere or later.
 * - `unavailable`: this node lost touch with the cluster (Redis) and let the
 *   session go, or can no longer follow it; reconnect (to any node) and resume.
 */
export type StopReason = 'deleted' | 'restart_limit' | 'crashed' | 'shutdown' | 'unavailable';

export interface SessionStoppedEvent {
  readonly type: 'session.stopped';
  readonly sessionId: SessionId;
  readonly reason: StopReason;
}

export type ChatEvent =
  | SessionStartedEvent
  | MessageAcceptedEvent
  | ChunkEvent
  | MessageToolCallsEvent
  | MessageCompletedEvent
  | MessageCancelledEvent
  | MessageFailedEvent
  | SessionRestartedEvent
  | SessionStoppedEvent
  | MessageInterruptedEvent;

export type ChatEventType = ChatEvent['type'];

/** The typed event map of the bus: event name → event. */
export type ChatEventMap = { [K in ChatEventType]: Extract<ChatEvent, { type: K }> };
