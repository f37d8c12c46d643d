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
  'rate_limited',
  'internal_error',
  'upstream_error',
  'upstream_timeout',
  'upstream_unavailable',
  'cancelled',
  'unauthorized',
  'store_unavailable',
  'store_rejected',
  'forbidden',
  'unavailable',
  'model_not_found',
  'budget_exceeded',
  'method_not_allowed',
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
  rate_limited: 'Too many requests; try again later.',
  internal_error: 'Something went wrong on our side.',
  upstream_error: "The model's server failed to answer.",
  upstream_timeout: "The model's server took too long to answer.",
  upstream_unavailable: "The model's server is unavailable (too many recent failures); try again later.",
  cancelled: 'The reply was cancelled.',
  unauthorized: 'A valid API key is required.',
  store_unavailable: 'Storage is unavailable right now; try again shortly.',
  store_rejected: 'The store refused this content (for instance a character it cannot keep); nothing of it was kept.',
  forbidden: 'Requests from this origin are not allowed.',
  unavailable: 'The cluster is unreachable from this node right now; try again shortly.',
  model_not_found: 'No model with this name; GET /v1/models lists them.',
  budget_exceeded: "This key has used its tokens for today; try again after the budget resets.",
  method_not_allowed: 'This endpoint does not take this method; the Allow header lists those it takes.',
};

/**
 * Failures of the model's server: expected in operation, so they end the
 * reply as `failed` without crashing (and restarting) the session actor.
 */
export const UPSTREAM_ERROR_CODES: readonly ErrorCode[] = ['upstream_error', 'upstream_timeout', 'upstream_unavailable'];

/**
 * True for an expected failure of the model's server (the reply fails, the
 * session goes on): the upstream codes, and `rate_limited` when it is the
 * model's server that limits us (a 429 it answered, `upstreamStatus` set).
 */
export function isUpstreamFailure(error: unknown): error is ChatError {
  if (!isChatError(error)) return false;
  return UPSTREAM_ERROR_CODES.includes(error.code) || (error.code === 'rate_limited' && error.upstreamStatus !== undefined);
}

export interface ChatErrorOptions {
  cause?: unknown;
  /** For `rate_limited` and `overloaded`: when trying again makes sense. */
  retryAfterMs?: number;
  /** For `upstream_error`: the HTTP status the model's server answered with, when it answered. */
  upstreamStatus?: number;
  /** For `budget_exceeded`: when the budget resets (ms since the epoch). */
  resetsAt?: number;
  /** For `method_not_allowed`: the methods the endpoint takes. */
  allow?: readonly string[];
}

export class ChatError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs: number | undefined;
  /** For `upstream_error`: the HTTP status the model's server answered with, when it answered. */
  readonly upstreamStatus?: number;
  /** For `budget_exceeded`: when the budget resets. */
  readonly resetsAt?: number;
  /** For `method_not_allowed`: the methods the endpoint takes. */
  readonly allow?: readonly string[];

  constructor(code: ErrorCode, message: string = DEFAULT_ERROR_MESSAGES[code], options: ChatErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChatError';
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
    if (options.upstreamStatus !== undefined) this.upstreamStatus = options.upstreamStatus;
    if (options.resetsAt !== undefined) this.resetsAt = options.resetsAt;
    if (options.allow !== undefined) this.allow = options.allow;
  }
}

export function isChatError(value: unknown): value is ChatError {
  return value instanceof ChatError;
}
