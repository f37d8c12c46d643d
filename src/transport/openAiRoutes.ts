import express, { Router } from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../domain/ports.ts';
import { noSuchRoute } from './allowedMethods.ts';
import { callerOf } from './authenticate.ts';
import { rejectHostileInput } from './inputRules.ts';
import { createCompletions } from './openAiCompletions.ts';
import type { CompletionsHandler, OpenAiCompletionsOptions } from './openAiCompletions.ts';
import { toOpenAiError } from './openAiErrors.ts';
import { requestLogger } from './requestContext.ts';
import { httpErrorHeaders, toWireError } from './wireErrors.ts';

export interface OpenAiRoutesOptions extends OpenAiCompletionsOptions {
  logger: Logger;
}

export interface OpenAiRoutes {
  /** Mounted at `/v1`. */
  router: Router;
  /** `POST /v1/chat/completions` without Express: the server hands that path to it first (openAiCompletions.ts). */
  completions: CompletionsHandler;
}

/**
 * The OpenAI-compatible API: `POST /v1/chat/completions` (openAiCompletions.ts)
 * and `GET /v1/models`, with errors in OpenAI's shape.
 */
export function createOpenAiRoutes(options: OpenAiRoutesOptions): OpenAiRoutes {
  const { clock, logger, sessions } = options;
  const startedAt = Math.floor(clock.now() / 1000);
  const router = Router();
  const completions = createCompletions(options);
  // Reached here only by spellings of the path the server does not hand over before Express
  // (openAiCompletions.ts); listed first, so its body is still unread and other methods get 405.
  router.post('/chat/completions', (request: Request, response: Response) => completions(request, response, requestLogger(response, logger)));
  // The key first (an OpenAI-shaped 401 before anything else is read), then the body.
  router.use(options.auth.guard());
  router.use(express.json({ limit: options.maxBodyBytes ?? 16 * 1024 * 1024 }), rejectHostileInput);

  // A key sees the models it may use (`limits.models`); the others do not exist for it.
  const modelJson = (id: string) => ({ id, object: 'model', created: startedAt, owned_by: 'llm-chat' });
  router.get('/models', (_request: Request, response: Response) => {
    response.json({ object: 'list', data: sessions.models(callerOf(response)).map(modelJson) });
  });
  router.get('/models/:model', (request: Request, response: Response) => {
    const name = String(request.params['model']);
    sessions.checkModel(callerOf(response), name);
    response.json(modelJson(name));
  });

  router.use(noSuchRoute(router));
  router.use((error: unknown, request: Request, response: Response, _next: NextFunction) => {
    const { status, body, internal } = toOpenAiError(error);
    if (internal) logger.error({ method: request.method, path: request.path, err: String(error) }, 'request failed');
    if (response.headersSent) {
      response.end();
      return;
    }
    // Retry-After with `rate_limited`, `budget_exceeded` and `overloaded`, as on every other surface (the SDK honours it).
    response.status(status).set(httpErrorHeaders(toWireError(error))).json(body);
  });
  return { router, completions };
}
