import express, { Router } from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { SessionHandle, Sessions } from '../actors/sessions.ts';
import { ChatError } from '../domain/errors.ts';
import type { Usage } from '../domain/message.ts';
import type { Clock, EventBus, Logger } from '../domain/ports.ts';
import { followReply } from './followReply.ts';
import type { ReplyFollower } from './followReply.ts';
import { openAiErrorFor, toOpenAiError } from './openAiErrors.ts';
import { rejectHostileInput } from './inputRules.ts';
import { parseChatRequest } from './openAiRequest.ts';
import type { ChatRequest } from './openAiRequest.ts';

export interface OpenAiRoutesOptions {
  registry: Sessions;
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
  const { registry, bus, clock, logger, model } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const startedAt = Math.floor(clock.now() / 1000);
  const router = Router();
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
    const chat = parseChatRequest(request.body);
    const named = request.get('x-session-id');
    let session: SessionHandle | undefined;
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
      // Across nodes the follower's subscription is asynchronous: it must be live before the reply can start.
      await bus.ready?.(sessionId);
      if (finished) return;
      const accepted = await session.send(chat.prompt, chat.options);
      follower.track(accepted.replyId);
      const reply = { id: `chatcmpl-${accepted.replyId}`, created: Math.floor(clock.now() / 1000), model };
      if (chat.stream) await streamReply(response, follower, chat, reply, heartbeatMs);
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
    response.status(status).json(body);
  });
  return router;
}

interface ReplyIds {
  id: string;
  created: number;
  model: string;
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
async function streamReply(response: Response, follower: ReplyFollower, chat: ChatRequest, reply: ReplyIds, heartbeatMs: number): Promise<void> {
  const withUsage = chat.includeUsage ? { usage: null } : {};
  const frame = (choices: unknown[], extra: Record<string, unknown> = withUsage) =>
    `data: ${JSON.stringify({ id: reply.id, object: 'chat.completion.chunk', created: reply.created, model: reply.model, choices, ...extra })}\n\n`;
  const delta = (content: Record<string, unknown>, finishReason: string | null = null) =>
    frame([{ index: 0, delta: content, logprobs: null, finish_reason: finishReason }]);
  const write = (text: string) => {
    if (!response.writableEnded && !response.destroyed) response.write(text);
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
