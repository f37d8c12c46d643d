import type { SessionListItem } from '../actors/sessionRegistry.ts';
import type { SessionHandle, Sessions } from '../actors/sessions.ts';
import type { TokenLedger } from '../actors/tokenLedger.ts';
import type { Accepted, UserInput } from '../domain/conversation.ts';
import type { SessionDetails } from '../domain/conversationRecord.ts';
import { ChatError } from '../domain/errors.ts';
import type { GenerationOptions } from '../domain/generationOptions.ts';
import type { PublicMessage, Turn } from '../domain/message.ts';
import type { MessagePageQuery, PageQuery } from '../domain/ports.ts';
import type { ModelCatalog } from '../model.ts';
import type { Admission } from './admission.ts';
import { accessOf } from './authenticate.ts';
import type { Caller } from './authenticate.ts';
import type { ClientLimits } from './clientLimits.ts';

/**
 * Sessions as one caller sees them, for every surface (REST, WebSocket, SSE,
 * `/v1`): another key's session does not exist (`session_not_found`, the
 * same answer as for an id never made), and every new session or message
 * passes the node's admission and the key's limits, in the same order. A
 * model the key may not use (`limits.models`) does not exist for it either
 * (`model_not_found`), and past its `tokensPerDay` a message gets
 * `budget_exceeded` until the next UTC day.
 */
export interface CallerSessions {
  /** A new session of the caller's; `ephemeral` ones (a `/v1` request without `X-Session-Id`) do not count as sessions made. */
  create(caller: Caller, details?: Omit<SessionDetails, 'owner'> & { history?: readonly Turn[] }, options?: { ephemeral?: boolean }): Promise<SessionHandle>;
  /** The caller's session, re-activated if needed; throws `session_not_found` for any other. */
  find(caller: Caller, sessionId: string): Promise<SessionHandle>;
  /** Sends a user message (or tool results) after the load, per-session and per-key checks, model and budget included; resolves once accepted. */
  send(caller: Caller, session: SessionHandle, input: string | UserInput, options?: GenerationOptions): Promise<Accepted>;
  /** The model names the caller may use. */
  models(caller: Caller): string[];
  /** Throws `model_not_found` when there is no such model, or the caller may not use it. */
  checkModel(caller: Caller, name: string): void;
  /** The model a message of this caller on this session answers with when it names none (as far as this node knows). */
  modelOf(session: SessionHandle, caller?: Caller): string;
  /** Deletes the caller's session; throws `session_not_found` for any other. */
  remove(caller: Caller, sessionId: string): Promise<void>;
  list(caller: Caller, query: PageQuery): Promise<{ sessions: SessionListItem[]; nextCursor: string | null }>;
  /** A page of the caller's session's history (live versions of messages still changing); throws `session_not_found` for any other. */
  messages(caller: Caller, sessionId: string, query: MessagePageQuery): Promise<{ messages: PublicMessage[]; nextCursor: string | null }>;
}

export interface CallerSessionsOptions {
  registry: Sessions;
  admission: Admission;
  limits: ClientLimits;
  /** The configured models (absent: any name goes, as before models were named). */
  models?: ModelCatalog;
  /** Tokens spent per key, for `tokensPerDay` (absent: no budgets). */
  ledger?: TokenLedger;
}

export function createCallerSessions(options: CallerSessionsOptions): CallerSessions {
  const { registry, admission, limits, models, ledger } = options;
  const allowed = (caller: Caller, name: string) => (models ? models.has(name) : true) && (caller.limits.models?.includes(name) ?? true);
  const checkModel = (caller: Caller, name: string) => {
    if (!allowed(caller, name)) throw new ChatError('model_not_found', `No model named "${name}"; GET /v1/models lists them.`);
  };
  // The default model, or for a key limited to others the first of those it may use.
  const defaultFor = (caller: Caller | undefined) => {
    const fallback = models?.defaultModel ?? 'default';
    if (!caller?.limits.models || allowed(caller, fallback)) return fallback;
    return models?.names.find((name) => allowed(caller, name)) ?? fallback;
  };
  // A session may name a model a later models file no longer has: it goes on with the default.
  const known = (model: string | undefined) => model !== undefined && (!models || models.has(model));
  const modelOf = (session: SessionHandle, caller?: Caller) => (known(session.model) ? session.model! : defaultFor(caller));
  return {
    models: (caller) => (models?.names ?? []).filter((name) => allowed(caller, name)),
    checkModel,
    modelOf,
    async create(caller, details = {}, { ephemeral = false } = {}) {
      if (details.model !== undefined) checkModel(caller, details.model);
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
    async send(caller, session, input, generation) {
      // A session on another node does not say its model here: ask it only when the key's list must be checked.
      // Otherwise a message that names none goes without one, and the owner answers with the session's model.
      const ownersChoice = generation?.model === undefined && session.remote === true && !(caller.limits.models && models);
      // A model the message names must exist; the session's own may have left a later models file (then: the default).
      const stored = generation?.model === undefined && !ownersChoice ? (session.remote ? (await session.view(1)).model : session.model) : undefined;
      const model = generation?.model ?? (known(stored) ? stored! : defaultFor(caller));
      if (!ownersChoice) checkModel(caller, model);
      await admission.admitMessage(session.sessionId);
      await limits.admitMessage(caller);
      await ledger?.checkBudget(caller.keyId ?? '', caller.limits.tokensPerDay);
      // Resolves once the message is committed to the store. The model goes with the message: it is
      // the one this caller may use (a key limited to some models answers with the first of them).
      return await session.send(input, models && !ownersChoice ? { ...generation, model } : generation);
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
