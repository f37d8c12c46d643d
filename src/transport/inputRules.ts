import type { NextFunction, Request, Response } from 'express';
import { ChatError } from '../domain/errors.ts';

/**
 * The edge's rules for what clients send, in one place, for every surface
 * (WebSocket frames, REST bodies and query strings, `/v1` bodies): text never
 * holds U+0000 (PostgreSQL's TEXT and JSONB refuse it, failing a whole batch)
 * or a lone UTF-16 surrogate (not Unicode at all: it cannot be stored or
 * encoded as UTF-8), and JSON is nested at most MAX_JSON_DEPTH levels.
 * Breaking a rule is `bad_request`, before any schema validation runs.
 */
export const MAX_JSON_DEPTH = 32;

// In a `u` regex a paired surrogate is one code point, so \p{Cs} matches only lone ones.
const FORBIDDEN = /[\u0000\p{Cs}]/u;

/** A path into the client's own JSON, cut short: error messages stay small. */
function shown(path: string): string {
  if (path.length <= 120) return path;
  return `${Array.from(path).slice(0, 120).join('')}…`;
}

/** Why this text breaks the rules, or undefined when it is fine. */
function textProblem(text: string): string | undefined {
  const found = FORBIDDEN.exec(text);
  if (!found) return undefined;
  return found[0] === '\u0000' ? 'must not contain NUL (U+0000)' : 'must be well-formed Unicode (it holds a lone surrogate)';
}

/** Throws `bad_request` when `text` holds NUL or a lone surrogate; `where` names it in the message. */
export function assertCleanText(text: string, where: string): void {
  const problem = textProblem(text);
  if (problem) throw new ChatError('bad_request', `Text ${problem}: ${shown(where)}.`);
}

/**
 * Walks a parsed JSON value without recursion (a value nested 5,000 deep
 * overflows recursive validators) and throws `bad_request` for the first
 * string (key or value) that breaks the text rules, or for nesting deeper
 * than `maxDepth` (the top-level object or array is depth 1).
 */
export function assertCleanJson(value: unknown, where: string, maxDepth: number = MAX_JSON_DEPTH): void {
  const stack: { value: unknown; depth: number; path: string }[] = [{ value, depth: 0, path: where }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const current = item.value;
    if (typeof current === 'string') {
      assertCleanText(current, item.path);
      continue;
    }
    if (current === null || typeof current !== 'object') continue;
    const depth = item.depth + 1;
    if (depth > maxDepth) throw new ChatError('bad_request', `JSON is nested deeper than ${maxDepth} levels: ${shown(where)}.`);
    if (Array.isArray(current)) {
      for (let index = current.length - 1; index >= 0; index -= 1) stack.push({ value: current[index], depth, path: `${item.path}[${index}]` });
      continue;
    }
    for (const key of Object.keys(current)) {
      assertCleanText(key, `a key in ${item.path}`);
      stack.push({ value: (current as Record<string, unknown>)[key], depth, path: `${item.path}.${key}` });
    }
  }
}

/** Express middleware (after the JSON parser): the rules over the parsed body and the query string. */
export function rejectHostileInput(request: Request, _response: Response, next: NextFunction): void {
  // A body the JSON parser skipped for its Content-Type would read as "no body": say why instead.
  if (request.body === undefined && hasBody(request) && !request.is('application/json')) {
    throw new ChatError('bad_request', 'The body must be JSON, sent with Content-Type: application/json.');
  }
  assertCleanJson(request.query, 'the query string');
  if (request.body !== undefined) assertCleanJson(request.body, 'the body');
  next();
}

function hasBody(request: Request): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
