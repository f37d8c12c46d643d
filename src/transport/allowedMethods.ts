import type { NextFunction, Request, Response } from 'express';
import { ChatError } from '../domain/errors.ts';

/**
 * What the `router` package (Express 5's) keeps of each `use` or route: we
 * read its own table rather than keep a second list of endpoints that could
 * drift from it (test/transport/methodNotAllowed.test.ts breaks if it changes).
 */
interface RouterLayer {
  match(path: string): { path: string } | false;
  route?: { methods: Record<string, boolean | undefined> };
  handle: unknown;
}

const stackOf = (handle: unknown): readonly RouterLayer[] | undefined => {
  const stack = (handle as { stack?: unknown } | null)?.stack;
  return Array.isArray(stack) ? (stack as RouterLayer[]) : undefined;
};

/** The methods some route of `stack` (mounted routers included) answers at `path`, upper case, sorted; empty when none. */
export function allowedMethods(stack: readonly RouterLayer[], path: string): string[] {
  const found = new Set<string>();
  const walk = (layers: readonly RouterLayer[], at: string) => {
    for (const layer of layers) {
      const matched = layer.match(at);
      if (!matched) continue;
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') found.add(method.toUpperCase());
        continue;
      }
      const inner = stackOf(layer.handle);
      if (inner) walk(inner, at.slice(matched.path.length) || '/');
    }
  };
  walk(stack, path);
  // Express answers HEAD wherever it answers GET, and OPTIONS for every route.
  if (found.has('GET')) found.add('HEAD');
  if (found.size > 0) found.add('OPTIONS');
  return [...found].sort();
}

/**
 * The last route of a router: `405 method_not_allowed` with `Allow` when the
 * path exists under other methods (a DELETE sent as POST is not "no such
 * endpoint"), `404 not_found` otherwise.
 */
export function noSuchRoute(router: { stack: readonly unknown[] }) {
  return (request: Request, _response: Response, next: NextFunction): void => {
    const allow = allowedMethods(router.stack as readonly RouterLayer[], request.path);
    next(allow.length > 0 ? new ChatError('method_not_allowed', undefined, { allow }) : new ChatError('not_found'));
  };
}
