import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { withFields } from '../domain/ports.ts';
import type { Logger } from '../domain/ports.ts';
import { randomTokens } from '../infra/randomTokens.ts';

/** A client's own request id is kept when it is short and plain; anything else is replaced. */
const CLIENT_ID = /^[\w.:-]{1,64}$/;

/** A short random id for a request or a connection (12 base64url characters). */
export const newRequestId = randomTokens(9);

/** The request-scoped logger set by `requestContext`, or the given fallback. */
export function requestLogger(response: Response, fallback: Logger): Logger {
  const logger: unknown = response.locals['logger'];
  return logger === undefined ? fallback : (logger as Logger);
}

/**
 * Gives a request its id (`X-Request-Id`, the client's own if short and
 * plain, echoed back) and a logger that writes it on every line, and logs the
 * request when it ends (at debug: errors are logged where they are handled).
 * Returns the scoped logger. For handlers that run without Express too.
 */
export function beginRequest(request: IncomingMessage, response: ServerResponse, logger: Logger, now: () => number = Date.now): Logger {
  const offered = request.headers['x-request-id'];
  const requestId = typeof offered === 'string' && CLIENT_ID.test(offered) ? offered : newRequestId();
  response.setHeader('X-Request-Id', requestId);
  const startedAt = now();
  // Read now: routers mounted on a prefix rewrite the URL to their own part. Ids in it are cut short by the logger.
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  response.on('close', () => {
    // The unscoped logger: a level that hides this line then costs no child logger.
    logger.debug({ requestId, method: request.method, path, status: response.statusCode, ms: now() - startedAt }, 'request');
  });
  return withFields(logger, { requestId });
}

/** `beginRequest` as Express middleware: the scoped logger is `requestLogger`'s. */
export function requestContext(logger: Logger, now: () => number = Date.now) {
  return (request: Request, response: Response, next: NextFunction) => {
    response.locals['logger'] = beginRequest(request, response, logger, now);
    next();
  };
}
