import express, { Router } from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { KeyRing } from '../actors/keyRing.ts';
import { ChatError } from '../domain/errors.ts';
import type { Logger } from '../domain/ports.ts';
import { adminGuard } from './adminGuard.ts';
import { requestLogger } from './requestContext.ts';

export interface AdminRoutesOptions {
  ring: KeyRing;
  logger: Logger;
  /** Every request must carry `Authorization: Bearer <adminToken>`; API keys never pass. */
  adminToken: string;
  maxBodyBytes?: number;
}

const limit = z.number().int().min(0).max(1_000_000_000);
const name = z.string().trim().min(1).max(100);
const limitsBody = z
  .object({ messagesPerMinute: limit, liveSessions: limit, connections: limit, sessionsPerMinute: limit })
  .partial()
  .strict();
const patchLimitsBody = z
  .object({
    messagesPerMinute: limit.nullable(),
    liveSessions: limit.nullable(),
    connections: limit.nullable(),
    sessionsPerMinute: limit.nullable(),
  })
  .partial()
  .strict();
const createBody = z.object({ name, limits: limitsBody.optional() }).strict();
const patchBody = z.object({ name: name.optional(), limits: patchLimitsBody.optional() }).strict();
const KEY_ID = /^key_[A-Za-z0-9_-]{12}$/;

const LIMITS_HINT =
  '"limits" takes messagesPerMinute, liveSessions, connections and sessionsPerMinute, each a whole number (0 = no limit)';

function parse<T>(schema: z.ZodType<T>, body: unknown, hint: string): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
    throw new ChatError('bad_request', `Invalid body${where}: ${issue?.message ?? 'malformed'}. Expected ${hint}.`);
  }
  return parsed.data;
}

/**
 * `/admin/keys`: create (the only answer that carries the key), list, change
 * and revoke API keys, behind the admin token.
 */
export function createAdminRoutes(options: AdminRoutesOptions): Router {
  const { ring, logger } = options;
  const router = Router();
  router.use('/admin', adminGuard(options.adminToken), express.json({ limit: options.maxBodyBytes ?? 64 * 1024 }), (_request, response, next) => {
    response.setHeader('Cache-Control', 'no-store');
    next();
  });
  const idOf = (request: Request) => {
    const id = String(request.params['id']);
    if (!KEY_ID.test(id)) throw new ChatError('not_found', 'No key with this id.');
    return id;
  };

  router.post('/admin/keys', async (request: Request, response: Response) => {
    const body = parse(createBody, request.body, `{"name": "…", "limits"?: {…}}; ${LIMITS_HINT}`);
    const { key, view } = await ring.create({ name: body.name, ...(body.limits ? { limits: body.limits } : {}) });
    requestLogger(response, logger).info({ keyId: view.id, name: view.name }, 'API key created');
    response.status(201).location(`/admin/keys/${view.id}`).json({ id: view.id, name: view.name, key });
  });

  router.get('/admin/keys', async (_request: Request, response: Response) => {
    response.json({ keys: await ring.list() });
  });

  router.patch('/admin/keys/:id', async (request: Request, response: Response) => {
    const id = idOf(request);
    const body = parse(patchBody, request.body, `{"name"?: "…", "limits"?: {…}}; ${LIMITS_HINT}, or null to go back to the default`);
    const view = await ring.update(id, {
      ...(body.name !== undefined ? { name: body.name } : {}),
      ...(body.limits !== undefined ? { limits: body.limits } : {}),
    });
    if (!view) throw new ChatError('not_found', 'No key with this id.');
    response.json(view);
  });

  router.delete('/admin/keys/:id', async (request: Request, response: Response) => {
    const id = idOf(request);
    if (!(await ring.revoke(id))) throw new ChatError('not_found', 'No key with this id.');
    requestLogger(response, logger).info({ keyId: id }, 'API key revoked');
    response.status(204).end();
  });

  return router;
}
