import { afterEach, describe, expect, it } from 'vitest';
import { createCircuitBreaker } from '../../src/actors/circuitBreaker.ts';
import type { CircuitBreaker } from '../../src/actors/circuitBreaker.ts';
import { guardedProvider } from '../../src/actors/guardedProvider.ts';
import type { GuardOptions } from '../../src/actors/guardedProvider.ts';
import { ChatError } from '../../src/domain/errors.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { ManualClock, settle } from '../support/manualClock.ts';
import { run, scripted, timed, upstream500 } from './scriptedProvider.ts';
import type { Attempt } from './scriptedProvider.ts';

const breakers: CircuitBreaker[] = [];
afterEach(() => {
  for (const breaker of breakers.splice(0)) breaker.stop();
});

function setup(attempts: (clock: ManualClock) => Attempt[], options: Partial<GuardOptions> = {}) {
  const clock = new ManualClock();
  const script = scripted(attempts(clock));
  script.useClock(clock);
  const breaker = createCircuitBreaker({ name: 't', clock, logger: silentLogger, failureThreshold: 3, failureRatePercent: 0, cooldownMs: 10_000 });
  breakers.push(breaker);
  const guarded = guardedProvider(script.provider, {
    breaker,
    clock,
    logger: silentLogger,
    firstTokenTimeoutMs: 1_000,
    stallTimeoutMs: 500,
    retries: 2,
    retryBaseMs: 100,
    random: () => 0.5,
    ...options,
  });
  return { clock, breaker, guarded, calls: script.calls };
}

describe('guarded provider', () => {
  it('passes a healthy stream through', async () => {
    const { clock, guarded, breaker } = setup((c) => [timed(c, [[10, 'a'], [20, 'b']])]);
    const state = run(guarded);
    await clock.advance(20);
    expect(state).toMatchObject({ done: true, texts: ['a', 'b', ''], error: undefined });
    expect(breaker.status()).toMatchObject({ state: 'closed', recentCalls: 1, recentFailureRate: 0 });
  });

  it('retries with exponential backoff and jitter before the first token', async () => {
    const { clock, guarded, calls } = setup((c) => [timed(c, [], upstream500()), timed(c, [], upstream500()), timed(c, [[0, 'ok']])]);
    const state = run(guarded);
    await settle();
    expect(calls).toHaveLength(1);
    // random() = 0.5: half the ceiling plus a quarter → 75 ms, then 150 ms.
    await clock.advance(74);
    expect(calls).toHaveLength(1);
    await clock.advance(1);
    expect(calls).toHaveLength(2);
    await clock.advance(149);
    expect(calls).toHaveLength(2);
    await clock.advance(1);
    expect(calls).toHaveLength(3);
    expect(state).toMatchObject({ done: true, texts: ['ok', ''], error: undefined });
  });

  it('never retries after the first token: the failure ends the stream', async () => {
    const { clock, guarded, calls } = setup((c) => [timed(c, [[5, 'seen']], upstream500()), timed(c, [[0, 'again']])]);
    const state = run(guarded);
    await clock.advance(1_000);
    expect(calls).toHaveLength(1);
    expect(state.texts).toEqual(['seen']);
    expect(state.error).toMatchObject({ code: 'upstream_error', upstreamStatus: 500 });
  });

  it('does not retry a client error (HTTP 400), and does not count it against the upstream', async () => {
    const badRequest = new ChatError('upstream_error', 'HTTP 400', { upstreamStatus: 400 });
    const { clock, guarded, calls, breaker } = setup((c) => [timed(c, [], badRequest)]);
    const state = run(guarded);
    await clock.advance(1_000);
    expect(calls).toHaveLength(1);
    expect(state.error).toBe(badRequest);
    expect(breaker.status().consecutiveFailures).toBe(0);
  });

  it('times out without a first token, aborts that attempt and retries', async () => {
    const { clock, guarded, calls } = setup((c) => [timed(c, [[5_000, 'too late']]), timed(c, [[10, 'ok']])], { retries: 1 });
    const state = run(guarded);
    await clock.advance(999);
    expect(calls[0]?.signal.aborted).toBe(false);
    await clock.advance(1);
    expect(calls[0]?.signal.aborted).toBe(true);
    await clock.advance(1_000);
    expect(calls).toHaveLength(2);
    expect(state).toMatchObject({ done: true, texts: ['ok', ''], error: undefined });
  });

  it('ends a stream that stalls between chunks with upstream_timeout at the stall deadline', async () => {
    const { clock, guarded, calls } = setup((c) => [timed(c, [[10, 'a'], [20, 'b']], 'hang')]);
    const state = run(guarded);
    await clock.advance(20);
    expect(state.texts).toEqual(['a', 'b']);
    await clock.advance(499);
    expect(state.done).toBe(false);
    await clock.advance(1);
    expect(state.error).toMatchObject({ code: 'upstream_timeout', message: "The model's server stopped sending for 500 ms." });
    expect(calls[0]?.signal.aborted).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it('fails fast with upstream_unavailable while the breaker is open, then probes after the cool-down', async () => {
    const attempts = (c: ManualClock) => [...Array.from({ length: 3 }, () => timed(c, [], upstream500())), timed(c, [[0, 'back']])];
    const { clock, guarded, calls, breaker } = setup(attempts, { retries: 0 });
    for (let index = 0; index < 3; index += 1) {
      run(guarded);
      await clock.advance(10);
    }
    expect(breaker.status().state).toBe('open');
    const refused = run(guarded);
    await settle();
    expect(refused.error).toMatchObject({ code: 'upstream_unavailable' });
    expect(calls).toHaveLength(3);
    await clock.advance(10_000);
    const probe = run(guarded);
    await clock.advance(1);
    expect(probe.texts).toEqual(['back', '']);
    expect(breaker.status().state).toBe('closed');
  });

  it('stops retrying when the breaker opens between attempts', async () => {
    const { clock, guarded, calls } = setup((c) => Array.from({ length: 5 }, () => timed(c, [], upstream500())), { retries: 4 });
    const state = run(guarded);
    await clock.advance(10_000);
    expect(calls).toHaveLength(3);
    expect(state.error).toMatchObject({ code: 'upstream_unavailable' });
  });

  it('a cancel stops at once: the attempt is aborted and the breaker is not charged', async () => {
    const { clock, guarded, calls, breaker } = setup((c) => [timed(c, [[10, 'a'], [20, 'b']], 'hang')]);
    const controller = new AbortController();
    const state = run(guarded, controller.signal);
    await clock.advance(15);
    controller.abort();
    await settle();
    expect(calls[0]?.signal.aborted).toBe(true);
    expect(state).toMatchObject({ done: true, texts: ['a'], error: undefined });
    expect(breaker.status()).toMatchObject({ consecutiveFailures: 0, recentCalls: 0 });
    expect(clock.pendingTimers).toBe(0);
  });

  it('lets an unexpected error through unchanged (a bug, for the supervisor)', async () => {
    const bug = new Error('bug');
    const { clock, guarded, calls } = setup(() => [
      async function* () {
        yield* [];
        throw bug;
      },
    ]);
    const state = run(guarded);
    await clock.advance(1_000);
    expect(state.error).toBe(bug);
    expect(calls).toHaveLength(1);
  });
});

describe("guarded provider and an upstream's Retry-After", () => {
  const limited = (retryAfterMs: number, status = 429) =>
    new ChatError('upstream_error', `HTTP ${status}`, { upstreamStatus: status, retryAfterMs });

  it('waits at least the Retry-After before retrying, however short the backoff', async () => {
    const { clock, guarded, calls } = setup((c) => [timed(c, [], limited(2_000)), timed(c, [[0, 'ok']])], { retries: 1 });
    const state = run(guarded);
    await settle();
    await clock.advance(1_999);
    expect(calls).toHaveLength(1);
    await clock.advance(1);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.startedAt).toBe(calls[0]!.startedAt + 2_000);
    expect(state).toMatchObject({ done: true, texts: ['ok', ''], error: undefined });
  });

  it('holds every call on the breaker meanwhile: other replies fail at once with rate_limited and the time left', async () => {
    const { clock, guarded, calls, breaker } = setup((c) => [timed(c, [], limited(5_000))], { retries: 0 });
    const first = run(guarded);
    await settle();
    expect(first.error).toMatchObject({ code: 'rate_limited', upstreamStatus: 429, retryAfterMs: 5_000 });
    expect(breaker.status().heldUntil).toBe(clock.now() + 5_000);
    await clock.advance(1_000);
    const second = run(guarded);
    await settle();
    expect(second.error).toMatchObject({ code: 'rate_limited', retryAfterMs: 4_000 });
    expect(calls).toHaveLength(1);
  });

  it('a 503 with Retry-After holds calls as upstream_unavailable (with the time left)', async () => {
    const { clock, guarded, calls } = setup((c) => [timed(c, [], limited(3_000, 503))], { retries: 0 });
    const first = run(guarded);
    await settle();
    expect(first.error).toMatchObject({ code: 'upstream_error', upstreamStatus: 503 });
    await clock.advance(500);
    const second = run(guarded);
    await settle();
    expect(second.error).toMatchObject({ code: 'upstream_unavailable', retryAfterMs: 2_500 });
    expect(calls).toHaveLength(1);
  });

  it('does not retry when the wait asked for is longer than a retry may take', async () => {
    const { guarded, calls } = setup((c) => [timed(c, [], limited(60_000)), timed(c, [[0, 'never']])], { retries: 2, retryMaxMs: 10_000 });
    const state = run(guarded);
    await settle();
    expect(calls).toHaveLength(1);
    expect(state.error).toMatchObject({ code: 'rate_limited', retryAfterMs: 60_000 });
  });
});
