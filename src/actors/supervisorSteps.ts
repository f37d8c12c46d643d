import type { AnyActorRef, EventObject, Snapshot } from 'xstate';

export type SupervisorState = 'dormant' | 'running' | 'restarting' | 'stopped';

/** A transition as XState's `@xstate.microstep` inspection event carries it (only the keys are read). */
interface StepTransition {
  readonly source: { readonly key: string };
  readonly target: readonly { readonly key: string }[];
}

export interface Step {
  readonly transitions: readonly StepTransition[];
  /** The machine's action names this step ran, for `@xstate.action` records. */
  readonly actions: readonly string[];
}

const ACTIONS: Record<string, readonly string[]> = {
  'dormant cancel': ['cancelQueued'],
  'restarting cancel': ['cancelQueued'],
  'running user.message': ['xstate.sendTo'],
  'running cancel': ['xstate.sendTo'],
  'running xstate.error.actor.session restarting': ['failInFlight', 'recordRestart', 'announceRestart'],
  'running xstate.error.actor.session stopped': ['failInFlight', 'setStopReason'],
};

const steps = new Map<string, Step>();

/**
 * The step from `from` to `to` on `event`, as a machine's microstep names it
 * (targetless when the state stays and nothing re-entered it; `stop` is the
 * root's transition). Built once per kind and shared: a reply takes two.
 */
export function stepOf(from: SupervisorState, to: SupervisorState, event: string): Step {
  const key = `${from} ${event} ${to}`;
  let found = steps.get(key);
  if (!found) {
    const reentered = event === 'xstate.done.actor.session' || event.startsWith('xstate.after.');
    const source = event === 'stop' ? 'supervisor' : from;
    const target = from === to && !reentered ? [] : [{ key: to }];
    const actions = event === 'stop' ? ['setStopReason', 'stopForGood'] : [...(ACTIONS[`${from} ${event} ${to}`] ?? ACTIONS[`${from} ${event}`] ?? []), ...(to === 'stopped' ? ['stopForGood'] : [])];
    found = { transitions: [{ source: { key: source }, target }], actions };
    steps.set(key, found);
  }
  return found;
}

interface InspectingSystem {
  _sendInspectionEvent(event: Record<string, unknown>): void;
}

/**
 * Tells the actor system's inspection observers (the inspector, Stately) of
 * one step, as XState does for a machine: a microstep with its transition,
 * and each action. XState has no public call for this; its system's own
 * `_sendInspectionEvent` returns at once while nobody inspects.
 */
export function announceStep(scope: { self: unknown; system: unknown }, event: EventObject, snapshot: Snapshot<unknown>, step: Step): void {
  const system = scope.system as InspectingSystem;
  const actorRef = scope.self as AnyActorRef;
  system._sendInspectionEvent({ type: '@xstate.microstep', actorRef, event, snapshot, _transitions: step.transitions });
  for (const action of step.actions) system._sendInspectionEvent({ type: '@xstate.action', actorRef, action: { type: action, params: undefined } });
}
