import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionHandle, Sessions } from '../actors/sessions.ts';
import type { Clock, EventBus, Logger } from '../domain/ports.ts';
import type { Admission } from './admission.ts';
import type { Authenticator, Caller } from './authenticate.ts';
import type { BufferBudget } from './bufferBudget.ts';
import type { CallerSessions } from './callerSessions.ts';
import { clientAddressOf } from './clientAddress.ts';
import { followReply } from './followReply.ts';
import { readJsonBody } from './jsonBody.ts';
import { sendJson } from './jsonResponse.ts';
import type { KeyConnections } from './keyConnections.ts';
import { openAiErrorFor, toOpenAiError } from './openAiErrors.ts';
import { answerReply, streamReply } from './openAiReply.ts';
import { parseChatRequest } from './openAiRequest.ts';
import { httpErrorHeaders, toWireError } from './wireErrors.ts';

export interface OpenAiCompletionsOptions {
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
  /** Largest request body (default 16 MiB: images and audio come inline). */
  maxBodyBytes?: number;
  /** While a streamed reply waits (queue, slow first token), a comment line goes out this often (default 15 s). */
  heartbeatMs?: number;
}

/** Serves one `POST /v1/chat/completions`; `logger` is the request's own (requestContext.ts). Never rejects. */
export type CompletionsHandler = (request: IncomingMessage, response: ServerResponse, logger: Logger) => Promise<void>;

/**
 * `POST /v1/chat/completions` on plain `node:http`: streamed as data-only
 * SSE ending in `data: [DONE]`, or one JSON body. Every request runs on a
 * session actor: an ephemeral one seeded with the request's messages
 * (deleted when the request ends), or the session named by `X-Session-Id`,
 * whose history is the context and whose watchers see the reply over
 * WebSocket and SSE. Errors leave in OpenAI's shape (openAiErrors.ts).
 * Not an Express route: Express's request and response set-up, its router
 * and body parser were 31% of this endpoint's server CPU (bench/gatewayAb.ts,
 * streamed requests against a fast upstream, interleaved: 0.525 → 0.362 ms
 * per request at 32 concurrent, 0.535 → 0.367 ms at 4). The server calls it
 * before Express; `/v1`'s router (openAiRoutes.ts) answers other spellings of
 * the path (a trailing slash, capitals) with it too.
 */
export function createCompletions(options: OpenAiCompletionsOptions): CompletionsHandler {
  const { registry, bus, clock, sessions, admission, keyConnections } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  const maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;

  /** A streamed reply is a connection like a WebSocket's: it takes a slot of the node and of the key, until it ends. */
  const holdConnection = async (request: IncomingMessage, response: ServerResponse, caller: Caller) => {
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

  const serve = async (request: IncomingMessage, response: ServerResponse, logger: Logger): Promise<void> => {
    // The key first (an OpenAI-shaped 401 before anything else is read), then the body.
    const caller = await options.auth.identify(request);
    const body = await readJsonBody(request, maxBodyBytes);
    // The client went away while its body was being read: nothing is asked.
    if (request.destroyed && !request.complete) return;
    const chat = parseChatRequest(body);
    if (chat.model !== undefined) sessions.checkModel(caller, chat.model);
    const named = request.headers['x-session-id'];
    let session: SessionHandle;
    if (typeof named === 'string') {
      // Another key's session is answered exactly as a missing one.
      session = await sessions.find(caller, named);
      response.setHeader('X-Session-Id', session.sessionId);
    } else {
      session = await sessions.create(caller, { history: chat.history }, { ephemeral: true });
    }
    const ephemeral = typeof named !== 'string';
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
      if (chat.stream) {
        const release = await holdConnection(request, response, caller);
        // The client left while the slot was being taken (a Redis-backed limit answers later): it goes back now.
        if (finished) {
          release();
          return;
        }
        releaseConnection = release;
      }
      // Across nodes the follower's subscription is asynchronous: it must be live before the reply can start.
      await bus.ready?.(sessionId);
      // Nothing of the response starts before the message is committed.
      const accepted = await sessions.send(caller, session, chat.input, chat.options);
      follower.track(accepted.replyId);
      const reply = { id: `chatcmpl-${accepted.replyId}`, created: Math.floor(clock.now() / 1000), model: chat.model ?? sessions.modelOf(session, caller) };
      if (chat.stream) {
        await streamReply(response, follower, reply, { includeUsage: chat.includeUsage, heartbeatMs, maxBufferedBytes, budget: options.budget, onSlowConsumer: slowConsumer(response, logger) });
      } else await answerReply(response, follower, reply);
    } finally {
      finish();
    }
  };

  const slowConsumer = (response: ServerResponse, logger: Logger) => (why: string) => {
    options.onSlowConsumer?.();
    logger.warn({ buffered: response.writableLength }, why);
  };

  return (request, response, logger) =>
    serve(request, response, logger).catch((error: unknown) => {
      // Every failure of this endpoint leaves here, in OpenAI's shape (Retry-After with
      // `rate_limited`, `budget_exceeded` and `overloaded`, as on every other surface: the SDK honours it).
      const { status, body, internal } = toOpenAiError(error);
      if (internal) logger.error({ method: request.method, path: '/v1/chat/completions', err: String(error) }, 'request failed');
      if (response.headersSent) {
        response.end();
        return;
      }
      sendJson(response, status, body, httpErrorHeaders(toWireError(error)));
    });
}

/** The key of a streamed reply was revoked: an error frame (or a 401 before any), then the end. */
function revokeStream(response: ServerResponse): void {
  if (response.writableEnded) return;
  const { status, body } = openAiErrorFor('unauthorized', 'This API key was revoked.');
  if (response.headersSent) response.end(`data: ${JSON.stringify(body)}\n\n`);
  else sendJson(response, status, body);
}

/** Whether `server.ts` hands this request to the completions handler before Express (other spellings of the path reach it through `/v1`'s router). */
export function isCompletionsRequest(request: IncomingMessage): boolean {
  if (request.method !== 'POST') return false;
  const url = request.url ?? '';
  return url === '/v1/chat/completions' || url.startsWith('/v1/chat/completions?');
}
