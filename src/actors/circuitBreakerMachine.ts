import { assign, setup } from 'xstate';

export interface BreakerSettings {
  /** Opens after this many failures in a row (0 = never on a streak). */
  failureThreshold: number;
  /** Opens when this percentage of the last `window` calls failed (0 = never on a rate). */
  failureRatePercent: number;
  /** Calls the failure rate is measured over; the rate counts once this many were seen. */
  window: number;
  /** Time spent open before one probe call is let through. */
  cooldownMs: number;
}

export const DEFAULT_BREAKER_SETTINGS: BreakerSettings = {
  failureThreshold: 5,
  failureRatePercent: 50,
  window: 20,
  cooldownMs: 30_000,
};

export interface BreakerInput {
  settings: BreakerSettings;
  now: () => number;
}

interface BreakerContext extends BreakerInput {
  /** Bumped on every change of state: an outcome from an older epoch is ignored. */
  epoch: number;
  /** Bumped on every call let through; how callers learn they were admitted. */
  grants: number;
  consecutiveFailures: number;
  /** Outcomes of the most recent calls while closed, oldest first (true = failed). */
  outcomes: boolean[];
  openedAt: number | undefined;
  probing: boolean;
}

export type BreakerEvent =
  | { type: 'acquire' }
  | { type: 'success'; epoch: number }
  | { type: 'failure'; epoch: number }
  /** A call ended without telling anything about the upstream (cancelled, a bug). */
  | { type: 'abandon'; epoch: number };

function failureRate(outcomes: readonly boolean[]): number {
  if (outcomes.length === 0) return 0;
  return (outcomes.filter(Boolean).length * 100) / outcomes.length;
}

function withOutcome(context: BreakerContext, failed: boolean): boolean[] {
  const outcomes = [...context.outcomes, failed];
  return outcomes.length > context.settings.window ? outcomes.slice(outcomes.length - context.settings.window) : outcomes;
}

/**
 * A circuit breaker for one provider. Closed: calls go through and outcomes
 * are counted; N failures in a row, or a failure rate over a full window,
 * open it. Open: calls are refused until the cool-down ends. Half-open: one
 * probe call goes through; its success closes the breaker, its failure opens
 * it again. Time comes from the actor's clock (`createActor(..., { clock })`).
 */
export const circuitBreakerMachine = setup({
  types: {
    context: {} as BreakerContext,
    input: {} as BreakerInput,
    events: {} as BreakerEvent,
  },
  delays: {
    cooldown: ({ context }) => context.settings.cooldownMs,
  },
  guards: {
    current: ({ context, event }) => 'epoch' in event && event.epoch === context.epoch,
    tripsOnFailure: ({ context, event }) => {
      if (!('epoch' in event) || event.epoch !== context.epoch) return false;
      const { failureThreshold, failureRatePercent, window } = context.settings;
      if (failureThreshold > 0 && context.consecutiveFailures + 1 >= failureThreshold) return true;
      const outcomes = withOutcome(context, true);
      return failureRatePercent > 0 && outcomes.length >= window && failureRate(outcomes) >= failureRatePercent;
    },
    noProbeYet: ({ context }) => !context.probing,
  },
  actions: {
    grant: assign({ grants: ({ context }) => context.grants + 1 }),
    grantProbe: assign({ grants: ({ context }) => context.grants + 1, probing: true }),
    countSuccess: assign({ consecutiveFailures: 0, outcomes: ({ context }) => withOutcome(context, false) }),
    countFailure: assign({
      consecutiveFailures: ({ context }) => context.consecutiveFailures + 1,
      outcomes: ({ context }) => withOutcome(context, true),
    }),
    enterOpen: assign({
      epoch: ({ context }) => context.epoch + 1,
      openedAt: ({ context }) => context.now(),
      probing: false,
    }),
    enterHalfOpen: assign({ epoch: ({ context }) => context.epoch + 1, probing: false }),
    enterClosed: assign({
      epoch: ({ context }) => context.epoch + 1,
      consecutiveFailures: 0,
      outcomes: [],
      openedAt: undefined,
      probing: false,
    }),
    releaseProbe: assign({ probing: false }),
  },
}).createMachine({
  id: 'circuitBreaker',
  context: ({ input }) => ({
    ...input,
    epoch: 0,
    grants: 0,
    consecutiveFailures: 0,
    outcomes: [],
    openedAt: undefined,
    probing: false,
  }),
  initial: 'closed',
  states: {
    closed: {
      entry: 'enterClosed',
      on: {
        acquire: { actions: 'grant' },
        success: { guard: 'current', actions: 'countSuccess' },
        failure: [
          { guard: 'tripsOnFailure', target: 'open', actions: 'countFailure' },
          { guard: 'current', actions: 'countFailure' },
        ],
      },
    },
    open: {
      entry: 'enterOpen',
      after: { cooldown: 'halfOpen' },
    },
    halfOpen: {
      entry: 'enterHalfOpen',
      on: {
        acquire: { guard: 'noProbeYet', actions: 'grantProbe' },
        success: { guard: 'current', target: 'closed' },
        failure: { guard: 'current', target: 'open' },
        abandon: { guard: 'current', actions: 'releaseProbe' },
      },
    },
  },
});

export type CircuitBreakerMachine = typeof circuitBreakerMachine;
export { failureRate };
