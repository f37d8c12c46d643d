import type { MachineChart } from './machineChart.ts';

/**
 * The supervisor's states and transitions, for the inspector's chart: what
 * the state machine it was (before supervisorActor.ts) drew from its
 * definition, written out (test/actors/supervisorChart.test.ts holds it to
 * the steps the actor announces).
 */
export const supervisorChart: MachineChart = {
  id: 'supervisor',
  initial: 'dormant',
  global: [{ event: 'stop', label: 'stop', targets: ['stopped'] }],
  states: [
    {
      key: 'dormant',
      type: 'atomic',
      invokes: [],
      transitions: [
        { event: 'user.message', label: 'user.message', targets: ['running'] },
        { event: 'cancel', label: 'cancel', targets: [] },
      ],
    },
    {
      key: 'running',
      type: 'atomic',
      invokes: ['session'],
      transitions: [
        { event: 'user.message', label: 'user.message', targets: [] },
        { event: 'cancel', label: 'cancel', targets: [] },
        { event: 'xstate.done.actor.session', label: 'session done', targets: ['running'] },
        { event: 'xstate.done.actor.session', label: 'session done', targets: ['dormant'] },
        { event: 'xstate.error.actor.session', label: 'session failed', targets: ['restarting'] },
        { event: 'xstate.error.actor.session', label: 'session failed', targets: ['stopped'] },
      ],
    },
    {
      key: 'restarting',
      type: 'atomic',
      invokes: [],
      transitions: [
        { event: 'user.message', label: 'user.message', targets: [] },
        { event: 'cancel', label: 'cancel', targets: [] },
        { event: 'xstate.after.backoff.supervisor.restarting', label: 'after backoff', targets: ['running'] },
      ],
    },
    { key: 'stopped', type: 'final', invokes: [], transitions: [] },
  ],
};
