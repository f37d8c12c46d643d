import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';
import type { Request, Response } from 'express';

/** The folder of the browser pages: plain HTML, CSS and JavaScript modules, no build step. */
export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

const PAGE_HEADERS = {
  // Everything is same-origin; no inline script, so an injected string can never run.
  'Content-Security-Policy':
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-cache',
};

/** Sends one page of `web/` with the pages' security headers. */
export function sendPage(file: string) {
  return (_request: Request, response: Response) => {
    response.set(PAGE_HEADERS);
    response.sendFile(file, { root: WEB_DIR });
  };
}

/** `GET /` (the chat page) and `GET /assets/*` (its scripts and styles). */
export function createWebPages(): Router {
  const router = Router();
  router.get('/', sendPage('index.html'));
  router.use(
    '/assets',
    express.static(`${WEB_DIR}assets`, {
      index: false,
      fallthrough: true,
      setHeaders: (response) => {
        response.setHeader('X-Content-Type-Options', 'nosniff');
        response.setHeader('Cache-Control', 'no-cache');
      },
    }),
  );
  return router;
}
