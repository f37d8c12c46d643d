import { Router } from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { ChatError } from '../domain/errors.ts';
import { callerOf } from './authenticate.ts';
import type { CallerSessions } from './callerSessions.ts';

const modelName = z.string().min(1).max(128);
const messageBody = z.object({ text: z.string(), model: modelName.optional() });
const sessionBody = z.object({
  title: z.string().max(200).optional(),
  metadata: z.record(z.string(), z.json()).optional(),
  model: modelName.optional(),
});
const pageParams = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().min(1).max(200).optional(),
  order: z.enum(['asc', 'desc']).default('asc'),
});
const viewParams = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) });

function pageOf(request: Request) {
  const parsed = pageParams.safeParse(request.query);
  if (!parsed.success) throw new ChatError('bad_request', 'Expected limit 1–200, an opaque cursor, and order asc or desc.');
  return parsed.data;
}

const idOf = (request: Request) => String(request.params['sessionId']);

/**
 * The REST API under `/api`, behind the authenticator's guard: every route
 * acts for the caller it identified. Errors are thrown and mapped by the
 * app's error handler.
 */
export function createRestRoutes(sessions: CallerSessions): Router {
  const router = Router();

  router.post('/sessions', async (request: Request, response: Response) => {
    const parsed = sessionBody.safeParse(request.body ?? {});
    if (!parsed.success) throw new ChatError('bad_request', 'Expected an optional JSON body {"title"?: "…", "metadata"?: {…}, "model"?: "…"}.');
    const { title, metadata, model } = parsed.data;
    const session = await sessions.create(callerOf(response), {
      ...(title !== undefined ? { title } : {}),
      ...(metadata !== undefined ? { metadata } : {}),
      ...(model !== undefined ? { model } : {}),
    });
    response.status(201).location(`/api/sessions/${session.sessionId}`).json({ sessionId: session.sessionId });
  });

  router.get('/sessions', async (request: Request, response: Response) => {
    const { limit, cursor } = pageOf(request);
    response.json(await sessions.list(callerOf(response), { limit, ...(cursor !== undefined ? { cursor } : {}) }));
  });

  router.get('/sessions/:sessionId/messages', async (request: Request, response: Response) => {
    const { limit, cursor, order } = pageOf(request);
    response.json(await sessions.messages(callerOf(response), idOf(request), { limit, order, ...(cursor !== undefined ? { cursor } : {}) }));
  });

  router.get('/sessions/:sessionId', async (request: Request, response: Response) => {
    const parsed = viewParams.safeParse(request.query);
    if (!parsed.success) throw new ChatError('bad_request', 'Expected limit 1–200.');
    const session = await sessions.find(callerOf(response), idOf(request));
    response.json(await session.view(parsed.data.limit));
  });

  router.post('/sessions/:sessionId/messages', async (request: Request, response: Response) => {
    const parsed = messageBody.safeParse(request.body);
    if (!parsed.success) throw new ChatError('bad_request', 'Expected a JSON body {"text": "…", "model"?: "…"}.');
    const caller = callerOf(response);
    const session = await sessions.find(caller, idOf(request));
    // 202 only once the message is committed to the store.
    const accepted = await sessions.send(caller, session, parsed.data.text, parsed.data.model !== undefined ? { model: parsed.data.model } : undefined);
    response.status(202).json({ messageId: accepted.replyId, userMessageId: accepted.user.id, position: accepted.position });
  });

  router.post('/sessions/:sessionId/cancel', async (request: Request, response: Response) => {
    const session = await sessions.find(callerOf(response), idOf(request));
    response.json({ cancelled: await session.cancel() });
  });

  router.delete('/sessions/:sessionId', async (request: Request, response: Response) => {
    await sessions.remove(callerOf(response), idOf(request));
    response.status(204).end();
  });

  return router;
}
