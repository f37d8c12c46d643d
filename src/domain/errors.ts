/**
 * Every failure a client can see has a stable code. The transport layer maps a
 * code to an HTTP status, a WebSocket frame or close code and an SSE event in
 * one place (src/transport/wireErrors.ts); the domain only names it.
 */
export const ERROR_CODES = [
  'bad_request',
  'payload_too_large',
  'not_found',
  'session_not_found',
  'busy',
  'session_stopped',
  'provider_error',
  'overloaded',
  'internal_error',
  'store_unavailable',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Client-facing default messages: never leak internals through them. */
export const DEFAULT_ERROR_MESSAGES: Record<ErrorCode, string> = {
  bad_request: 'The request is malformed.',
  payload_too_large: 'The request is too large.',
  not_found: 'No such endpoint.',
  session_not_found: 'No session with this id.',
  busy: 'Too many messages are waiting in this session; try again when a reply has finished.',
  session_stopped: 'This session has been stopped.',
  provider_error: 'The model failed while generating this reply.',
  overloaded: 'The server is at capacity; try again later.',
  internal_error: 'Something went wrong on our side.',
  store_unavailable: 'Storage is unavailable right now; try again shortly.',
};

export class ChatError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string = DEFAULT_ERROR_MESSAGES[code], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChatError';
    this.code = code;
  }
}

export function isChatError(value: unknown): value is ChatError {
  return value instanceof ChatError;
}
