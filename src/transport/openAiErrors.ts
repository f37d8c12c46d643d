import type { ErrorCode } from '../domain/errors.ts';
import { HTTP_STATUS, toWireError } from './wireErrors.ts';
import type { WireError } from './wireErrors.ts';

/**
 * Errors on the OpenAI-compatible endpoints (`/v1`), in OpenAI's shape, so
 * its SDKs raise their typed errors: `{"error":{"message","type","param","code"}}`
 * where `code` is our stable error code. Statuses come from wireErrors.ts,
 * the one table for every wire format.
 */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: ErrorCode };
}

const TYPE_OVERRIDES: Partial<Record<ErrorCode, string>> = {
  busy: 'rate_limit_error',
  rate_limited: 'rate_limit_error',
  budget_exceeded: 'rate_limit_error',
};

function typeOf(code: ErrorCode, status: number): string {
  return TYPE_OVERRIDES[code] ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
}

export function openAiErrorBody(error: Pick<WireError, 'code' | 'message' | 'status'>): OpenAiErrorBody {
  return { error: { message: error.message, type: typeOf(error.code, error.status), param: null, code: error.code } };
}

/** Anything thrown, as an HTTP status and an OpenAI error body; internals never leak. */
export function toOpenAiError(error: unknown): { status: number; body: OpenAiErrorBody; internal: boolean } {
  const wire = toWireError(error);
  return { status: wire.status, body: openAiErrorBody(wire), internal: wire.code === 'internal_error' };
}

/** A failure reported on the bus (a reply that failed or was cancelled). */
export function openAiErrorFor(code: ErrorCode, message: string): { status: number; body: OpenAiErrorBody } {
  const status = HTTP_STATUS[code];
  return { status, body: openAiErrorBody({ code, message, status }) };
}
