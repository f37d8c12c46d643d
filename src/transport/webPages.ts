import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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

// The page's two libraries, served from the installed packages (the machine
// may be offline: no CDN), as ES modules the browser imports by these paths.
const require = createRequire(import.meta.url);
const VENDOR: Record<string, string> = {
  'marked.js': require.resolve('marked'),
  'purify.js': join(dirname(require.resolve('dompurify')), 'purify.es.mjs'),
};

/** `GET /` (the chat page), `GET /assets/*` (its scripts and styles) and `GET /assets/vendor/*` (marked, DOMPurify). */
export function createWebPages(): Router {
  const router = Router();
  router.get('/', sendPage('index.html'));
  router.get('/assets/vendor/:file', (request: Request, response: Response, next) => {
    const path = VENDOR[String(request.params['file'])];
    if (!path) return next();
    response.set({ 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'public, max-age=3600', 'Content-Type': 'text/javascript; charset=utf-8' });
    response.sendFile(path);
  });
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
