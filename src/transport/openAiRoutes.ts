import express, { Router } from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { SessionHandle, Sessions } from '../actors/sessions.ts';
import { ChatError } from '../domain/errors.ts';
import type { Usage } from '../domain/message.ts';
import type { Clock, EventBus, Logger } from '../domain/ports.ts';
import type { Admission } from './admission.ts';
import { callerOf } from './authenticate.ts';
import type { Authenticator } from './authenticate.ts';
import type { CallerSessions } from './callerSessions.ts';
import { corkForThisTick } from './corkedSocket.ts';
import type { KeyConnections } from './keyConnections.ts';
import { followReply } from './followReply.ts';
import type { ReplyFollower } from './followReply.ts';
import { openAiErrorFor, toOpenAiError } from './openAiErrors.ts';
import { httpErrorHeaders, toWireError } from './wireErrors.ts';
import { rejectHostileInput } from './inputRules.ts';
import { parseChatRequest } from './openAiRequest.ts';
import type { ChatRequest } from './openAiRequest.ts';

export interface OpenAiRoutesOptions {
  registry: Sessions;
  /** The same rules as every other surface: the caller's key and sessions, its limits, load shedding. */
  auth: Authenticator;
  sessions: CallerSessions;
  /** A streamed response holds a connection: the node's cap and the key's `connections`. */
  admission: Admission;
  keyConnections: KeyConnections;
  /** A streamed response whose unsent bytes pass this is cut off (default 1 MiB). */
  maxBufferedBytes?: number;
  onSlowConsumer?: () => void;
  bus: EventBus;
  clock: Clock;
  logger: Logger;
  /** The model name shown on `/v1/models` and in every response. */
  model: string;
  maxBodyBytes?: number;
  /** While a streamed reply waits (queue, slow first token), a comment line goes out this often (default 15 s). */
  heartbeatMs?: number;
}

const usageJson = (usage: Usage) => ({
  prompt_tokens: usage.inputTokens,
  completion_tokens: usage.outputTokens,
  total_tokens: usage.inputTokens + usage.outputTokens,
});

/**
 * The OpenAI-compatible API: `POST /v1/chat/completions` (streamed as
 * data-only SSE ending in `data: [DONE]`, or one JSON body) and
 * `GET /v1/models`. Every request runs on a session actor: an ephemeral one
 * seeded with the request's messages (deleted when the request ends), or the
 * session named by `X-Session-Id`, whose history is the context and whose
 * watchers see the reply over WebSocket and SSE.
 */
export function createOpenAiRoutes(options: OpenAiRoutesOptions): Router {
  const { registry, bus, clock, logger, model, sessions, admission, keyConnections } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  const startedAt = Math.floor(clock.now() / 1000);
  const router = Router();
  // The key first (an OpenAI-shaped 401 before anything else is read), then the body.
  router.use(options.auth.guard());
  router.use(express.json({ limit: options.maxBodyBytes ?? 64 * 1024 }), rejectHostileInput);

  const modelJson = { id: model, object: 'model', created: startedAt, owned_by: 'llm-chat' };
  router.get('/models', (_request: Request, response: Response) => {
    response.json({ object: 'list', data: [modelJson] });
  });
  router.get('/models/:model', (request: Request, response: Response) => {
    if (request.params['model'] !== model) throw new ChatError('not_found', 'No such model.');
    response.json(modelJson);
  });

  router.post('/chat/completions', async (request: Request, response: Response) => {
    const caller = callerOf(response);
    const chat = parseChatRequest(request.body);
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
      const accepted = await sessions.send(caller, session, chat.prompt, chat.options);
      follower.track(accepted.replyId);
      const reply = { id: `chatcmpl-${accepted.replyId}`, created: Math.floor(clock.now() / 1000), model };
      if (chat.stream) await streamReply(response, follower, chat, reply, { heartbeatMs, maxBufferedBytes, onSlowConsumer: slowConsumer(response) });
      else await answerReply(response, follower, reply);
    } finally {
      finish();
    }
  });

  /** A streamed reply is a connection like a WebSocket's: it takes a slot of the node and of the key, until it ends. */
  const holdConnection = async (request: Request, response: Response, caller: ReturnType<typeof callerOf>) => {
    const release = await admission.admitConnection(request.socket.remoteAddress ?? 'unknown');
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
  const slowConsumer = (response: Response) => () => {
    options.onSlowConsumer?.();
    logger.warn({ buffered: response.writableLength }, 'closing slow /v1 stream consumer');
  };

  router.use((_request: Request, _response: Response, next: NextFunction) => next(new ChatError('not_found')));
  router.use((error: unknown, request: Request, response: Response, _next: NextFunction) => {
    const { status, body, internal } = toOpenAiError(error);
    if (internal) logger.error({ method: request.method, path: request.path, err: String(error) }, 'request failed');
    if (response.headersSent) {
      response.end();
      return;
    }
    // Retry-After with `rate_limited` and `overloaded`, as on every other surface (the SDK honours it).
    response.status(status).set(httpErrorHeaders(toWireError(error))).json(body);
  });
  return router;
}

interface ReplyIds {
  id: string;
  created: number;
  model: string;
}

/** The key of a streamed reply was revoked: an error frame (or a 401 before any), then the end. */
function revokeStream(response: Response): void {
  if (response.writableEnded) return;
  const { status, body } = openAiErrorFor('unauthorized', 'This API key was revoked.');
  if (response.headersSent) response.end(`data: ${JSON.stringify(body)}\n\n`);
  else response.status(status).json(body);
}

/** `stream: false`: one `chat.completion` body once the reply ends. */
async function answerReply(response: Response, follower: ReplyFollower, reply: ReplyIds): Promise<void> {
  let text = '';
  for await (const step of follower) {
    if (step.type === 'text') text += step.text;
    else if (step.type === 'failed') {
      const { status, body } = openAiErrorFor(step.code, step.message);
      if (!response.writableEnded) response.status(status).json(body);
      return;
    } else {
      if (response.writableEnded) return;
      response.json({
        id: reply.id,
        object: 'chat.completion',
        created: reply.created,
        model: reply.model,
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
        ...(step.usage ? { usage: usageJson(step.usage) } : {}),
      });
      return;
    }
  }
}

/**
 * `stream: true`: data-only SSE frames (never an `event:` line: the official
 * SDK would then yield raw events instead of chunks), ending in `data: [DONE]`.
 * Headers wait for the reply's first step, so a failure before any text still
 * gets its proper HTTP status; a reply that keeps the client waiting gets the
 * headers and comment lines after `heartbeatMs`.
 */
interface StreamLimits {
  heartbeatMs: number;
  maxBufferedBytes: number;
  onSlowConsumer: () => void;
}

async function streamReply(response: Response, follower: ReplyFollower, chat: ChatRequest, reply: ReplyIds, limits: StreamLimits): Promise<void> {
  const { heartbeatMs } = limits;
  const withUsage = chat.includeUsage ? { usage: null } : {};
  const frame = (choices: unknown[], extra: Record<string, unknown> = withUsage) =>
    `data: ${JSON.stringify({ id: reply.id, object: 'chat.completion.chunk', created: reply.created, model: reply.model, choices, ...extra })}\n\n`;
  const delta = (content: Record<string, unknown>, finishReason: string | null = null) =>
    frame([{ index: 0, delta: content, logprobs: null, finish_reason: finishReason }]);
  const write = (text: string) => {
    if (response.writableEnded || response.destroyed) return;
    corkForThisTick(response);
    response.write(text);
    // A reader that stopped reading is cut off, as on WebSocket and SSE; the follower then stops.
    // (Corked until the end of this turn: what is counted here is at most this turn's frames more.)
    if (response.writableLength > limits.maxBufferedBytes) {
      limits.onSlowConsumer();
      response.destroy();
    }
  };
  const open = () => {
    if (response.headersSent) return;
    response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    write(delta({ role: 'assistant', content: '' }));
  };
  const heartbeat = setInterval(() => {
    open();
    write(': waiting\n\n');
  }, heartbeatMs);
  heartbeat.unref();
  try {
    for await (const step of follower) {
      if (step.type === 'failed' && !response.headersSent) {
        const { status, body } = openAiErrorFor(step.code, step.message);
        response.status(status).json(body);
        return;
      }
      open();
      if (step.type === 'text') write(delta({ content: step.text }));
      else if (step.type === 'completed') {
        write(delta({}, 'stop'));
        if (chat.includeUsage && step.usage) write(frame([], { usage: usageJson(step.usage) }));
        write('data: [DONE]\n\n');
      } else {
        // The official SDK raises an APIError for a payload carrying `error`.
        write(`data: ${JSON.stringify(openAiErrorFor(step.code, step.message).body)}\n\n`);
      }
    }
  } finally {
    clearInterval(heartbeat);
    if (!response.writableEnded) response.end();
  }
}
