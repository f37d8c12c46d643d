import { randomFillSync } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { withFields } from '../domain/ports.ts';
import type { Logger } from '../domain/ports.ts';

/** A client's own request id is kept when it is short and plain; anything else is replaced. */
const CLIENT_ID = /^[\w.:-]{1,64}$/;

const ID_BYTES = 9;
const POOL_IDS = 256;
const pool = Buffer.alloc(ID_BYTES * POOL_IDS);
let next = POOL_IDS;

/**
 * A short random id for a request or a connection (12 base64url characters).
 * Random bytes are drawn for 256 ids at a time: `randomBytes(9)` per request
 * was 1% of a streamed /v1 request's CPU.
 */
export function newRequestId(): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const start = next * ID_BYTES;
  next += 1;
  return pool.toString('base64url', start, start + ID_BYTES);
}

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
