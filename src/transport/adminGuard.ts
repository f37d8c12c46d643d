import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { ChatError } from '../domain/errors.ts';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Express middleware for `/admin` and `/inspector`: only
 * `Authorization: Bearer <admin token>` passes. An API key (or the page's
 * cookie) is never an admin credential. Comparing digests keeps the
 * comparison constant-time whatever the length offered.
 */
export function adminGuard(adminToken: string) {
  const expected = digest(adminToken);
  return (request: Request, _response: Response, next: NextFunction) => {
    const match = /^Bearer (.+)$/.exec(request.get('authorization') ?? '');
    if (!match?.[1] || !timingSafeEqual(digest(match[1]), expected)) throw new ChatError('unauthorized', 'A valid admin token is required.');
    next();
  };
}
