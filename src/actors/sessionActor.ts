import type { ActorLogic, ActorRef, Snapshot } from 'xstate';
import type { Conversation } from '../domain/conversation.ts';
import { ChatError, isChatError, isUpstreamFailure } from '../domain/errors.ts';
import type { ErrorCode } from '../domain/errors.ts';
import { runGeneration, startReply } from './generationTask.ts';
import { takeHeadStart } from './headStart.ts';
import { ReplyAbort } from './replyAbort.ts';
import type { MachineChart } from './machineChart.ts';
import { cancelEverything, completeCurrentReply, failCurrentReply } from './sessionEffects.ts';
import type { SessionDeps } from './sessionEffects.ts';

const STORE_FAILURES: readonly ErrorCode[] = ['store_unavailable', 'session_not_found'];

export interface SessionInput {
  conversation: Conversation;
  deps: SessionDeps;
}

export type SessionEvent =
  /** A user message was accepted into the conversation's queue (read when the reply in progress ends). */
  | { type: 'user.message' }
  /** Stop the reply in progress and drop the queued messages. */
  | { type: 'cancel' }
  /** From the actor's own generation task: the reply streamed to its end. */
  | { type: 'generation.done' }
  /** From the actor's own generation task: the provider failed. */
  | { type: 'generation.failed'; error: unknown };

/** What the actor holds while it lives: its conversation (lent by the supervisor) and the reply in progress. */
interface SessionTask {
  readonly conversation: Conversation;
  readonly deps: SessionDeps;
  /** Set while a generation runs: a cancel or the actor's stop aborts it. */
  replyAbort: ReplyAbort | undefined;
}

/** `value` as a machine's snapshot has it, so the inspector reads both actors alike. */
export type SessionSnapshot = Snapshot<undefined> & { value: 'generating' | 'done'; readonly task: SessionTask };

type Self = ActorRef<SessionSnapshot, SessionEvent>;

// One object for every reply's end: nothing reads it but this logic.
const GENERATION_DONE: SessionEvent = Object.freeze({ type: 'generation.done' });

function startGeneration(task: SessionTask, self: Self): void {
  const started = startReply(task.conversation, task.deps);
  // A fresh reply may find the model asked while its message was stored: the reply adopts that request and its abort.
  const headStart = started && !started.resumed ? takeHeadStart(task.conversation, started.current.reply.id) : undefined;
  const replyAbort = headStart?.replyAbort ?? new ReplyAbort();
  task.replyAbort = replyAbort;
  runGeneration(task.conversation, task.deps, replyAbort, started, headStart).then(
    () => settle(task, replyAbort, self, GENERATION_DONE),
    (error: unknown) => settle(task, replyAbort, self, { type: 'generation.failed', error }),
  );
}

/** The generation ended: its actor hears of it unless it was aborted (a module function: a named closure per reply costs tsx's `__name` too). */
function settle(task: SessionTask, replyAbort: ReplyAbort, self: Self, event: SessionEvent): void {
  if (replyAbort.aborted) return;
  // Settled: nothing left to abort.
  if (task.replyAbort === replyAbort) task.replyAbort = undefined;
  self.send(event);
}

function abortGeneration(task: SessionTask): void {
  task.replyAbort?.abort();
  task.replyAbort = undefined;
}

/** The model's server failing, or the store failing to keep the reply's chunk numbers: expected, not a bug. */
function isExpectedFailure(error: unknown): error is ChatError {
  return isUpstreamFailure(error) || (isChatError(error) && STORE_FAILURES.includes(error.code));
}

function finished(snapshot: SessionSnapshot): SessionSnapshot {
  return { status: 'done', output: undefined, error: undefined, value: 'done', task: snapshot.task };
}

/** After a reply ends: the next queued message, or done (the supervisor goes dormant). */
function nextReply(snapshot: SessionSnapshot, self: Self): SessionSnapshot {
  if (!snapshot.task.conversation.hasQueued) return finished(snapshot);
  startGeneration(snapshot.task, self);
  return snapshot;
}

/**
 * One chat session at work: generating replies until the queue is empty,
 * then done. Its own small actor logic, not a state machine: a machine actor
 * spawned per busy period (state nodes resolved, a snapshot, microsteps and
 * actions stepped per event) was 56% of the bytes allocated per reply in the
 * 5,000-session burst (bench/allocations.ts), for two states. It is still an
 * XState actor, invoked by its supervisor, so supervision and inspection see
 * it as before: it starts in `generating`, its snapshots carry `value`, a
 * provider failure that is not the model's server or the store failing is
 * thrown from its transition, so XState marks it errored and the supervisor's
 * `onError` restarts it by policy.
 * Each reply is a task with its own abort (replyAbort.ts, generationTask.ts),
 * aborted at once by a cancel and by the actor's stop (the session deleted,
 * passivated, or the server shutting down).
 */
export const sessionLogic: ActorLogic<SessionSnapshot, SessionEvent, SessionInput> = {
  getInitialSnapshot: (_scope, { conversation, deps }) => ({
    status: 'active',
    output: undefined,
    error: undefined,
    value: 'generating',
    task: { conversation, deps, replyAbort: undefined },
  }),

  start: (snapshot, { self }) => startGeneration(snapshot.task, self),

  transition: (snapshot, event, { self }) => {
    if (snapshot.status !== 'active') return snapshot;
    const { task } = snapshot;
    // XState sends its own `xstate.stop` through here when the actor is stopped.
    const type: string = event.type;
    switch (type) {
      case 'generation.done':
        completeCurrentReply(task.conversation, task.deps);
        return nextReply(snapshot, self);
      case 'generation.failed': {
        const error = (event as { error?: unknown }).error;
        // Let it crash: the supervisor owns recovery.
        if (!isExpectedFailure(error)) throw isChatError(error) ? error : new ChatError('provider_error', undefined, { cause: error });
        // The model's server failing: the reply fails, the session stays up, no restart is spent on it.
        failCurrentReply(task.conversation, task.deps, error);
        return nextReply(snapshot, self);
      }
      case 'cancel':
        // A cancel drops the queue too: nothing is left to do.
        abortGeneration(task);
        cancelEverything(task.conversation, task.deps);
        return finished(snapshot);
      case 'xstate.stop':
        abortGeneration(task);
        return { ...snapshot, status: 'stopped' };
      default:
        return snapshot;
    }
  },

  // Never persisted: the conversation is (see docs: persist the domain, not in-flight work).
  getPersistedSnapshot: ({ status, value }) => ({ status, value, output: undefined, error: undefined }) as Snapshot<undefined>,
};

/** The session actor's states and transitions, for the inspector's chart (a machine's are read from it). */
export const sessionChart: MachineChart = {
  id: 'session',
  initial: 'generating',
  global: [],
  states: [
    {
      key: 'generating',
      type: 'atomic',
      invokes: [],
      transitions: [
        { event: 'generation.done', label: 'generation.done (next queued)', targets: ['generating'] },
        { event: 'generation.done', label: 'generation.done', targets: ['done'] },
        { event: 'generation.failed', label: 'model failed (next queued)', targets: ['generating'] },
        { event: 'generation.failed', label: 'model failed', targets: ['done'] },
        { event: 'generation.failed', label: 'generation.failed (a bug: crash, the supervisor restarts it)', targets: [] },
        { event: 'cancel', label: 'cancel', targets: ['done'] },
      ],
    },
    { key: 'done', type: 'final', invokes: [], transitions: [] },
  ],
};
