import type { SessionView } from '../actors/liveSession.ts';
import type { SessionHandle } from '../actors/sessions.ts';
import type { Accepted } from '../domain/conversation.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { MessageId, SessionId } from '../domain/ids.ts';
import type { CommandOp } from './commandRouter.ts';

/** Runs a command on the session's owner, wherever it is; the owner's answer. */
export type Route = (sessionId: SessionId, op: CommandOp, args?: unknown) => Promise<unknown>;

/** A session whose actor runs on another node: every call goes to the owner. */
export class RemoteSession implements SessionHandle {
  readonly sessionId: SessionId;
  readonly #route: Route;

  constructor(sessionId: SessionId, route: Route) {
    this.sessionId = sessionId;
    this.#route = route;
  }

  async send(text: string, options?: GenerationOptions): Promise<Accepted> {
    return (await this.#route(this.sessionId, 'send', { text, ...(options ? { options } : {}) })) as Accepted;
  }

  async cancel(): Promise<MessageId[]> {
    return (await this.#route(this.sessionId, 'cancel')) as MessageId[];
  }

  async view(): Promise<SessionView> {
    return (await this.#route(this.sessionId, 'view')) as SessionView;
  }
}

