import { createActor } from 'xstate';
import type { Actor, ActorLogic, ActorScope, AnyActorRef, Snapshot } from 'xstate';
import type { Conversation } from '../domain/conversation.ts';
import { DEFAULT_ERROR_MESSAGES, isChatError } from '../domain/errors.ts';
import type { ErrorCode } from '../domain/errors.ts';
import type { StopReason } from '../domain/events.ts';
import { sessionLogic } from './sessionActor.ts';
import type { SessionEvent } from './sessionActor.ts';
import { announceCancelled, failCurrentReply, persist } from './sessionEffects.ts';
import type { SessionDeps } from './sessionEffects.ts';
import { announceStep, stepOf } from './supervisorSteps.ts';
import type { SupervisorState } from './supervisorSteps.ts';

export type { SupervisorState } from './supervisorSteps.ts';

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

type SessionActor = Actor<typeof sessionLogic>;

/** What a machine's snapshot has that the registry, the inspector and the tests read: `value`, `context`, `children.session`. */
export type SupervisorSnapshot = Snapshot<undefined> & {
  value: SupervisorState;
  readonly context: SupervisorContext;
  readonly children: { session?: SessionActor };
};

type Scope = ActorScope<SupervisorSnapshot, SupervisorEvent>;

/** The events the supervisor gets from its child and its own timer, beside the public ones. */
const CHILD_DONE = 'xstate.done.actor.session';
const CHILD_ERROR = 'xstate.error.actor.session';
// A machine's name for an `after` in state `restarting`, so the chart and the records read as before.
const BACKOFF = 'xstate.after.backoff.supervisor.restarting';
const BACKOFF_EVENT = Object.freeze({ type: BACKOFF });

function recentRestarts(context: SupervisorContext): number[] {
  const since = context.deps.clock.now() - context.policy.periodMs;
  return context.restarts.filter((at) => at > since);
}

function codeOf(error: unknown): ErrorCode {
  return isChatError(error) ? error.code : 'internal_error';
}

function backoffMs(context: SupervisorContext): number {
  const attempt = Math.max(1, context.restarts.length);
  return Math.min(context.policy.backoffBaseMs * 2 ** (attempt - 1), context.policy.backoffMaxMs);
}

function at(snapshot: SupervisorSnapshot, value: SupervisorState, session?: SessionActor): SupervisorSnapshot {
  return { status: value === 'stopped' ? 'done' : 'active', output: undefined, error: undefined, value, context: snapshot.context, children: session ? { session } : {} };
}

/** Spawns the session actor as this actor's child, started once this step's snapshot is in place (as a machine's invoke). */
function spawnSession(snapshot: SupervisorSnapshot, scope: Scope): SupervisorSnapshot {
  const { conversation, deps } = snapshot.context;
  const child = createActor(sessionLogic, { parent: scope.self as AnyActorRef, id: 'session', input: { conversation, deps } });
  scope.defer(() => child.start());
  return at(snapshot, 'running', child);
}

function stopSession(snapshot: SupervisorSnapshot, scope: Scope): void {
  const child = snapshot.children.session;
  if (child) scope.stopChild(child);
}

function failInFlight(context: SupervisorContext, error: unknown): void {
  const { conversation, deps } = context;
  const code = codeOf(error);
  deps.logger.warn({ sessionId: conversation.sessionId, code, err: String((error as { cause?: unknown })?.cause ?? error) }, 'session actor failed');
  failCurrentReply(conversation, deps, { code, message: DEFAULT_ERROR_MESSAGES[code] });
}

function cancelQueued(context: SupervisorContext): void {
  const { conversation, deps } = context;
  const dropped = conversation.cancelQueued(deps.clock.now());
  if (dropped.length === 0) return;
  persist(conversation, deps, dropped.flatMap(({ inputs }) => inputs));
  announceCancelled(conversation, deps, dropped.map(({ replyId }) => replyId));
}

function stopForGood(context: SupervisorContext): void {
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
}

/** Enters `stopped` (final): the session ends for good, its watchers told. */
function stopped(snapshot: SupervisorSnapshot, reason: StopReason): SupervisorSnapshot {
  snapshot.context.stopReason = reason;
  stopForGood(snapshot.context);
  return at(snapshot, 'stopped');
}

/** The child failed: restart it by policy after a backoff, or stop for good past the intensity. */
function childFailed(snapshot: SupervisorSnapshot, error: unknown, scope: Scope): SupervisorSnapshot {
  const { context } = snapshot;
  failInFlight(context, error);
  if (recentRestarts(context).length >= context.policy.intensity) return stopped(snapshot, 'restart_limit');
  context.restarts = [...recentRestarts(context), context.deps.clock.now()];
  context.deps.bus.publish({ type: 'session.restarted', sessionId: context.conversation.sessionId, restarts: context.restarts.length });
  scope.system.scheduler.schedule(scope.self, scope.self, BACKOFF_EVENT, backoffMs(context), 'backoff');
  return at(snapshot, 'restarting');
}

/** One step of the state chart (supervisorSteps.ts); `undefined` when the event means nothing in this state. */
function step(snapshot: SupervisorSnapshot, event: { type: string; error?: unknown; reason?: StopReason }, scope: Scope): SupervisorSnapshot | undefined {
  const { context, value } = snapshot;
  if (event.type === 'stop') {
    stopSession(snapshot, scope);
    if (value === 'restarting') scope.system.scheduler.cancel(scope.self, 'backoff');
    return stopped(snapshot, event.reason ?? 'restart_limit');
  }
  switch (value) {
    case 'dormant':
      if (event.type === 'user.message') return spawnSession(snapshot, scope);
      if (event.type === 'cancel') cancelQueued(context);
      return event.type === 'cancel' ? snapshot : undefined;
    case 'running':
      if (event.type === 'user.message' || event.type === 'cancel') {
        snapshot.children.session?.send(event as SessionEvent);
        return snapshot;
      }
      // A message queued while the last actor was finishing is not lost: a new actor takes it.
      if (event.type === CHILD_DONE) return context.conversation.hasQueued ? spawnSession(snapshot, scope) : at(snapshot, 'dormant');
      if (event.type === CHILD_ERROR) return childFailed(snapshot, event.error, scope);
      return undefined;
    case 'restarting':
      // Messages wait in the conversation's queue; the new actor takes them.
      if (event.type === 'user.message') return snapshot;
      if (event.type === 'cancel') {
        cancelQueued(context);
        return snapshot;
      }
      return event.type === BACKOFF ? spawnSession(snapshot, scope) : undefined;
    default:
      return undefined;
  }
}

/**
 * Spawns the session actor when there is work (dormant → running), watches
 * it and restarts it one-for-one when it fails. The conversation lives here,
 * so the history survives a restart; the failed reply is marked failed and
 * its watchers told. Past the restart intensity the session stops for good.
 * Each supervisor is kept in the registry's Map, a child of the registry's
 * sessions root (sessionsRoot.ts) only in that it shares its actor system:
 * no machine holds every session as a child (O(N²) spawns).
 *
 * Its own small actor logic, not a state machine: the machine's dormant →
 * running → dormant step per busy period (state nodes resolved, snapshots
 * cloned, microsteps computed, the invoke spawned and stopped) allocated
 * ~30 KB of the 112 KB per reply in the 5,000-session burst
 * (bench/allocations.ts), for four states and nine transitions. It keeps
 * what users and the inspector see: the same states (`value`), the session
 * actor as its child `session` (an XState actor, spawned per busy period),
 * the same events, and a `@xstate.microstep` record per step with the
 * transition taken (supervisorSteps.ts), so the inspector draws it as
 * before (supervisorChart.ts).
 */
export const supervisorLogic: ActorLogic<SupervisorSnapshot, SupervisorEvent, SupervisorInput> = {
  getInitialSnapshot: (_scope, input) => ({
    status: 'active',
    output: undefined,
    error: undefined,
    value: 'dormant',
    context: { ...input, restarts: [], stopReason: undefined },
    children: {},
  }),

  transition: (snapshot, event, scope) => {
    if (snapshot.status !== 'active') return snapshot;
    // XState sends its own `xstate.stop` through here when the actor is stopped (passivation): no final state, nothing announced.
    const type: string = event.type;
    if (type === 'xstate.stop') {
      stopSession(snapshot, scope);
      return { ...snapshot, status: 'stopped', children: {} };
    }
    const next = step(snapshot, event, scope);
    if (!next) return snapshot;
    announceStep(scope, event, next, stepOf(snapshot.value, next.value, event.type));
    return next;
  },

  // Never persisted: the conversation is (see docs: persist the domain, not in-flight work).
  getPersistedSnapshot: ({ status, value }) => ({ status, value, output: undefined, error: undefined }) as Snapshot<undefined>,
};

export type SupervisorLogic = typeof supervisorLogic;
