import type { SessionView } from '../actors/liveSession.ts';
import type { SessionHandle } from '../actors/sessions.ts';
import type { Accepted, UserInput } from '../domain/conversation.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { MessageId, SessionId } from '../domain/ids.ts';
import type { CommandOp } from './commandRouter.ts';
import type { SessionAccess } from '../actors/sessionRegistry.ts';

/** Runs a command on the session's owner, wherever it is; the owner's answer. */
export type Route = (sessionId: SessionId, op: CommandOp, args?: unknown, access?: SessionAccess) => Promise<unknown>;

/** A session whose actor runs on another node: every call goes to the owner. */
export class RemoteSession implements SessionHandle {
  readonly sessionId: SessionId;
  readonly remote = true;
  readonly #route: Route;
  readonly #access: SessionAccess | undefined;

  constructor(sessionId: SessionId, route: Route, access: SessionAccess | undefined) {
    this.sessionId = sessionId;
    this.#route = route;
    this.#access = access;
  }

  async send(input: string | UserInput, options?: GenerationOptions): Promise<Accepted> {
    // A plain text goes as `text` (what older nodes read); an input with parts or tool results as `input`.
    const body = typeof input === 'string' ? { text: input } : { input };
    return (await this.#route(this.sessionId, 'send', { ...body, ...(options ? { options } : {}) }, this.#access)) as Accepted;
  }

  async cancel(): Promise<MessageId[]> {
    return (await this.#route(this.sessionId, 'cancel', undefined, this.#access)) as MessageId[];
  }

  async view(limit?: number): Promise<SessionView> {
    return (await this.#route(this.sessionId, 'view', limit === undefined ? undefined : { limit }, this.#access)) as SessionView;
  }
}

