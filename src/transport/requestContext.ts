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
 * Gives every request an id (`X-Request-Id`, echoed back) and a logger that
 * writes it on every line, and logs each request when it ends (at debug:
 * errors are logged where they are handled).
 */
export function requestContext(logger: Logger, now: () => number = Date.now) {
  return (request: Request, response: Response, next: NextFunction) => {
    const offered = request.get('x-request-id');
    const requestId = offered !== undefined && CLIENT_ID.test(offered) ? offered : newRequestId();
    const scoped = withFields(logger, { requestId });
    response.locals['logger'] = scoped;
    response.setHeader('X-Request-Id', requestId);
    const startedAt = now();
    // Read now: routers mounted on a prefix rewrite it to their own part. Ids in it are cut short by the logger.
    const path = request.path;
    response.on('close', () => {
      // The unscoped logger: a level that hides this line then costs no child logger.
      logger.debug({ requestId, method: request.method, path, status: response.statusCode, ms: now() - startedAt }, 'request');
    });
    next();
  };
}
