import type { IncomingMessage } from 'node:http';

export interface OriginPolicy {
  /** True when the request has no `Origin` (not a browser page), or one this server serves or was told to allow. */
  allows(request: IncomingMessage): boolean;
}

/** `https://Chat.Example.com:443/` → `https://chat.example.com`; undefined when it is no http(s) origin. */
export function normaliseOrigin(text: string): string | undefined {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Which web pages may drive this server from a browser. The server's own
 * origin (an `Origin` whose host is the request's `Host`, so it holds behind a
 * TLS proxy that keeps `Host`) is always allowed; `allowed` adds more
 * (`--allowed-origins`). An opaque origin (`null`: a sandboxed frame, a file)
 * never is.
 */
export function createOriginPolicy(allowed: readonly string[] = []): OriginPolicy {
  const extra = new Set(allowed.map((origin) => normaliseOrigin(origin)).filter((origin): origin is string => origin !== undefined));
  return {
    allows(request) {
      const origin = request.headers.origin;
      if (origin === undefined) return true;
      let url: URL;
      try {
        url = new URL(origin);
      } catch {
        return false;
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
      const host = request.headers.host;
      if (host !== undefined && url.host === host.toLowerCase()) return true;
      return extra.has(url.origin);
    },
  };
}
