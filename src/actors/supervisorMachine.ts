import { assign, sendTo, setup } from 'xstate';
import type { Conversation } from '../domain/conversation.ts';
import { DEFAULT_ERROR_MESSAGES, isChatError } from '../domain/errors.ts';
import type { ErrorCode } from '../domain/errors.ts';
import type { StopReason } from '../domain/events.ts';
import { sessionLogic } from './sessionActor.ts';
import { announceCancelled, failCurrentReply, persist } from './sessionEffects.ts';
import type { SessionDeps } from './sessionEffects.ts';

/** OTP-style restart intensity: at most `intensity` restarts within `periodMs`. */
export interface RestartPolicy {
  intensity: number;
  periodMs: number;
  /** First backoff; doubles per restart within the period, up to `backoffMaxMs`. */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  intensity: 5,
  periodMs: 10_000,
  backoffBaseMs: 50,
  backoffMaxMs: 2_000,
};

export interface SupervisorInput {
  conversation: Conversation;
  deps: SessionDeps;
  policy: RestartPolicy;
}

interface SupervisorContext extends SupervisorInput {
  /** Times of the restarts still inside the policy's period. */
  restarts: number[];
  stopReason: StopReason | undefined;
}

export type SupervisorEvent =
  | { type: 'user.message' }
  | { type: 'cancel' }
  | { type: 'stop'; reason: StopReason };

function recentRestarts(context: SupervisorContext): number[] {
  const since = context.deps.clock.now() - context.policy.periodMs;
  return context.restarts.filter((at) => at > since);
}

function codeOf(error: unknown): ErrorCode {
  return isChatError(error) ? error.code : 'internal_error';
}

/**
 * Spawns the session actor when there is work (dormant → running), watches
 * it and restarts it one-for-one when it fails. The
 * conversation lives here, so the history survives a restart; the failed
 * reply is marked failed and its watchers told. Past the restart intensity
 * the session stops for good. Each supervisor is a root actor kept in the
 * registry's Map: no machine holds every session as a child (O(N²) spawns).
 */
export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    input: {} as SupervisorInput,
    events: {} as SupervisorEvent,
  },
  actors: { session: sessionLogic },
  delays: {
    backoff: ({ context }) => {
      const attempt = Math.max(1, context.restarts.length);
      return Math.min(context.policy.backoffBaseMs * 2 ** (attempt - 1), context.policy.backoffMaxMs);
    },
  },
  guards: {
    hasQueued: ({ context }) => context.conversation.hasQueued,
    mayRestart: ({ context }) => recentRestarts(context).length < context.policy.intensity,
  },
  actions: {
    failInFlight: ({ context, event }) => {
      const { conversation, deps } = context;
      const error = 'error' in event ? event.error : undefined;
      const code = codeOf(error);
      deps.logger.warn({ sessionId: conversation.sessionId, code, err: String((error as { cause?: unknown })?.cause ?? error) }, 'session actor failed');
      failCurrentReply(conversation, deps, { code, message: DEFAULT_ERROR_MESSAGES[code] });
    },
    recordRestart: assign({ restarts: ({ context }) => [...recentRestarts(context), context.deps.clock.now()] }),
    announceRestart: ({ context }) => {
      context.deps.bus.publish({
        type: 'session.restarted',
        sessionId: context.conversation.sessionId,
        restarts: context.restarts.length,
      });
    },
    cancelQueued: ({ context }) => {
      const { conversation, deps } = context;
      const dropped = conversation.cancelQueued(deps.clock.now());
      if (dropped.length === 0) return;
      persist(conversation, deps, dropped.flatMap(({ inputs }) => inputs));
      announceCancelled(conversation, deps, dropped.map(({ replyId }) => replyId));
    },
    setStopReason: assign({
      stopReason: ({ event }) => (event.type === 'stop' ? event.reason : 'restart_limit'),
    }),
    stopForGood: ({ context }) => {
      const { conversation, deps } = context;
      const now = deps.clock.now();
      const reason = context.stopReason ?? 'restart_limit';
      // At shutdown (or when this node lets the session go) the reply was cut short by the server, not by anyone's choice.
      const interrupted = reason === 'shutdown' || reason === 'unavailable';
      const reply = conversation.finishReply(interrupted ? 'interrupted' : 'cancelled', now);
      const dropped = conversation.cancelQueued(now);
      if (reply && interrupted) deps.bus.publish({ type: 'message.interrupted', sessionId: conversation.sessionId, messageId: reply.id });
      announceCancelled(conversation, deps, [...(reply && !interrupted ? [reply.id] : []), ...dropped.map(({ replyId }) => replyId)]);
      // Passivation-like stops (shutdown) leave the session usable later.
      if (reason === 'restart_limit') conversation.stop(now);
      if (reason !== 'deleted') persist(conversation, deps, [...(reply ? [reply] : []), ...dropped.flatMap(({ inputs }) => inputs)]);
      deps.bus.publish({ type: 'session.stopped', sessionId: conversation.sessionId, reason });
    },
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({ ...input, restarts: [], stopReason: undefined }),
  initial: 'dormant',
  on: {
    stop: { target: '.stopped', actions: 'setStopReason' },
  },
  states: {
    // No session actor while there is nothing to do: most sessions are idle
    // most of the time, and an actor costs ~3 KB of heap.
    dormant: {
      on: {
        'user.message': { target: 'running' },
        cancel: { actions: 'cancelQueued' },
      },
    },
    running: {
      invoke: {
        id: 'session',
        src: 'session',
        input: ({ context }) => ({ conversation: context.conversation, deps: context.deps }),
        // A message queued while the last actor was finishing is not lost: a
        // new actor takes it (a guard here, not an entry action in `dormant`
        // raising an event: one microstep less per reply).
        onDone: [{ guard: 'hasQueued', target: 'running', reenter: true }, { target: 'dormant' }],
        onError: [
          { guard: 'mayRestart', target: 'restarting', actions: ['failInFlight', 'recordRestart', 'announceRestart'] },
          { target: 'stopped', actions: ['failInFlight', 'setStopReason'] },
        ],
      },
      on: {
        'user.message': { actions: sendTo('session', ({ event }) => event) },
        cancel: { actions: sendTo('session', ({ event }) => event) },
      },
    },
    restarting: {
      after: { backoff: 'running' },
      on: {
        // Messages wait in the conversation's queue; the new actor takes them.
        'user.message': {},
        cancel: { actions: 'cancelQueued' },
      },
    },
    stopped: {
      type: 'final',
      entry: 'stopForGood',
    },
  },
});

export type SupervisorMachine = typeof supervisorMachine;
