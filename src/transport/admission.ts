import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { memoryLimiters } from '../infra/rateLimiters.ts';
import type { LimiterFactory } from '../infra/rateLimiters.ts';
import { ChatError } from '../domain/errors.ts';

export type RejectReason = 'max_connections' | 'connection_rate' | 'message_rate' | 'event_loop_lag';

export interface AdmissionOptions {
  /** Open WebSocket + SSE connections this node accepts (default 10,000). */
  maxConnections?: number;
  /** New connections per client IP per second (default 50; 0 = no limit). */
  connectionsPerIpPerSecond?: number;
  /** Messages per session per minute (default 60; 0 = no limit). */
  messagesPerSessionPerMinute?: number;
  /** Refuse new work while the event loop's p99 delay over the last second exceeds this (default 500 ms; 0 = never). */
  shedLagMs?: number;
  /** Told about every refusal (metrics). */
  onReject?: (reason: RejectReason) => void;
  /** Where the counters live (default in memory; across nodes in Redis, so limits are cluster-wide). */
  limiters?: LimiterFactory;
}

export interface Admission {
  /** Admits a connection from `ip`, or throws `overloaded` / `rate_limited`. Call the returned function when it closes. */
  admitConnection(ip: string): Promise<() => void>;
  /** Admits one user message to `sessionId`, or throws `rate_limited` (with retryAfterMs) / `overloaded`. */
  admitMessage(sessionId: string): Promise<void>;
  /** Throws `overloaded` while the node sheds load (new sessions). */
  admitWork(): void;
  readonly connections: number;
  readonly shedding: boolean;
  close(): void;
}

const OVERLOADED_RETRY_MS = 1000;

/**
 * Admission control at the edge: refuses new work quickly and clearly when
 * the node is full or a client goes too fast, so accepted work completes.
 * Counters come from rate-limiter-flexible (it has a Redis backend for when
 * limits must span nodes).
 */
export function createAdmission(options: AdmissionOptions = {}): Admission {
  const maxConnections = options.maxConnections ?? 10_000;
  const perIp = options.connectionsPerIpPerSecond ?? 50;
  const perSession = options.messagesPerSessionPerMinute ?? 60;
  const shedLagMs = options.shedLagMs ?? 500;
  const onReject = options.onReject ?? (() => {});
  const limiters = options.limiters ?? memoryLimiters;
  const ipLimiter = perIp > 0 ? limiters({ keyPrefix: 'conn', points: perIp, duration: 1 }) : undefined;
  const messageLimiter = perSession > 0 ? limiters({ keyPrefix: 'msg', points: perSession, duration: 60 }) : undefined;
  let connections = 0;
  let shedding = false;

  const lag = monitorEventLoopDelay({ resolution: 10 });
  let sampler: NodeJS.Timeout | undefined;
  if (shedLagMs > 0) {
    lag.enable();
    sampler = setInterval(() => {
      shedding = lag.percentile(99) / 1e6 > shedLagMs;
      lag.reset();
    }, 1000);
    sampler.unref();
  }

  const refuse = (reason: RejectReason, error: ChatError): never => {
    onReject(reason);
    throw error;
  };

  const consume = async (limiter: RateLimiterAbstract, key: string, reason: RejectReason) => {
    try {
      await limiter.consume(key);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) {
        refuse(reason, new ChatError('rate_limited', undefined, { retryAfterMs: Math.max(1, Math.ceil(rejection.msBeforeNext)) }));
      }
      throw rejection;
    }
  };

  const admitWork = () => {
    if (shedding) refuse('event_loop_lag', new ChatError('overloaded', undefined, { retryAfterMs: OVERLOADED_RETRY_MS }));
  };

  return {
    async admitConnection(ip) {
      if (connections >= maxConnections) {
        refuse('max_connections', new ChatError('overloaded', undefined, { retryAfterMs: OVERLOADED_RETRY_MS }));
      }
      admitWork();
      if (ipLimiter) await consume(ipLimiter, ip, 'connection_rate');
      // Re-checked after the await: other connections may have arrived meanwhile.
      if (connections >= maxConnections) {
        refuse('max_connections', new ChatError('overloaded', undefined, { retryAfterMs: OVERLOADED_RETRY_MS }));
      }
      connections += 1;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        connections -= 1;
      };
    },

    async admitMessage(sessionId) {
      admitWork();
      if (messageLimiter) await consume(messageLimiter, sessionId, 'message_rate');
    },

    admitWork,

    get connections() {
      return connections;
    },

    get shedding() {
      return shedding;
    },

    close() {
      if (sampler) clearInterval(sampler);
      lag.disable();
    },
  };
}
