import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { redisKeys } from './redisKeys.ts';

export interface LimiterSpec {
  /** Names the counter (part of its Redis key). */
  keyPrefix: string;
  points: number;
  /** Seconds. */
  duration: number;
}

/**
 * Makes rate limiters: in memory on one node, or counted cluster-wide in
 * Redis (rate-limiter-flexible's Redis store, one Lua call per check) when
 * nodes share one. While Redis is unreachable each node falls back to its
 * own in-memory counter (the insurance limiter), so an outage loosens the
 * limits by at most the number of nodes and never refuses everyone.
 */
export type LimiterFactory = (spec: LimiterSpec) => RateLimiterAbstract;

export const memoryLimiters: LimiterFactory = (spec) => new RateLimiterMemory(spec);

export function redisLimiters(redis: Redis): LimiterFactory {
  return (spec) =>
    new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: `${redisKeys.limits}:${spec.keyPrefix}`,
      points: spec.points,
      duration: spec.duration,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory(spec),
    });
}
