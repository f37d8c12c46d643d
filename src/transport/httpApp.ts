import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import type { Logger } from '../domain/ports.ts';
import { noSuchRoute } from './allowedMethods.ts';
import type { Authenticator } from './authenticate.ts';
import type { CallerSessions } from './callerSessions.ts';
import { rejectHostileInput } from './inputRules.ts';
import { requestContext, requestLogger } from './requestContext.ts';
import { createRestRoutes } from './restRoutes.ts';
import type { SseStreams } from './sseRoute.ts';
import { httpErrorBody, httpErrorHeaders, isInternal, toWireError } from './wireErrors.ts';

export interface HttpAppOptions {
  sessions: CallerSessions;
  auth: Authenticator;
  sse: SseStreams;
  /** In front of the SSE handler: the caller, their session, their key's room for a stream. */
  sseAccess: (request: Request, response: Response, next: NextFunction) => Promise<void>;
  /** Routes under `/api` that need no API key (the page's sign-in). */
  authRoutes?: Router;
  logger: Logger;
  /** Largest JSON body in bytes (default 64 KiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** More routers, mounted in order before the not-found handler (`/v1`, `/api/status`, pages, operations; path `/` for root). */
  routers?: readonly { path: string; router: Router }[];
  /** Told of every error response (metrics). */
  onClientError?: (code: string) => void;
}

export function createHttpApp(options: HttpAppOptions): express.Express {
  const { sessions, sse, logger, auth } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestContext(logger));

  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  // Hostile input first (nothing is looked up for it), then who is asking.
  app.get('/sse/:sessionId', rejectHostileInput, options.sseAccess, sse.handler);
  app.use('/api', express.json({ limit: options.maxBodyBytes ?? 64 * 1024 }), rejectHostileInput);
  if (options.authRoutes) app.use('/api', options.authRoutes);
  app.use('/api', auth.guard(), createRestRoutes(sessions));
  for (const { path, router } of options.routers ?? []) app.use(path, router);

  app.use(noSuchRoute(app.router));

  // Every HTTP error leaves through here, in one JSON shape.
  app.use((error: unknown, request: Request, response: Response, _next: NextFunction) => {
    const wire = toWireError(error);
    options.onClientError?.(wire.code);
    if (isInternal(wire)) requestLogger(response, logger).error({ method: request.method, path: request.path, err: String(error) }, 'request failed');
    if (response.headersSent) {
      response.end();
      return;
    }
    response.status(wire.status).set(httpErrorHeaders(wire)).json(httpErrorBody(wire));
  });

  return app;
}
