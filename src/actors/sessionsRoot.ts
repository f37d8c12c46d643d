import { createActor } from 'xstate';
import type { Actor, ActorLogic, AnyActorRef, InspectionEvent, Observer, Snapshot } from 'xstate';
import type { Clock } from '../domain/ports.ts';
import { supervisorLogic } from './supervisorActor.ts';
import type { SupervisorInput, SupervisorLogic } from './supervisorActor.ts';

type RootEvent = { type: 'passivate'; supervisor: AnyActorRef } | { type: 'xstate.stop' };

/**
 * The parent of a registry's supervisors. It holds no list of them (no
 * machine keeps every session as a child: O(N²) spawns); it is their actor
 * system and the one actor allowed to stop them. It ignores their ends
 * (`xstate.done.actor.…`, `xstate.error.actor.…`): the registry hears of
 * those through its observer on each supervisor.
 */
const rootLogic: ActorLogic<Snapshot<undefined>, RootEvent, undefined> = {
  getInitialSnapshot: () => ({ status: 'active', output: undefined, error: undefined }),
  transition: (snapshot, event, scope) => {
    if (snapshot.status !== 'active') return snapshot;
    const type: string = event.type;
    if (type === 'passivate') scope.stopChild((event as { supervisor: AnyActorRef }).supervisor);
    if (type === 'xstate.stop') return { ...snapshot, status: 'stopped' };
    return snapshot;
  },
  getPersistedSnapshot: ({ status }) => ({ status, output: undefined, error: undefined }) as Snapshot<undefined>,
};

export interface SessionsRoot {
  /** A supervisor for one session, in the root's actor system (not started). */
  spawn(input: SupervisorInput): Actor<SupervisorLogic>;
  /** Stops a supervisor without ending its session (passivation): XState's `xstate.stop`, as `actor.stop()` does for a root. */
  passivate(supervisor: Actor<SupervisorLogic>): void;
  stop(): void;
}

/**
 * One XState actor system for every session of a registry. Each supervisor
 * was a root actor with a system of its own (three Maps, a WeakMap, a Set, a
 * scheduler and a dozen closures): ~1.8 KB of every idle session's heap in
 * the 5,000-connection burst. Inspection observers are the system's, so
 * `inspect` still sees every supervisor and session actor (as the root's
 * children).
 */
export function createSessionsRoot(options: { clock: Clock; inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void) }): SessionsRoot {
  const root = createActor(rootLogic, { clock: options.clock, ...(options.inspect ? { inspect: options.inspect } : {}) });
  root.start();
  return {
    spawn: (input) => createActor(supervisorLogic, { parent: root, input }),
    passivate(supervisor) {
      root.send({ type: 'passivate', supervisor });
    },
    stop() {
      root.stop();
    },
  };
}
