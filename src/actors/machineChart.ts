import type { AnyStateMachine } from 'xstate';

/** A machine's states and transitions as the inspector draws them (no contexts, no functions). */

export interface ChartTransition {
  /** The machine event, e.g. `cancel` or `generation.done`. */
  event: string;
  /** Readable name for the event. */
  label: string;
  /** Target states; empty for a transition that stays (actions only). */
  targets: string[];
}

export interface ChartState {
  key: string;
  type: string;
  invokes: string[];
  transitions: ChartTransition[];
}

export interface MachineChart {
  id: string;
  initial: string | undefined;
  /** Transitions on the machine's root, taken from any state. */
  global: ChartTransition[];
  states: ChartState[];
}

function labelOf(event: string): string {
  const part = event.split('.')[3];
  if (event.startsWith('xstate.done.actor.')) return `${part} done`;
  if (event.startsWith('xstate.error.actor.')) return `${part} failed`;
  if (event.startsWith('xstate.after.')) return `after ${event.split('.')[2]}`;
  return event;
}

function transitionsOf(node: AnyStateMachine['root']): ChartTransition[] {
  const out: ChartTransition[] = [];
  for (const [event, definitions] of node.transitions) {
    for (const definition of definitions) {
      out.push({ event, label: labelOf(event), targets: (definition.target ?? []).map((target) => target.key) });
    }
  }
  return out;
}

export function chartOf(machine: AnyStateMachine): MachineChart {
  return {
    id: machine.id,
    initial: machine.root.initial?.target[0]?.key,
    global: transitionsOf(machine.root),
    states: Object.values(machine.root.states).map((node) => ({
      key: node.key,
      type: node.type,
      invokes: node.invoke.map((invoke) => invoke.id),
      transitions: transitionsOf(node),
    })),
  };
}
