import { Router } from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { Sessions } from '../actors/sessions.ts';
import { ChatError } from '../domain/errors.ts';
import type { Admission } from './admission.ts';

const messageBody = z.object({ text: z.string() });
const sessionBody = z.object({
  title: z.string().max(200).optional(),
  metadata: z.record(z.string(), z.json()).optional(),
});
const pageParams = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().min(1).max(200).optional(),
  order: z.enum(['asc', 'desc']).default('asc'),
});

function pageOf(request: Request) {
  const parsed = pageParams.safeParse(request.query);
  if (!parsed.success) throw new ChatError('bad_request', 'Expected limit 1–200, an opaque cursor, and order asc or desc.');
  return parsed.data;
}

async function sessionOf(registry: Sessions, request: Request) {
  const session = await registry.find(String(request.params['sessionId']));
  if (!session) throw new ChatError('session_not_found');
  return session;
}

/** The REST API under `/api`. Errors are thrown and mapped by the app's error handler. */
export function createRestRoutes(registry: Sessions, admission: Admission): Router {
  const router = Router();

  router.post('/sessions', async (request: Request, response: Response) => {
    admission.admitWork();
    const parsed = sessionBody.safeParse(request.body ?? {});
    if (!parsed.success) throw new ChatError('bad_request', 'Expected an optional JSON body {"title"?: "…", "metadata"?: {…}}.');
    const { title, metadata } = parsed.data;
    const session = await registry.create({ ...(title !== undefined ? { title } : {}), ...(metadata !== undefined ? { metadata } : {}) });
    response.status(201).location(`/api/sessions/${session.sessionId}`).json({ sessionId: session.sessionId });
  });

  router.get('/sessions', async (request: Request, response: Response) => {
    const { limit, cursor } = pageOf(request);
    response.json(await registry.listSessions({ limit, ...(cursor !== undefined ? { cursor } : {}) }));
  });

  router.get('/sessions/:sessionId/messages', async (request: Request, response: Response) => {
    const { limit, cursor, order } = pageOf(request);
    const page = await registry.listMessages(String(request.params['sessionId']), {
      limit,
      order,
      ...(cursor !== undefined ? { cursor } : {}),
    });
    if (!page) throw new ChatError('session_not_found');
    response.json(page);
  });

  router.get('/sessions/:sessionId', async (request: Request, response: Response) => {
    const session = await sessionOf(registry, request);
    response.json(await session.view());
  });

  router.post('/sessions/:sessionId/messages', async (request: Request, response: Response) => {
    const parsed = messageBody.safeParse(request.body);
    if (!parsed.success) throw new ChatError('bad_request', 'Expected a JSON body {"text": "…"}.');
    const session = await sessionOf(registry, request);
    await admission.admitMessage(session.sessionId);
    const accepted = await session.send(parsed.data.text);
    response.status(202).json({ messageId: accepted.replyId, userMessageId: accepted.user.id, position: accepted.position });
  });

  router.post('/sessions/:sessionId/cancel', async (request: Request, response: Response) => {
    const session = await sessionOf(registry, request);
    response.json({ cancelled: await session.cancel() });
  });

  router.delete('/sessions/:sessionId', async (request: Request, response: Response) => {
    const removed = await registry.remove(String(request.params['sessionId']));
    if (!removed) throw new ChatError('session_not_found');
    response.status(204).end();
  });

  return router;
}
