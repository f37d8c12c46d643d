import { setup } from 'xstate';
import type { Conversation } from '../domain/conversation.ts';
import { ChatError, isChatError, isUpstreamFailure } from '../domain/errors.ts';
import type { ErrorCode } from '../domain/errors.ts';
import type { Clock, EventBus, Logger, ModelProvider, SessionStore } from '../domain/ports.ts';
import type { Message } from '../domain/message.ts';
import { providerActor } from './providerActor.ts';
import type { StoreHealth } from './storeHealth.ts';
import type { StoreWriter } from './storeWriter.ts';

const STORE_FAILURES: readonly ErrorCode[] = ['store_unavailable', 'session_not_found'];

/** What a session actor needs from the outside world; given by its supervisor. */
export interface SessionDeps {
  bus: EventBus;
  store: SessionStore;
  provider: ModelProvider;
  clock: Clock;
  logger: Logger;
  /** Writes the conversation (group-committed; background writes retried). */
  writer: StoreWriter;
  /** Whether the store takes work now (refusals come fast while it does not). */
  health: StoreHealth;
}

export interface SessionInput {
  conversation: Conversation;
  deps: SessionDeps;
}

export type SessionEvent =
  /** A user message was accepted into the conversation's queue. */
  | { type: 'user.message' }
  /** Stop the reply in progress and drop the queued messages. */
  | { type: 'cancel' };

/** Writes the conversation's changed messages in the background; a failing store is retried by the writer, never fatal here. */
export function persist(conversation: Conversation, deps: SessionDeps, messages: readonly Message[]): void {
  deps.writer.save(conversation, messages);
}

/** Ends the reply in progress as failed, keeps it, and tells its watchers (with a client-safe message). */
export function failCurrentReply(
  conversation: Conversation,
  deps: SessionDeps,
  failure: { code: ErrorCode; message: string; upstreamStatus?: number },
): void {
  const reply = conversation.finishReply('failed', deps.clock.now(), failure.code);
  if (!reply) return;
  persist(conversation, deps, [reply]);
  deps.bus.publish({
    type: 'message.failed',
    sessionId: conversation.sessionId,
    messageId: reply.id,
    code: failure.code,
    message: failure.message,
    ...(failure.upstreamStatus !== undefined ? { upstreamStatus: failure.upstreamStatus } : {}),
  });
}

/** Tells every watcher that the given replies were cancelled. */
export function announceCancelled(conversation: Conversation, deps: SessionDeps, replyIds: readonly string[]): void {
  for (const messageId of replyIds) {
    deps.bus.publish({ type: 'message.cancelled', sessionId: conversation.sessionId, messageId });
  }
}

/**
 * One chat session at work: generating replies until the queue is empty, then
 * done. The conversation (history and queue) is an entity lent by the
 * supervisor; this machine decides when a reply starts, ends or is cancelled.
 * A typed upstream failure ends the reply as failed; any other provider
 * failure crashes the actor on purpose, and the supervisor restarts it.
 */
export const sessionMachine = setup({
  types: {
    context: {} as SessionInput,
    input: {} as SessionInput,
    events: {} as SessionEvent,
  },
  actors: { provider: providerActor },
  guards: {
    hasQueued: ({ context }) => context.conversation.hasQueued,
    // The model's server failing, or the store failing to keep the reply's chunk numbers: expected, not a bug.
    upstreamFailed: ({ event }) =>
      'error' in event && (isUpstreamFailure(event.error) || (isChatError(event.error) && STORE_FAILURES.includes(event.error.code))),
  },
  actions: {
    completeReply: ({ context }) => {
      const { conversation, deps } = context;
      const reply = conversation.finishReply('complete', deps.clock.now());
      if (!reply) return;
      persist(conversation, deps, [reply]);
      deps.bus.publish({
        type: 'message.completed',
        sessionId: conversation.sessionId,
        messageId: reply.id,
        ...(reply.usage ? { usage: reply.usage } : {}),
      });
    },
    // The model's server failing is an expected failure, not a bug: the reply
    // fails, the session stays up, and no restart intensity is spent on it.
    failReply: ({ context, event }) => {
      const error = 'error' in event ? event.error : undefined;
      if (!isChatError(error)) return;
      failCurrentReply(context.conversation, context.deps, error);
    },
    cancelAll: ({ context }) => {
      const { conversation, deps } = context;
      const now = deps.clock.now();
      const reply = conversation.finishReply('cancelled', now);
      const dropped = conversation.cancelQueued(now);
      const changed = [...(reply ? [reply] : []), ...dropped.map(({ user }) => user)];
      if (changed.length > 0) persist(conversation, deps, changed);
      announceCancelled(conversation, deps, [...(reply ? [reply.id] : []), ...dropped.map(({ replyId }) => replyId)]);
    },
    // Let it crash: the supervisor owns recovery.
    crash: ({ event }) => {
      const error = 'error' in event ? event.error : event;
      if (isChatError(error)) throw error;
      throw new ChatError('provider_error', undefined, { cause: error });
    },
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => input,
  initial: 'idle',
  states: {
    idle: {
      // The supervisor spawns this actor when there is work and lets it end
      // when there is none, so an idle session costs one actor, not two.
      always: [{ guard: 'hasQueued', target: 'generating' }, { target: 'done' }],
    },
    generating: {
      invoke: {
        id: 'provider',
        src: 'provider',
        input: ({ context }) => ({ conversation: context.conversation, deps: context.deps }),
        onDone: { target: 'idle', actions: 'completeReply' },
        onError: [{ guard: 'upstreamFailed', target: 'idle', actions: 'failReply' }, { actions: 'crash' }],
      },
      on: {
        cancel: { target: 'idle', actions: 'cancelAll' },
      },
    },
    done: { type: 'final' },
  },
});

export type SessionMachine = typeof sessionMachine;
