import express from 'express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ChatError } from '../domain/errors.ts';

/** `application/json`, with at most a UTF-8 charset: the only body the lean path reads itself. */
const PLAIN_JSON = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/**
 * The `/v1` body reader: `express.json({ limit })`'s behaviour (413 over the
 * limit once the body is drained, 400 for malformed or non-object JSON, `{}`
 * for an empty body, a leading BOM dropped) without its per-request chain
 * (type-is, content-type, raw-body, iconv-lite, http-errors) for the one body
 * a gateway client sends: plain UTF-8 `application/json`, not compressed.
 * Anything else (another type or charset, a Content-Encoding, no body) goes to
 * `express.json` itself, so every other answer stays exactly its own.
 */
export function plainJsonBody(limit: number): RequestHandler {
  const fallback = express.json({ limit });
  return (request: Request, response: Response, next: NextFunction) => {
    if (!isPlainJson(request)) {
      fallback(request, response, next);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number(request.headers['content-length']) > limit;
    let done = false;
    const finish = (error: unknown, body?: unknown) => {
      if (done) return;
      done = true;
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('aborted', onAborted);
      if (error !== undefined) {
        next(error);
        return;
      }
      request.body = body;
      next();
    };
    const onData = (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > limit) {
        // Read off the rest (the client gets its 413 once it has sent it all), keeping none of it.
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      if (tooLarge) {
        finish(new ChatError('payload_too_large'));
        return;
      }
      try {
        finish(undefined, parseStrict(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, size).toString('utf8')));
      } catch (error) {
        finish(error);
      }
    };
    const onError = () => finish(new ChatError('bad_request'));
    const onAborted = () => finish(new ChatError('bad_request'));
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('aborted', onAborted);
  };
}

function isPlainJson(request: Request): boolean {
  const { headers } = request;
  if (headers['content-encoding'] !== undefined && headers['content-encoding'].toLowerCase() !== 'identity') return false;
  // No body at all: express.json leaves `request.body` undefined, which callers tell apart from `{}`.
  if (headers['transfer-encoding'] === undefined && (headers['content-length'] === undefined || headers['content-length'] === '0')) return false;
  const type = headers['content-type'];
  return type !== undefined && PLAIN_JSON.test(type);
}

/** body-parser's strict JSON: an object or an array, `{}` when empty. */
function parseStrict(text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.length === 0) return {};
  const first = body.trimStart()[0];
  if (first !== '{' && first !== '[') throw new ChatError('bad_request', 'The body is not valid JSON.');
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new ChatError('bad_request', 'The body is not valid JSON.');
  }
}
