import { Router } from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { ChatError } from '../domain/errors.ts';
import { KEY_COOKIE } from './authenticate.ts';
import type { Authenticator } from './authenticate.ts';

export interface AuthRoutesOptions {
  auth: Authenticator;
  /** How long the page stays signed in (default 30 days). */
  cookieMaxAgeSeconds?: number;
}

const loginBody = z.object({ key: z.string().min(1).max(200) });

/** `Secure` when the page was reached over TLS, directly or through a proxy that says so. */
function overTls(request: Request): boolean {
  return request.secure || request.get('x-forwarded-proto')?.split(',')[0]?.trim() === 'https';
}

function cookie(request: Request, value: string, maxAgeSeconds: number): string {
  return [
    `${KEY_COOKIE}=${encodeURIComponent(value)}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${maxAgeSeconds}`,
    ...(overTls(request) ? ['Secure'] : []),
  ].join('; ');
}

/**
 * The page's sign-in under `/api/auth`: it trades a key (from the `#key=`
 * link or the sign-in field) for an HttpOnly, SameSite=Strict cookie, so its
 * WebSocket and EventSource carry no key in any URL the server sees.
 * - `POST /api/auth/login` `{"key"}` → `204` and the cookie; `401` for a wrong key
 * - `GET /api/auth/me` → `200 {"auth":"keys","keyId","name"}` (or `{"auth":"none"}`); `401` when signed out
 * - `POST /api/auth/logout` → `204`, the cookie cleared
 */
export function createAuthRoutes(options: AuthRoutesOptions): Router {
  const { auth } = options;
  const maxAge = options.cookieMaxAgeSeconds ?? 30 * 24 * 3600;
  const router = Router();

  router.post('/auth/login', async (request: Request, response: Response) => {
    const parsed = loginBody.safeParse(request.body);
    if (!parsed.success) throw new ChatError('bad_request', 'Expected a JSON body {"key": "…"}.');
    const caller = await auth.verify(request, parsed.data.key);
    response.setHeader('Cache-Control', 'no-store');
    if (caller.keyId !== undefined) response.setHeader('Set-Cookie', cookie(request, parsed.data.key, maxAge));
    response.status(204).end();
  });

  router.get('/auth/me', async (request: Request, response: Response) => {
    const caller = await auth.identify(request);
    response.setHeader('Cache-Control', 'no-store');
    response.json(caller.keyId === undefined ? { auth: 'none' } : { auth: 'keys', keyId: caller.keyId, name: caller.keyName });
  });

  router.post('/auth/logout', (request: Request, response: Response) => {
    response.setHeader('Set-Cookie', cookie(request, '', 0));
    response.status(204).end();
  });

  return router;
}
