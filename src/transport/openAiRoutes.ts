import express, { Router } from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { SessionHandle, Sessions } from '../actors/sessions.ts';
import { noSuchRoute } from './allowedMethods.ts';
import type { Clock, EventBus, Logger } from '../domain/ports.ts';
import type { Admission } from './admission.ts';
import type { BufferBudget } from './bufferBudget.ts';
import { callerOf } from './authenticate.ts';
import type { Authenticator, Caller } from './authenticate.ts';
import type { CallerSessions } from './callerSessions.ts';
import type { KeyConnections } from './keyConnections.ts';
import { followReply } from './followReply.ts';
import { rejectHostileInput } from './inputRules.ts';
import { openAiErrorFor, toOpenAiError } from './openAiErrors.ts';
import { answerReply, streamReply } from './openAiReply.ts';
import { parseChatRequest } from './openAiRequest.ts';
import { httpErrorHeaders, toWireError } from './wireErrors.ts';
import { clientAddressOf } from './clientAddress.ts';

export interface OpenAiRoutesOptions {
  registry: Sessions;
  /** The same rules as every other surface: the caller's key and sessions, its limits and models, load shedding. */
  auth: Authenticator;
  sessions: CallerSessions;
  /** A streamed response holds a connection: the node's cap and the key's `connections`. */
  admission: Admission;
  keyConnections: KeyConnections;
  /** A streamed response whose unsent bytes pass this is cut off (default 1 MiB). */
  maxBufferedBytes?: number;
  onSlowConsumer?: () => void;
  /** The node-wide budget of unsent bytes (shared with WebSocket and SSE): a streamed reply reports to it. */
  budget: BufferBudget;
  bus: EventBus;
  clock: Clock;
  logger: Logger;
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
  const { registry, bus, clock, logger, sessions, admission, keyConnections } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  const startedAt = Math.floor(clock.now() / 1000);
  const router = Router();
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

  router.post('/chat/completions', async (request: Request, response: Response) => {
    const caller = callerOf(response);
    const chat = parseChatRequest(request.body);
    if (chat.model !== undefined) sessions.checkModel(caller, chat.model);
    const named = request.get('x-session-id');
    let session: SessionHandle | undefined;
    if (named !== undefined) {
      // Another key's session is answered exactly as a missing one.
      session = await sessions.find(caller, named);
      response.setHeader('X-Session-Id', session.sessionId);
    } else {
      session = await sessions.create(caller, { history: chat.history }, { ephemeral: true });
    }
    const ephemeral = named === undefined;
    const sessionId = session.sessionId;
    const follower = followReply(bus, sessionId);
    let finished = false;
    let releaseConnection = () => {};
    const finish = () => {
      if (finished) return;
      finished = true;
      releaseConnection();
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
      if (chat.stream) releaseConnection = await holdConnection(request, response, caller);
      // Across nodes the follower's subscription is asynchronous: it must be live before the reply can start.
      await bus.ready?.(sessionId);
      // Nothing of the response starts before the message is committed.
      const accepted = await sessions.send(caller, session, chat.input, chat.options);
      follower.track(accepted.replyId);
      const reply = { id: `chatcmpl-${accepted.replyId}`, created: Math.floor(clock.now() / 1000), model: chat.model ?? sessions.modelOf(session, caller) };
      if (chat.stream) {
        await streamReply(response, follower, reply, { includeUsage: chat.includeUsage, heartbeatMs, maxBufferedBytes, budget: options.budget, onSlowConsumer: slowConsumer(response) });
      } else await answerReply(response, follower, reply);
    } finally {
      finish();
    }
  });

  /** A streamed reply is a connection like a WebSocket's: it takes a slot of the node and of the key, until it ends. */
  const holdConnection = async (request: Request, response: Response, caller: Caller) => {
    const release = await admission.admitConnection(clientAddressOf(request));
    try {
      const untrack = keyConnections.open(caller, () => revokeStream(response));
      return () => {
        release();
        untrack();
      };
    } catch (error) {
      release();
      throw error;
    }
  };
  const slowConsumer = (response: Response) => (why: string) => {
    options.onSlowConsumer?.();
    logger.warn({ buffered: response.writableLength }, why);
  };

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
  return router;
}

/** The key of a streamed reply was revoked: an error frame (or a 401 before any), then the end. */
function revokeStream(response: Response): void {
  if (response.writableEnded) return;
  const { status, body } = openAiErrorFor('unauthorized', 'This API key was revoked.');
  if (response.headersSent) response.end(`data: ${JSON.stringify(body)}\n\n`);
  else response.status(status).json(body);
}
