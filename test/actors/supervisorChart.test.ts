import { afterEach, describe, expect, it } from 'vitest';
import type { InspectionEvent } from 'xstate';
import { createSessionRegistry } from '../../src/actors/sessionRegistry.ts';
import type { SessionRegistry } from '../../src/actors/sessionRegistry.ts';
import { supervisorChart } from '../../src/actors/supervisorChart.ts';
import { createInProcessBus } from '../../src/infra/inProcessBus.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { createSimulatedProvider } from '../../src/infra/simulatedProvider.ts';
import { ManualClock, settle } from '../support/manualClock.ts';
import { failingOn } from '../support/scriptedProvider.ts';
import { sequentialIds } from '../support/sequentialIds.ts';

const INTERVAL = 100;
const registries: SessionRegistry[] = [];
afterEach(async () => {
  for (const registry of registries.splice(0)) await registry.close();
});

/** Every supervisor step the inspection observers were told of, as `from event → to` (targetless: `from event`). */
function setup() {
  const clock = new ManualClock();
  const steps: string[] = [];
  const provider = failingOn(createSimulatedProvider({ chunks: 5, intervalMs: INTERVAL, clock }), 'explode', 2);
  const registry = createSessionRegistry({
    bus: createInProcessBus(),
    store: createMemoryStore(),
    provider,
    clock,
    logger: silentLogger,
    ids: sequentialIds(),
    restartPolicy: { intensity: 1, periodMs: 60_000, backoffBaseMs: 10 },
    inspect: (event: InspectionEvent) => {
      if (event.type !== '@xstate.microstep' || (event.actorRef as { id?: unknown }).id === 'session') return;
      for (const transition of event._transitions) {
        steps.push(`${transition.source.key} ${event.event.type}${(transition.target ?? []).map((target) => ` → ${target.key}`).join('')}`);
      }
    },
  });
  registries.push(registry);
  return { clock, registry, steps };
}

/** The same notation for every transition the inspector's chart draws. */
function charted(): Set<string> {
  const out = new Set<string>();
  for (const transition of supervisorChart.global) out.add(`supervisor ${transition.event}${transition.targets.map((target) => ` → ${target}`).join('')}`);
  for (const state of supervisorChart.states) {
    for (const transition of state.transitions) out.add(`${state.key} ${transition.event}${transition.targets.map((target) => ` → ${target}`).join('')}`);
  }
  return out;
}

describe('supervisor chart', () => {
  it('draws every step the supervisor announces: a reply, a queued one, a cancel, a crash and its restart, the limit, a stop', async () => {
    const { clock, registry, steps } = setup();
    const session = await registry.create();
    await session.send('one');
    await session.send('two');
    await clock.advance(10 * INTERVAL);
    session.cancel(); // nothing pending: no step
    await session.send('three');
    session.cancel();
    await settle();
    await session.send('explode once');
    await clock.advance(3 * INTERVAL + 100);
    await session.send('explode twice');
    await clock.advance(3 * INTERVAL + 100);
    const other = await registry.create();
    await other.send('four');
    await registry.remove(other.sessionId);

    expect(steps).toEqual([
      'dormant user.message → running',
      'running user.message',
      'running xstate.done.actor.session → dormant',
      'dormant user.message → running',
      'running cancel',
      'running xstate.done.actor.session → dormant',
      'dormant user.message → running',
      'running xstate.error.actor.session → restarting',
      'restarting xstate.after.backoff.supervisor.restarting → running',
      'running xstate.done.actor.session → dormant',
      'dormant user.message → running',
      'running xstate.error.actor.session → stopped',
      'dormant user.message → running',
      'supervisor stop → stopped',
    ]);
    const chart = charted();
    for (const step of steps) expect(chart, step).toContain(step);
  });
});
