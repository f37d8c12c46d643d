import type { SessionListItem } from '../actors/sessionRegistry.ts';
import type { SessionHandle, Sessions } from '../actors/sessions.ts';
import type { Accepted } from '../domain/conversation.ts';
import type { SessionDetails } from '../domain/conversationRecord.ts';
import { ChatError } from '../domain/errors.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { PublicMessage, Turn } from '../domain/message.ts';
import type { MessagePageQuery, PageQuery } from '../domain/ports.ts';
import type { Admission } from './admission.ts';
import { accessOf } from './authenticate.ts';
import type { Caller } from './authenticate.ts';
import type { ClientLimits } from './clientLimits.ts';

/**
 * Sessions as one caller sees them, for every surface (REST, WebSocket, SSE,
 * `/v1`): another key's session does not exist (`session_not_found`, the
 * same answer as for an id never made), and every new session or message
 * passes the node's admission and the key's limits, in the same order.
 */
export interface CallerSessions {
  /** A new session of the caller's; `ephemeral` ones (a `/v1` request without `X-Session-Id`) do not count as sessions made. */
  create(caller: Caller, details?: Omit<SessionDetails, 'owner'> & { history?: readonly Turn[] }, options?: { ephemeral?: boolean }): Promise<SessionHandle>;
  /** The caller's session, re-activated if needed; throws `session_not_found` for any other. */
  find(caller: Caller, sessionId: string): Promise<SessionHandle>;
  /** Sends a user message after the load, per-session and per-key checks; resolves once accepted. */
  send(caller: Caller, session: SessionHandle, text: string, options?: GenerationOptions): Promise<Accepted>;
  /** Deletes the caller's session; throws `session_not_found` for any other. */
  remove(caller: Caller, sessionId: string): Promise<void>;
  list(caller: Caller, query: PageQuery): Promise<{ sessions: SessionListItem[]; nextCursor: string | null }>;
  /** A page of the caller's session's history (live versions of messages still changing); throws `session_not_found` for any other. */
  messages(caller: Caller, sessionId: string, query: MessagePageQuery): Promise<{ messages: PublicMessage[]; nextCursor: string | null }>;
}

export function createCallerSessions(options: { registry: Sessions; admission: Admission; limits: ClientLimits }): CallerSessions {
  const { registry, admission, limits } = options;
  return {
    async create(caller, details = {}, { ephemeral = false } = {}) {
      admission.admitWork();
      if (!ephemeral) await limits.admitSession(caller);
      // An ephemeral session is never stored either: it ends with its request.
      return registry.create(ephemeral ? { ...details, ephemeral } : details, accessOf(caller));
    },
    async find(caller, sessionId) {
      const session = await registry.find(sessionId, accessOf(caller));
      if (!session) throw new ChatError('session_not_found');
      return session;
    },
    async send(caller, session, text, generation) {
      await admission.admitMessage(session.sessionId);
      await limits.admitMessage(caller);
      // Resolves once the message is committed to the store.
      return await session.send(text, generation);
    },
    async remove(caller, sessionId) {
      if (!(await registry.remove(sessionId, accessOf(caller)))) throw new ChatError('session_not_found');
    },
    list: (caller, query) => registry.listSessions(query, accessOf(caller)),
    async messages(caller, sessionId, query) {
      const page = await registry.listMessages(sessionId, query, accessOf(caller));
      if (!page) throw new ChatError('session_not_found');
      return page;
    },
  };
}
