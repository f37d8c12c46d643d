import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { KeyRing } from '../actors/keyRing.ts';
import type { SessionAccess } from '../actors/sessionRegistry.ts';
import type { ResolvedLimits } from '../domain/apiKeys.ts';
import { resolveLimits } from '../domain/apiKeys.ts';
import { ChatError } from '../domain/errors.ts';
import type { ClientLimits } from './clientLimits.ts';
import type { OriginPolicy } from './origins.ts';
import { clientAddressOf } from './clientAddress.ts';

export type AuthMode = 'keys' | 'none';

/** Where a key was presented: `Authorization: Bearer`, the page's cookie, or `?access_token=` (WS and SSE only). */
export type CredentialSource = 'header' | 'cookie' | 'query';

/** Who is asking. Every surface derives what it shows and allows from this, and from nothing else. */
export interface Caller {
  /** The key's id; undefined under `--auth none` (every session is anyone's, as before keys existed). */
  readonly keyId: string | undefined;
  readonly keyName: string | undefined;
  readonly limits: ResolvedLimits;
  readonly via: CredentialSource | undefined;
}

/** The cookie the page gets for its key: HttpOnly (no script reads it), SameSite=Strict. */
export const KEY_COOKIE = 'llm_chat_key';

export interface AuthenticatorOptions {
  mode: AuthMode;
  /** Required with `keys`. */
  ring: KeyRing | undefined;
  limits: ClientLimits;
  origins: OriginPolicy;
  /** Every key's limits unless it has its own (the `--key-*` flags). */
  defaultLimits: ResolvedLimits;
}

export interface Authenticator {
  readonly mode: AuthMode;
  /**
   * Who sent this request (REST, SSE, `/v1`, a WebSocket upgrade). Throws
   * `unauthorized` (no valid key), `rate_limited` (too many of those from the
   * address), `forbidden` (a browser page of another origin using the cookie
   * or a key in the URL) or `store_unavailable`. `query` allows `?access_token=`.
   */
  identify(request: IncomingMessage, where?: { query?: boolean }): Promise<Caller>;
  /** The key behind a secret offered in a body (the page's sign-in); `unauthorized` / `rate_limited` otherwise. */
  verify(request: IncomingMessage, key: string): Promise<Caller>;
  /** Express middleware: identifies the caller (see `callerOf`) or passes the error on. */
  guard(where?: { query?: boolean }): (request: Request, response: Response, next: NextFunction) => Promise<void>;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at !== -1 && part.slice(0, at).trim() === name) return decodeURIComponent(part.slice(at + 1).trim());
  }
  return undefined;
}

/** The credential a request carries, by precedence: header, then (where allowed) the URL, then the cookie. */
function credentialOf(request: IncomingMessage, query: boolean): { via: CredentialSource; key: string } | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match?.[1] ? { via: 'header', key: match[1] } : { via: 'header', key: '' };
  }
  if (query) {
    const token = new URL(request.url ?? '/', 'http://localhost').searchParams.get('access_token');
    if (token !== null) return { via: 'query', key: token };
  }
  const cookie = cookieValue(request.headers.cookie, KEY_COOKIE);
  return cookie === undefined ? undefined : { via: 'cookie', key: cookie };
}

const addressOf = clientAddressOf;

/**
 * One place that decides who a request is, for every surface. With keys, a
 * request without a valid one counts against its address (so guessing keys
 * is slow) and gets `unauthorized`; a browser page of another origin gets
 * `forbidden` for the cookie or a key in the URL, whatever the key.
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const { mode, ring, limits, origins, defaultLimits } = options;
  if (mode === 'keys' && !ring) throw new Error('--auth keys needs a key store');
  const anonymous: Caller = { keyId: undefined, keyName: undefined, limits: defaultLimits, via: undefined };

  const check = async (request: IncomingMessage, key: string, via: CredentialSource): Promise<Caller> => {
    const found = key === '' ? undefined : await ring!.authenticate(key);
    if (!found) {
      await limits.admitUnknown(addressOf(request));
      throw new ChatError('unauthorized');
    }
    return { keyId: found.id, keyName: found.name, limits: resolveLimits(found.limits, defaultLimits), via };
  };

  const identify = async (request: IncomingMessage, where: { query?: boolean } = {}): Promise<Caller> => {
    const credential = mode === 'keys' ? credentialOf(request, where.query === true) : undefined;
    // A key in a header was put there by a program that holds it: no page of another origin can make a browser send it.
    if (credential?.via !== 'header' && !origins.allows(request)) throw new ChatError('forbidden');
    if (mode === 'none') return anonymous;
    if (!credential) {
      await limits.admitUnknown(addressOf(request));
      throw new ChatError('unauthorized');
    }
    return check(request, credential.key, credential.via);
  };

  return {
    mode,
    identify,
    async verify(request, key) {
      if (!origins.allows(request)) throw new ChatError('forbidden');
      if (mode === 'none') return anonymous;
      return check(request, key, 'cookie');
    },
    guard(where = {}) {
      return async (request, response, next) => {
        response.locals['caller'] = await identify(request, where);
        next();
      };
    },
  };
}

/** The caller `guard` identified for this request. */
export function callerOf(response: Response): Caller {
  const caller: unknown = response.locals['caller'];
  if (caller === undefined) throw new ChatError('internal_error', 'No caller was identified for this route.');
  return caller as Caller;
}

/** What the registry may show this caller: only its own sessions when it has a key. */
export function accessOf(caller: Caller): SessionAccess {
  return caller.keyId === undefined ? {} : { owner: caller.keyId, liveLimit: caller.limits.liveSessions };
}
