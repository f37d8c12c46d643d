import type { ErrorCode } from './errors.ts';
import type { MessageId, SessionId } from './ids.ts';
import type { Usage } from './message.ts';

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
  readonly text: string;
  /** 0 when generation starts at once, else the place in the queue. */
  readonly position: number;
}

export interface ChunkEvent {
  readonly type: 'chunk';
  readonly sessionId: SessionId;
  readonly messageId: MessageId;
  /** Rises by one per chunk across the whole session: the resume position. */
  readonly seq: number;
  readonly chunk: string;
  readonly is_last: boolean;
}

export interface MessageCompletedEvent {
  readonly type: 'message.completed';
  readonly sessionId: SessionId;
  readonly messageId: MessageId;
  /** Tokens in and out, when the model reported them. */
  readonly usage?: Usage;
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
  | MessageCompletedEvent
  | MessageCancelledEvent
  | MessageFailedEvent
  | SessionRestartedEvent
  | SessionStoppedEvent
  | MessageInterruptedEvent;

export type ChatEventType = ChatEvent['type'];

/** The typed event map of the bus: event name → event. */
export type ChatEventMap = { [K in ChatEventType]: Extract<ChatEvent, { type: K }> };
