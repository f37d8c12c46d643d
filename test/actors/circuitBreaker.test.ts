import { afterEach, describe, expect, it } from 'vitest';
import { createCircuitBreaker } from '../../src/actors/circuitBreaker.ts';
import type { CircuitBreaker, CircuitBreakerOptions } from '../../src/actors/circuitBreaker.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { ManualClock } from '../support/manualClock.ts';

const breakers: CircuitBreaker[] = [];
afterEach(() => {
  for (const breaker of breakers.splice(0)) breaker.stop();
});

function setup(options: Partial<CircuitBreakerOptions> = {}) {
  const clock = new ManualClock();
  const breaker = createCircuitBreaker({
    name: 'test',
    clock,
    logger: silentLogger,
    failureThreshold: 3,
    failureRatePercent: 0,
    window: 10,
    cooldownMs: 1_000,
    ...options,
  });
  breakers.push(breaker);
  return { clock, breaker };
}

const fail = (breaker: CircuitBreaker, times = 1) => {
  for (let index = 0; index < times; index += 1) breaker.tryAcquire()!.failure();
};
const succeed = (breaker: CircuitBreaker, times = 1) => {
  for (let index = 0; index < times; index += 1) breaker.tryAcquire()!.success();
};

describe('circuit breaker', () => {
  it('stays closed below the streak and a success resets the streak', () => {
    const { breaker } = setup();
    fail(breaker, 2);
    succeed(breaker);
    fail(breaker, 2);
    expect(breaker.status()).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
  });

  it('opens after N consecutive failures and then refuses calls', () => {
    const { breaker, clock } = setup();
    fail(breaker, 3);
    expect(breaker.status()).toEqual({
      state: 'open',
      consecutiveFailures: 3,
      recentFailureRate: 100,
      recentCalls: 3,
      openedAt: clock.now(),
      probeAt: clock.now() + 1_000,
      heldUntil: null,
    });
    expect(breaker.tryAcquire()).toBeUndefined();
  });

  it('goes half-open after the cool-down and lets exactly one probe through', async () => {
    const { breaker, clock } = setup();
    fail(breaker, 3);
    await clock.advance(999);
    expect(breaker.status().state).toBe('open');
    await clock.advance(1);
    expect(breaker.status().state).toBe('half_open');
    const probe = breaker.tryAcquire();
    expect(probe).toBeDefined();
    expect(breaker.tryAcquire()).toBeUndefined();
    probe!.success();
    expect(breaker.status()).toMatchObject({ state: 'closed', consecutiveFailures: 0, recentCalls: 0, openedAt: null });
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('a failed probe opens it again for another cool-down', async () => {
    const { breaker, clock } = setup();
    fail(breaker, 3);
    await clock.advance(1_000);
    breaker.tryAcquire()!.failure();
    expect(breaker.status()).toMatchObject({ state: 'open', openedAt: clock.now(), probeAt: clock.now() + 1_000 });
    await clock.advance(1_000);
    expect(breaker.status().state).toBe('half_open');
  });

  it('an abandoned probe (cancelled) frees the slot for another probe', async () => {
    const { breaker, clock } = setup();
    fail(breaker, 3);
    await clock.advance(1_000);
    breaker.tryAcquire()!.abandon();
    expect(breaker.status().state).toBe('half_open');
    expect(breaker.tryAcquire()).toBeDefined();
  });

  it('opens on a failure rate over a full window even without a streak', () => {
    const { breaker } = setup({ failureThreshold: 0, failureRatePercent: 50, window: 4 });
    fail(breaker);
    succeed(breaker);
    fail(breaker);
    expect(breaker.status().state).toBe('closed'); // 3 calls: the window is not full yet
    succeed(breaker);
    expect(breaker.status()).toMatchObject({ state: 'closed', recentFailureRate: 50, recentCalls: 4 });
    fail(breaker); // window: success, fail, success, fail → 50 %
    expect(breaker.status().state).toBe('open');
  });

  it('a window full of successes still counts each new outcome (the steady state takes no transition)', () => {
    const { breaker } = setup({ failureThreshold: 0, failureRatePercent: 50, window: 4 });
    succeed(breaker, 6); // full of successes: further ones change nothing
    fail(breaker);
    expect(breaker.status()).toMatchObject({ state: 'closed', recentFailureRate: 25, recentCalls: 4 });
    succeed(breaker, 3); // the failure is still in the window: each success must be counted
    expect(breaker.status()).toMatchObject({ state: 'closed', recentFailureRate: 25 });
    succeed(breaker); // pushes it out
    expect(breaker.status()).toMatchObject({ state: 'closed', recentFailureRate: 0, recentCalls: 4 });
    fail(breaker);
    fail(breaker); // success, success, fail, fail → 50 %
    expect(breaker.status().state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
  });

  it('ignores outcomes of calls admitted before the last change of state', async () => {
    const { breaker, clock } = setup();
    const old = breaker.tryAcquire()!;
    fail(breaker, 3);
    await clock.advance(1_000);
    const probe = breaker.tryAcquire()!;
    old.success(); // a slow call from before the breaker opened does not close it
    expect(breaker.status().state).toBe('half_open');
    probe.success();
    expect(breaker.status().state).toBe('closed');
  });

  it('counts one outcome per permit', () => {
    const { breaker } = setup();
    const permit = breaker.tryAcquire()!;
    permit.failure();
    permit.failure();
    permit.failure();
    expect(breaker.status().consecutiveFailures).toBe(1);
  });
});
