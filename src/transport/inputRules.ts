import type { IncomingMessage } from 'node:http';
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

/** What every JSON endpoint answers for a body of another Content-Type. */
export const NOT_JSON = 'The body must be JSON, sent with Content-Type: application/json.';

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

/** A place in the walk: its path is spelled out only for an error message. */
interface Place {
  readonly value: unknown;
  readonly depth: number;
  readonly parent: Place | undefined;
  /** The key or index under the parent; the top's is `where`. */
  readonly key: string | number;
}

function pathOf(place: Place): string {
  const keys: (string | number)[] = [];
  for (let at: Place | undefined = place; at !== undefined; at = at.parent) keys.push(at.key);
  let path = String(keys.pop());
  for (let index = keys.length - 1; index >= 0; index -= 1) {
    const key = keys[index]!;
    path += typeof key === 'number' ? `[${key}]` : `.${key}`;
  }
  return path;
}

/**
 * Walks a parsed JSON value without recursion (a value nested 5,000 deep
 * overflows recursive validators) and throws `bad_request` for the first
 * string (key or value) that breaks the text rules, or for nesting deeper
 * than `maxDepth` (the top-level object or array is depth 1). Paths are
 * built only for the message of a failure: building one per value was most
 * of what this cost a clean `/v1` body.
 */
export function assertCleanJson(value: unknown, where: string, maxDepth: number = MAX_JSON_DEPTH): void {
  const stack: Place[] = [{ value, depth: 0, parent: undefined, key: where }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const current = item.value;
    if (typeof current === 'string') {
      if (textProblem(current) !== undefined) assertCleanText(current, pathOf(item));
      continue;
    }
    if (current === null || typeof current !== 'object') continue;
    const depth = item.depth + 1;
    if (depth > maxDepth) throw new ChatError('bad_request', `JSON is nested deeper than ${maxDepth} levels: ${shown(where)}.`);
    if (Array.isArray(current)) {
      for (let index = current.length - 1; index >= 0; index -= 1) stack.push({ value: current[index], depth, parent: item, key: index });
      continue;
    }
    for (const key of Object.keys(current)) {
      if (textProblem(key) !== undefined) assertCleanText(key, `a key in ${pathOf(item)}`);
      stack.push({ value: (current as Record<string, unknown>)[key], depth, parent: item, key });
    }
  }
}

/** Express middleware (after the JSON parser): the rules over the parsed body and the query string. */
export function rejectHostileInput(request: Request, _response: Response, next: NextFunction): void {
  // A body the JSON parser skipped for its Content-Type would read as "no body": say why instead.
  if (request.body === undefined && hasBody(request) && !request.is('application/json')) {
    throw new ChatError('bad_request', NOT_JSON);
  }
  assertCleanJson(request.query, 'the query string');
  if (request.body !== undefined) assertCleanJson(request.body, 'the body');
  next();
}

/** Whether the request carries a body at all (a length above 0, or chunked). */
export function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
