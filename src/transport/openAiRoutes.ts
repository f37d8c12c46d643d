import express, { Router } from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { LiveSession } from '../actors/liveSession.ts';
import type { SessionRegistry } from '../actors/sessionRegistry.ts';
import { ChatError } from '../domain/errors.ts';
import type { Clock, EventBus, Logger } from '../domain/ports.ts';
import type { ModelCatalog } from '../model.ts';
import { followReply } from './followReply.ts';
import { rejectHostileInput } from './inputRules.ts';
import { toOpenAiError } from './openAiErrors.ts';
import { answerReply, streamReply } from './openAiReply.ts';
import { parseChatRequest } from './openAiRequest.ts';
import { httpErrorHeaders, toWireError } from './wireErrors.ts';

export interface OpenAiRoutesOptions {
  registry: SessionRegistry;
  bus: EventBus;
  clock: Clock;
  logger: Logger;
  /** The configured models: `/v1/models` lists them, a request's `model` picks one. */
  models: ModelCatalog;
  /** Largest request body (default 16 MiB: images and audio come inline). */
  maxBodyBytes?: number;
  /** While a streamed reply waits (queue, slow first token), a comment line goes out this often (default 15 s). */
  heartbeatMs?: number;
}

/**
 * The OpenAI-compatible API: `POST /v1/chat/completions` (streamed as
 * data-only SSE ending in `data: [DONE]`, or one JSON body) and
 * `GET /v1/models`. Every request runs on a session actor: an ephemeral one
 * seeded with the request's messages (deleted when the request ends), or the
 * session named by `X-Session-Id`, whose history is the context and whose
 * watchers see the reply over WebSocket and SSE.
 */
export function createOpenAiRoutes(options: OpenAiRoutesOptions): Router {
  const { registry, bus, clock, logger, models } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const startedAt = Math.floor(clock.now() / 1000);
  const router = Router();
  router.use(express.json({ limit: options.maxBodyBytes ?? 16 * 1024 * 1024 }), rejectHostileInput);

  const modelJson = (id: string) => ({ id, object: 'model', created: startedAt, owned_by: 'llm-chat' });
  router.get('/models', (_request: Request, response: Response) => {
    response.json({ object: 'list', data: models.names.map(modelJson) });
  });
  router.get('/models/:model', (request: Request, response: Response) => {
    const name = String(request.params['model']);
    if (!models.has(name)) throw new ChatError('model_not_found');
    response.json(modelJson(name));
  });

  router.post('/chat/completions', async (request: Request, response: Response) => {
    const chat = parseChatRequest(request.body);
    if (chat.model !== undefined && !models.has(chat.model)) throw new ChatError('model_not_found', `No model named "${chat.model}"; GET /v1/models lists them.`);
    const named = request.get('x-session-id');
    let session: LiveSession | undefined;
    if (named !== undefined) {
      session = await registry.find(named);
      if (!session) throw new ChatError('session_not_found');
      response.setHeader('X-Session-Id', session.sessionId);
    } else {
      session = await registry.create({ history: chat.history });
    }
    const ephemeral = named === undefined;
    const sessionId = session.sessionId;
    const follower = followReply(bus, sessionId);
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      follower.stop();
      // An ephemeral session has no other watcher and is never reused: deleting
      // it also cancels a generation nobody will read. A named one goes on.
      if (ephemeral) registry.remove(sessionId).catch((error: unknown) => logger.error({ sessionId, err: String(error) }, 'removing an ephemeral session failed'));
    };
    response.on('close', finish);
    // A client gone while the session was being found or created asks for nothing.
    if (request.socket.destroyed) finish();
    try {
      if (finished) return;
      // Nothing of the response starts before the message is committed.
      const accepted = await session.send(chat.input, chat.options);
      follower.track(accepted.replyId);
      const reply = { id: `chatcmpl-${accepted.replyId}`, created: Math.floor(clock.now() / 1000), model: chat.model ?? session.model ?? models.defaultModel };
      if (chat.stream) await streamReply(response, follower, reply, { includeUsage: chat.includeUsage, heartbeatMs });
      else await answerReply(response, follower, reply);
    } finally {
      finish();
    }
  });

  router.use((_request: Request, _response: Response, next: NextFunction) => next(new ChatError('not_found')));
  router.use((error: unknown, request: Request, response: Response, _next: NextFunction) => {
    const { status, body, internal } = toOpenAiError(error);
    if (internal) logger.error({ method: request.method, path: request.originalUrl, err: String(error) }, 'request failed');
    if (response.headersSent) {
      response.end();
      return;
    }
    response.status(status).set(httpErrorHeaders(toWireError(error))).json(body);
  });
  return router;
}
