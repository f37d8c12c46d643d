import type { Accepted, UserInput } from '../domain/conversation.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { MessageId, SessionId } from '../domain/ids.ts';
import type { PublicMessage } from '../domain/message.ts';
import type { MessagePageQuery, PageQuery } from '../domain/ports.ts';
import type { SessionView } from './liveSession.ts';
import type { CreateOptions, SessionAccess, SessionListItem } from './sessionRegistry.ts';

/**
 * What a transport may do with one session. A LiveSession (the actor runs
 * here) is one; so is a session whose actor runs on another node, where each
 * call is routed to the owner and answered with the owner's answer.
 */
export interface SessionHandle {
  readonly sessionId: SessionId;
  /** The model the session answers with unless a message names another (absent: the default). */
  readonly model?: string | undefined;
  /** True for a session whose actor runs on another node: its `model` is not known here. */
  readonly remote?: boolean;
  /** Accepts a user message (or an input with content parts and tool results); resolves once it is committed (throws ChatError `busy`, `session_stopped`, …). */
  send(input: string | UserInput, options?: GenerationOptions): Promise<Accepted>;
  /** Stops the reply in progress and the queue; the reply ids cancelled. */
  cancel(): MessageId[] | Promise<MessageId[]>;
  /** State and the newest `limit` messages. */
  view(limit?: number): Promise<SessionView>;
}

/** The sessions as transports see them: on one node the registry itself, across nodes the cluster's router. */
export interface Sessions {
  create(options?: CreateOptions, access?: SessionAccess): Promise<SessionHandle>;
  /** The session with this id (activated from the store if needed), or undefined (none, or another owner's). */
  find(sessionId: string, access?: SessionAccess): Promise<SessionHandle | undefined>;
  /** Deletes a session everywhere; its watchers (on every node) are told. False when there was none (or another owner's). */
  remove(sessionId: string, access?: SessionAccess): Promise<boolean>;
  listSessions(query: PageQuery, access?: SessionAccess): Promise<{ sessions: SessionListItem[]; nextCursor: string | null }>;
  listMessages(sessionId: string, query: MessagePageQuery, access?: SessionAccess): Promise<{ messages: PublicMessage[]; nextCursor: string | null } | undefined>;
}
