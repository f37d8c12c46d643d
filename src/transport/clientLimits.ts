import { BurstyRateLimiter, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { memoryLimiters } from '../infra/rateLimiters.ts';
import type { LimiterFactory } from '../infra/rateLimiters.ts';
import type { ResolvedLimits } from '../domain/apiKeys.ts';
import { ChatError } from '../domain/errors.ts';

export interface ClientLimitsOptions {
  /** New connections (and, with keys, requests without a valid key) per IP per second (default 50; 0 = no limit). */
  perIpPerSecond?: number;
  /** Extra ones an IP may make above that rate, refilled every minute (default 1,000; 0 = no burst). */
  perIpBurst?: number;
  /** Where the counters live (default in memory; across nodes Redis, so the limits are cluster-wide). */
  limiters?: LimiterFactory;
}

/** Who a limit is counted for: a key id, or nobody (`--auth none`). */
export interface Limited {
  readonly keyId: string | undefined;
  readonly limits: ResolvedLimits;
}

export interface ClientLimits {
  /** Counts one request or connection from `ip` that had no valid key; throws `rate_limited` past the per-IP rate and burst. */
  admitUnknown(ip: string): Promise<void>;
  /** Counts a new session for the key; throws `rate_limited` past its `sessionsPerMinute` (and burst). */
  admitSession(caller: Limited): Promise<void>;
  /** Counts a user message for the key; throws `rate_limited` past its `messagesPerMinute` (and burst). */
  admitMessage(caller: Limited): Promise<void>;
}

/**
 * Per-key and per-IP rates, on rate-limiter-flexible. Every rate has a burst
 * (its BurstyRateLimiter: a second limiter with a longer window, used once
 * the first is spent), so a crowd arriving at the same moment (an office
 * behind one NAT, a load test) is let in while a sustained flood is not:
 * - per IP: `perIpPerSecond` per second, plus `perIpBurst` per minute;
 * - per key: N per minute, plus N more per 10 minutes.
 * The library reads `Date.now()` and its own timers: tests fake those.
 */
export function createClientLimits(options: ClientLimitsOptions = {}): ClientLimits {
  // Counted in memory on one node; across nodes in Redis (cluster-wide), see infra/rateLimiters.ts.
  const limiters = options.limiters ?? memoryLimiters;
  const perIp = options.perIpPerSecond ?? 50;
  const perIpBurst = options.perIpBurst ?? 1000;
  const ipLimiter =
    perIp <= 0
      ? undefined
      : perIpBurst <= 0
        ? limiters({ keyPrefix: 'ip', points: perIp, duration: 1 })
        : new BurstyRateLimiter(
            limiters({ keyPrefix: 'ip', points: perIp, duration: 1 }),
            limiters({ keyPrefix: 'ip-burst', points: perIpBurst, duration: 60 }),
          );
  // One limiter per (limit, value): keys with the same value share it, a key whose value changes moves to another.
  const perKey = new Map<string, BurstyRateLimiter>();
  const keyLimiter = (name: string, perMinute: number) => {
    const id = `${name}:${perMinute}`;
    let limiter = perKey.get(id);
    if (!limiter) {
      limiter = new BurstyRateLimiter(
        limiters({ keyPrefix: id, points: perMinute, duration: 60 }),
        limiters({ keyPrefix: `${id}:burst`, points: perMinute, duration: 600 }),
      );
      perKey.set(id, limiter);
    }
    return limiter;
  };

  const consume = async (limiter: RateLimiterAbstract | BurstyRateLimiter, key: string, message: string) => {
    try {
      await limiter.consume(key);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        throw new ChatError('rate_limited', message, { retryAfterMs: Math.max(1, Math.ceil(rejection.msBeforeNext)) });
      }
      throw rejection;
    }
  };

  const perMinute = async (caller: Limited, name: 'sessionsPerMinute' | 'messagesPerMinute', message: string) => {
    const limit = caller.limits[name];
    if (caller.keyId === undefined || limit <= 0) return;
    await consume(keyLimiter(name, limit), caller.keyId, message);
  };

  return {
    async admitUnknown(ip) {
      if (ipLimiter) await consume(ipLimiter, ip, 'Too many requests from this address; try again later.');
    },
    admitSession: (caller) => perMinute(caller, 'sessionsPerMinute', 'This key made too many sessions; try again later.'),
    admitMessage: (caller) => perMinute(caller, 'messagesPerMinute', 'This key sent too many messages; try again later.'),
  };
}
