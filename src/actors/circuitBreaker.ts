import { createActor } from 'xstate';
import type { Clock, Logger } from '../domain/ports.ts';
import { DEFAULT_BREAKER_SETTINGS, circuitBreakerMachine, failureRate } from './circuitBreakerMachine.ts';
import type { BreakerSettings } from './circuitBreakerMachine.ts';

export type BreakerState = 'closed' | 'open' | 'half_open';

/** What `GET /api/status` shows of a breaker. */
export interface BreakerStatus {
  state: BreakerState;
  consecutiveFailures: number;
  /** Failed share of the recent calls counted while closed, in percent. */
  recentFailureRate: number;
  recentCalls: number;
  /** When it opened (ms since the epoch), while open or half-open. */
  openedAt: number | null;
  /** When a probe will be let through, while open. */
  probeAt: number | null;
  /** The upstream asked (`Retry-After`) not to be called before this time; until then calls fail at once. */
  heldUntil: number | null;
}

/** Admission to one call; report exactly one outcome. */
export interface BreakerPermit {
  success(): void;
  /** With `retryAfterMs` (the upstream's `Retry-After`), no call goes through for that long. */
  failure(hold?: { retryAfterMs: number; rateLimited: boolean }): void;
  /** The call ended without telling anything about the upstream (cancelled, a bug). */
  abandon(): void;
}

/** Why a call was refused, and for how long. */
export interface BreakerRefusal {
  /** True while an upstream's 429 `Retry-After` holds calls back (else: open, or a 503's `Retry-After`). */
  rateLimited: boolean;
  /** When trying again makes sense, if known. */
  retryAfterMs: number | undefined;
}

export interface CircuitBreaker {
  /** A permit, or undefined when the breaker refuses calls (open, half-open with its probe out, or held by a `Retry-After`). */
  tryAcquire(): BreakerPermit | undefined;
  /** Why calls are refused right now (meaningful after `tryAcquire` returned undefined). */
  refusal(): BreakerRefusal;
  status(): BreakerStatus;
  stop(): void;
}

export interface CircuitBreakerOptions extends Partial<BreakerSettings> {
  name: string;
  clock: Clock;
  logger: Logger;
}

const STATE_NAMES: Record<string, BreakerState> = { closed: 'closed', open: 'open', halfOpen: 'half_open' };

/** Timers may fire a millisecond early: a caller that waited out a hold exactly is let through. */
const HOLD_TOLERANCE_MS = 10;

/** Runs the breaker machine as a root actor and gives callers a small synchronous API. */
export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  const { clock, logger, name } = options;
  const settings: BreakerSettings = {
    failureThreshold: options.failureThreshold ?? DEFAULT_BREAKER_SETTINGS.failureThreshold,
    failureRatePercent: options.failureRatePercent ?? DEFAULT_BREAKER_SETTINGS.failureRatePercent,
    window: options.window ?? DEFAULT_BREAKER_SETTINGS.window,
    cooldownMs: options.cooldownMs ?? DEFAULT_BREAKER_SETTINGS.cooldownMs,
  };
  const actor = createActor(circuitBreakerMachine, { input: { settings, now: () => clock.now() }, clock });
  let previous: BreakerState = 'closed';
  actor.subscribe({
    next: (snapshot) => {
      const state = STATE_NAMES[String(snapshot.value)] ?? 'closed';
      if (state === previous) return;
      const fields = { provider: name, from: previous, to: state, consecutiveFailures: snapshot.context.consecutiveFailures };
      if (state === 'open') logger.warn(fields, 'circuit breaker opened');
      else logger.info(fields, 'circuit breaker changed state');
      previous = state;
    },
    error: (error: unknown) => logger.error({ provider: name, err: String(error) }, 'circuit breaker failed'),
  });
  actor.start();
  // An upstream's Retry-After: kept beside the machine, as a deadline rather than a state, so
  // it needs no timer and holds whatever the machine's state.
  let heldUntil = 0;
  let heldForRateLimit = false;
  const held = () => clock.now() + HOLD_TOLERANCE_MS < heldUntil;

  // A success that changes nothing (closed, no failure in the full window) is not sent: see tryAcquire.
  const idleSuccess = (epoch: number) => {
    const snapshot = actor.getSnapshot();
    if (snapshot.value !== 'closed') return false;
    const { context } = snapshot;
    return context.epoch === epoch && context.consecutiveFailures === 0 && context.outcomes.length >= settings.window && !context.outcomes.includes(true);
  };

  const settle = (epoch: number) => {
    let settled = false;
    const report = (type: 'success' | 'failure' | 'abandon') => () => {
      if (settled) return;
      settled = true;
      if (type === 'success' && idleSuccess(epoch)) return;
      actor.send({ type, epoch });
    };
    const failure = report('failure');
    return {
      success: report('success'),
      failure: (hold?: { retryAfterMs: number; rateLimited: boolean }) => {
        if (hold && hold.retryAfterMs > 0 && !settled) {
          const until = clock.now() + hold.retryAfterMs;
          if (until > heldUntil) {
            heldUntil = until;
            heldForRateLimit = hold.rateLimited;
            logger.warn({ provider: name, retryAfterMs: hold.retryAfterMs, rateLimited: hold.rateLimited }, 'upstream asked to wait (Retry-After): holding calls');
          }
        }
        failure();
      },
      abandon: report('abandon'),
    };
  };

  return {
    refusal() {
      if (held()) return { rateLimited: heldForRateLimit, retryAfterMs: heldUntil - clock.now() };
      const probeAt = this.status().probeAt;
      return { rateLimited: false, retryAfterMs: probeAt === null ? undefined : Math.max(0, probeAt - clock.now()) };
    },
    tryAcquire() {
      if (held()) return undefined;
      // Closed lets every call through and its `grant` only counts it, so the
      // steady state takes no transition: an acquire and a success stepped
      // through the machine were 11 µs per upstream call, 1 µs without.
      const snapshot = actor.getSnapshot();
      if (snapshot.value === 'closed') return settle(snapshot.context.epoch);
      const before = snapshot.context.grants;
      actor.send({ type: 'acquire' });
      const after = actor.getSnapshot().context;
      return after.grants === before ? undefined : settle(after.epoch);
    },
    status() {
      const snapshot = actor.getSnapshot();
      const { context } = snapshot;
      const state = STATE_NAMES[String(snapshot.value)] ?? 'closed';
      return {
        state,
        consecutiveFailures: context.consecutiveFailures,
        recentFailureRate: Math.round(failureRate(context.outcomes)),
        recentCalls: context.outcomes.length,
        openedAt: context.openedAt ?? null,
        probeAt: state === 'open' && context.openedAt !== undefined ? context.openedAt + settings.cooldownMs : null,
        heldUntil: held() ? heldUntil : null,
      };
    },
    stop() {
      actor.stop();
    },
  };
}
