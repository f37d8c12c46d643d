import { DEFAULT_ERROR_MESSAGES, isChatError } from '../domain/errors.ts';
import type { ErrorCode } from '../domain/errors.ts';

/**
 * The one place where failures become wire output: HTTP status and JSON body,
 * WebSocket error frame, SSE event. Anything that is not a ChatError is an
 * internal error and its message never reaches the client.
 */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  payload_too_large: 413,
  not_found: 404,
  session_not_found: 404,
  busy: 409,
  session_stopped: 409,
  provider_error: 502,
  overloaded: 503,
  rate_limited: 429,
  internal_error: 500,
  upstream_error: 502,
  upstream_timeout: 504,
  upstream_unavailable: 503,
  // Google's API mapping of CANCELLED ("client closed request"): the reply was stopped on purpose.
  cancelled: 499,
  unauthorized: 401,
  store_unavailable: 503,
  // The content, not the server, is the problem: resending it unchanged fails again.
  store_rejected: 422,
  forbidden: 403,
  unavailable: 503,
  model_not_found: 404,
  budget_exceeded: 429,
  method_not_allowed: 405,
};

/** WebSocket close codes we use (4000–4999 are ours by RFC 6455). */
export const WS_CLOSE = {
  normal: 1000,
  goingAway: 1001,
  tooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  unauthorized: 4401,
  sessionNotFound: 4404,
  sessionDeleted: 4410,
} as const;

export interface WireError {
  code: ErrorCode;
  message: string;
  status: number;
  /** Sent as `Retry-After` (whole seconds) over HTTP and `retryAfterMs` in frames. */
  retryAfterMs?: number;
  /** For `budget_exceeded`: when the budget resets (ms since the epoch). */
  resetsAt?: number;
  /** For `method_not_allowed`: sent as `Allow`. */
  allow?: readonly string[];
}

interface BodyParserError {
  type?: string;
  status?: number;
}

/** Normalises anything thrown into a client-safe error. */
export function toWireError(error: unknown): WireError {
  if (isChatError(error)) {
    const wire: WireError = { code: error.code, message: error.message, status: HTTP_STATUS[error.code] };
    if (error.retryAfterMs !== undefined) wire.retryAfterMs = error.retryAfterMs;
    if (error.resetsAt !== undefined) wire.resetsAt = error.resetsAt;
    if (error.allow !== undefined) wire.allow = error.allow;
    return wire;
  }
  const parserError = (error ?? {}) as BodyParserError;
  if (parserError.type === 'entity.too.large') return fromCode('payload_too_large');
  if (parserError.type === 'entity.parse.failed') return fromCode('bad_request', 'The body is not valid JSON.');
  if (typeof parserError.status === 'number' && parserError.status >= 400 && parserError.status < 500) {
    return fromCode('bad_request');
  }
  return fromCode('internal_error');
}

function fromCode(code: ErrorCode, message: string = DEFAULT_ERROR_MESSAGES[code]): WireError {
  return { code, message, status: HTTP_STATUS[code] };
}

export function httpErrorBody(error: WireError): { error: { code: ErrorCode; message: string; retryAfterMs?: number; resetsAt?: number } } {
  return { error: { code: error.code, message: error.message, ...retryField(error) } };
}

/** Headers that go with an HTTP error response. */
export function httpErrorHeaders(error: WireError): Record<string, string> {
  return {
    ...(error.retryAfterMs === undefined ? {} : { 'Retry-After': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) }),
    ...(error.allow === undefined ? {} : { Allow: error.allow.join(', ') }),
  };
}

export function wsErrorFrame(error: WireError, messageId?: string): string {
  return JSON.stringify({ type: 'error', code: error.code, message: error.message, ...retryField(error), ...(messageId ? { messageId } : {}) });
}

function retryField(error: WireError): { retryAfterMs?: number; resetsAt?: number } {
  return {
    ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
    ...(error.resetsAt === undefined ? {} : { resetsAt: error.resetsAt }),
  };
}

export function isInternal(error: WireError): boolean {
  return error.code === 'internal_error';
}

