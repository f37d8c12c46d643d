import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isChatError } from '../../src/domain/errors.ts';
import { DEFAULT_KEY_LIMITS } from '../../src/server.ts';
import { createClientLimits } from '../../src/transport/clientLimits.ts';

/**
 * rate-limiter-flexible reads `Date.now()` and arms its own `setTimeout`s
 * (it takes no clock), so these tests replace both with vitest's fake
 * timers: time moves only when a test moves it.
 */
beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

async function attempt(run: () => Promise<void>): Promise<number | undefined> {
  try {
    await run();
    return undefined;
  } catch (error) {
    if (isChatError(error) && error.code === 'rate_limited') return error.retryAfterMs ?? -1;
    throw error;
  }
}

async function admitted(count: number, run: () => Promise<void>): Promise<number> {
  let ok = 0;
  for (let i = 0; i < count; i += 1) if ((await attempt(run)) === undefined) ok += 1;
  return ok;
}

describe('per-IP limits (traffic without a valid key), with the defaults', () => {
  it('let 1,000 arrivals from one address at the same moment in', async () => {
    const limits = createClientLimits();
    expect(await admitted(1000, () => limits.admitUnknown('198.51.100.7'))).toBe(1000);
    // Another address has its own budget.
    expect(await admitted(1000, () => limits.admitUnknown('198.51.100.8'))).toBe(1000);
  });

  it('refuse a sustained flood above the rate once the burst is spent, with a retry hint', async () => {
    const limits = createClientLimits();
    const perSecond: number[] = [];
    for (let second = 0; second < 50; second += 1) {
      perSecond.push(await admitted(200, () => limits.admitUnknown('203.0.113.9')));
      await vi.advanceTimersByTimeAsync(1000);
    }
    // The burst (1,000 a minute) carries the first seconds; then only the rate (50/s) gets through.
    expect(perSecond[0]).toBe(200);
    expect(perSecond.slice(10)).toEqual(Array(40).fill(50));
    expect(perSecond.reduce((a, b) => a + b, 0)).toBe(50 * 50 + 1000);
    const hint = await attempt(() => limits.admitUnknown('203.0.113.9'));
    expect(hint).toBeUndefined(); // a new second has begun
    for (let i = 0; i < 49; i += 1) await attempt(() => limits.admitUnknown('203.0.113.9'));
    const refused = await attempt(() => limits.admitUnknown('203.0.113.9'));
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeLessThanOrEqual(1000);
  });

  it('the burst refills after a minute; 0 turns the burst, or the limit, off', async () => {
    const limits = createClientLimits({ perIpPerSecond: 2, perIpBurst: 3 });
    expect(await admitted(10, () => limits.admitUnknown('a'))).toBe(5);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await admitted(10, () => limits.admitUnknown('a'))).toBe(2);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await admitted(10, () => limits.admitUnknown('a'))).toBe(5);
    const noBurst = createClientLimits({ perIpPerSecond: 2, perIpBurst: 0 });
    expect(await admitted(10, () => noBurst.admitUnknown('a'))).toBe(2);
    const unlimited = createClientLimits({ perIpPerSecond: 0 });
    expect(await admitted(5000, () => unlimited.admitUnknown('a'))).toBe(5000);
  });
});

describe('per-key limits', () => {
  const key = (limits: Partial<typeof DEFAULT_KEY_LIMITS>, keyId = 'key_aaaaaaaaaaaa') => ({ keyId, limits: { ...DEFAULT_KEY_LIMITS, ...limits } });

  it('messages: N a minute plus a burst of N more per 10 minutes, then rate_limited with when to retry', async () => {
    const limits = createClientLimits();
    const caller = key({ messagesPerMinute: 5 });
    expect(await admitted(20, () => limits.admitMessage(caller))).toBe(10);
    const hint = await attempt(() => limits.admitMessage(caller));
    expect(hint).toBeGreaterThan(59_000);
    expect(hint).toBeLessThanOrEqual(60_000);
    await vi.advanceTimersByTimeAsync(60_000);
    // A new minute: the rate again, the burst not yet back.
    expect(await admitted(20, () => limits.admitMessage(caller))).toBe(5);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(await admitted(20, () => limits.admitMessage(caller))).toBe(10);
    // Keys are counted apart, and 0 means no limit.
    expect(await admitted(7, () => limits.admitMessage(key({ messagesPerMinute: 5 }, 'key_bbbbbbbbbbbb')))).toBe(7);
    expect(await admitted(3000, () => limits.admitMessage(key({ messagesPerMinute: 0 }, 'key_cccccccccccc')))).toBe(3000);
  });

  it('sessions: the same shape, counted apart from messages', async () => {
    const limits = createClientLimits();
    const caller = key({ sessionsPerMinute: 2, messagesPerMinute: 100 });
    expect(await admitted(10, () => limits.admitSession(caller))).toBe(4);
    expect(await admitted(10, () => limits.admitMessage(caller))).toBe(10);
  });

  it('with the defaults a key opens 1,000 sessions at once, and a sustained flood is refused', async () => {
    const limits = createClientLimits();
    const caller = key({});
    expect(await admitted(1000, () => limits.admitSession(caller))).toBe(1000);
    let accepted = 0;
    for (let minute = 0; minute < 30; minute += 1) {
      accepted += await admitted(1000, () => limits.admitSession(caller));
      await vi.advanceTimersByTimeAsync(60_000);
    }
    // At most 600 a minute, plus 600 per 10 minutes.
    expect(accepted).toBeLessThanOrEqual(30 * 600 + 3 * 600);
    expect(accepted).toBeLessThan(30 * 1000);
  });

  it('without a key (--auth none) nothing is counted per key', async () => {
    const limits = createClientLimits();
    const anonymous = { keyId: undefined, limits: { ...DEFAULT_KEY_LIMITS, messagesPerMinute: 1, sessionsPerMinute: 1 } };
    expect(await admitted(50, () => limits.admitMessage(anonymous))).toBe(50);
    expect(await admitted(50, () => limits.admitSession(anonymous))).toBe(50);
  });
});
