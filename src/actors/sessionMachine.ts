import { and, setup } from 'xstate';
import type { Conversation } from '../domain/conversation.ts';
import { ChatError, isChatError, isUpstreamFailure } from '../domain/errors.ts';
import type { ErrorCode } from '../domain/errors.ts';
import type { Clock, EventBus, Logger, ModelProvider, SessionStore } from '../domain/ports.ts';
import type { Message } from '../domain/message.ts';
import { runGeneration } from './generationTask.ts';
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
  | { type: 'cancel' }
  /** From the actor's own generation task: the reply streamed to its end. */
  | { type: 'generation.done' }
  /** From the actor's own generation task: the provider failed. */
  | { type: 'generation.failed'; error: unknown };

/** The generation in progress, owned by the session actor (one holder per actor). */
interface GenerationSlot {
  /** Set while the task runs: leaving `generating` then aborts it. */
  controller: AbortController | undefined;
}

interface SessionContext extends SessionInput {
  generation: GenerationSlot;
}

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
 * Each reply is a task of this actor with its own AbortController (see
 * generationTask.ts), aborted when `generating` is left (cancel) and when the
 * actor stops (the session is deleted or the server shuts down). A typed
 * upstream failure ends the reply as failed; any other provider failure
 * crashes the actor on purpose, and the supervisor restarts it.
 */
export const sessionMachine = setup({
  types: {
    context: {} as SessionContext,
    input: {} as SessionInput,
    events: {} as SessionEvent,
  },
  guards: {
    hasQueued: ({ context }) => context.conversation.hasQueued,
    // The model's server failing, or the store failing to keep the reply's chunk numbers: expected, not a bug.
    upstreamFailed: ({ event }) =>
      event.type === 'generation.failed' &&
      (isUpstreamFailure(event.error) || (isChatError(event.error) && STORE_FAILURES.includes(event.error.code))),
  },
  actions: {
    startGeneration: ({ context, self }) => {
      const slot = context.generation;
      const controller = new AbortController();
      slot.controller = controller;
      // A stopped actor runs no exit action: its end aborts the task instead.
      const ended = self.subscribe({ complete: () => controller.abort(), error: () => controller.abort() });
      const settle = (event: SessionEvent) => {
        ended.unsubscribe();
        if (controller.signal.aborted) return;
        // Settled: nothing left to abort (an abort makes a DOMException, a measured cost per reply).
        if (slot.controller === controller) slot.controller = undefined;
        self.send(event);
      };
      runGeneration(context.conversation, context.deps, controller.signal).then(
        () => settle({ type: 'generation.done' }),
        (error: unknown) => settle({ type: 'generation.failed', error }),
      );
    },
    stopGeneration: ({ context }) => {
      context.generation.controller?.abort();
      context.generation.controller = undefined;
    },
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
      const error = event.type === 'generation.failed' ? event.error : undefined;
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
      const error = event.type === 'generation.failed' ? event.error : event;
      if (isChatError(error)) throw error;
      throw new ChatError('provider_error', undefined, { cause: error });
    },
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => ({ ...input, generation: { controller: undefined } }),
  // The supervisor spawns this actor when there is work and lets it end when
  // there is none, so an idle session costs one actor, not two; it starts
  // generating at once (no eventless step through an idle state: each
  // microstep is a measured cost per reply).
  initial: 'generating',
  states: {
    generating: {
      entry: 'startGeneration',
      exit: 'stopGeneration',
      on: {
        'generation.done': [
          { guard: 'hasQueued', target: 'generating', reenter: true, actions: 'completeReply' },
          { target: 'done', actions: 'completeReply' },
        ],
        'generation.failed': [
          { guard: and(['upstreamFailed', 'hasQueued']), target: 'generating', reenter: true, actions: 'failReply' },
          { guard: 'upstreamFailed', target: 'done', actions: 'failReply' },
          { actions: 'crash' },
        ],
        // A cancel drops the queue too: nothing is left to do.
        cancel: { target: 'done', actions: 'cancelAll' },
      },
    },
    done: { type: 'final' },
  },
});

export type SessionMachine = typeof sessionMachine;
