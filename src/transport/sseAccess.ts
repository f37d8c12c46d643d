import type { NextFunction, Request, Response } from 'express';
import type { Authenticator } from './authenticate.ts';
import type { CallerSessions } from './callerSessions.ts';
import type { ClientLimits } from './clientLimits.ts';
import type { KeyConnections } from './keyConnections.ts';
import { clientAddressOf } from './clientAddress.ts';

export interface SseAccessOptions {
  auth: Authenticator;
  sessions: CallerSessions;
  limits: ClientLimits;
  keyConnections: KeyConnections;
}

/**
 * In front of `GET /sse/:sessionId`: who asks (`401`; `?access_token=` is
 * accepted here), whether the session is theirs (`404` otherwise, as for a
 * missing one), and room for one more stream of their key (`429`). The
 * stream ends when the key is revoked. Under `--auth none` each new stream
 * counts against its address instead.
 */
export function createSseAccess(options: SseAccessOptions) {
  const { auth, sessions, limits, keyConnections } = options;
  return async (request: Request, response: Response, next: NextFunction) => {
    const caller = await auth.identify(request, { query: true });
    await sessions.find(caller, String(request.params['sessionId']));
    if (caller.keyId === undefined) await limits.admitUnknown(clientAddressOf(request));
    const release = keyConnections.open(caller, () => {
      if (!response.writableEnded) response.end();
    });
    // Whatever ends the response (the stream's end, an error answer, a hang-up) gives the slot back.
    response.once('close', release);
    if (response.destroyed) release();
    next();
  };
}
