import { ChatError, isUpstreamFailure } from '../domain/errors.ts';
import type { CancelSignal, Clock, GenerationRequest, Logger, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import type { CircuitBreaker } from './circuitBreaker.ts';
import { sleep } from './clockTimers.ts';
import { ReplyAbort } from './replyAbort.ts';

export interface GuardOptions {
  breaker: CircuitBreaker;
  clock: Clock;
  logger: Logger;
  /** No first token within this long (from the start of an attempt): `upstream_timeout` (default 30 s). */
  firstTokenTimeoutMs?: number;
  /** No next token within this long: `upstream_timeout` (default 60 s). */
  stallTimeoutMs?: number;
  /** Extra attempts after a failure before the first token (default 2). */
  retries?: number;
  /** First retry delay; doubles per attempt up to `retryMaxMs`, then jittered by up to half (default 250 ms). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Source of jitter in [0, 1); injectable for tests. */
  random?: () => number;
}

/** Statuses worth another attempt: the request itself was fine. */
function retryable(error: ChatError): boolean {
  if (error.code === 'upstream_timeout') return true;
  if (error.code !== 'upstream_error') return false;
  const status = error.upstreamStatus;
  return status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
}

/** The wait an upstream asked for with its failure (429 or 503 with `Retry-After`). */
function holdOf(error: ChatError): { retryAfterMs: number; rateLimited: boolean } | undefined {
  if (error.retryAfterMs === undefined || error.upstreamStatus === undefined) return undefined;
  if (error.upstreamStatus !== 429 && error.upstreamStatus !== 503) return undefined;
  return { retryAfterMs: error.retryAfterMs, rateLimited: error.upstreamStatus === 429 };
}

/** A 429 from the model's server, retries spent: the client is told to slow down, and when to come back. */
function rateLimited(error: ChatError, fallbackMs: number): ChatError {
  const retryAfterMs = error.retryAfterMs ?? fallbackMs;
  return new ChatError('rate_limited', `The model's server is rate limiting requests; try again in ${Math.max(1, Math.ceil(retryAfterMs / 1000))} s.`, {
    cause: error,
    retryAfterMs,
    upstreamStatus: 429,
  });
}

/** Failures that say the upstream is unwell (a 400 says our request was wrong, not that it is down). */
function countsAgainstUpstream(error: ChatError): boolean {
  if (error.code !== 'upstream_error') return true;
  const status = error.upstreamStatus;
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

/**
 * Wraps a provider with what a real upstream needs: a circuit breaker (while
 * open, calls fail fast with `upstream_unavailable`), a first-token and a
 * stall deadline (`upstream_timeout`; the attempt's HTTP request is aborted),
 * and retries with exponential backoff and jitter, only before the first
 * token: text the user already saw is never streamed again. An upstream's
 * `Retry-After` (429, 503) is honoured: the breaker holds every call for that
 * long, and a retry waits at least that long (or is not made, past
 * `retryMaxMs`). A 429 that outlasts the retries fails as `rate_limited`
 * with the time to wait.
 */
export function guardedProvider(inner: ModelProvider, options: GuardOptions): ModelProvider {
  const { breaker, clock, logger } = options;
  const firstTokenTimeoutMs = options.firstTokenTimeoutMs ?? 30_000;
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  const retries = options.retries ?? 2;
  const retryBaseMs = options.retryBaseMs ?? 250;
  const retryMaxMs = options.retryMaxMs ?? 10_000;
  const random = options.random ?? Math.random;
  const deadlines = { firstTokenTimeoutMs, stallTimeoutMs, clock };

  const backoff = (attempt: number) => {
    const ceiling = Math.min(retryMaxMs, retryBaseMs * 2 ** attempt);
    return Math.round(ceiling / 2 + (random() * ceiling) / 2);
  };

  return {
    name: inner.name,
    async *stream(request: GenerationRequest, signal: CancelSignal): AsyncIterable<ProviderChunk> {
      for (let attempt = 0; ; attempt += 1) {
        if (signal.aborted) return;
        const permit = breaker.tryAcquire();
        if (!permit) {
          const refusal = breaker.refusal();
          if (refusal.rateLimited) throw rateLimited(new ChatError('upstream_error', undefined, { upstreamStatus: 429 }), refusal.retryAfterMs ?? retryBaseMs);
          throw new ChatError('upstream_unavailable', undefined, refusal.retryAfterMs !== undefined ? { retryAfterMs: refusal.retryAfterMs } : {});
        }
        let delivered = false;
        try {
          for await (const piece of withDeadlines(inner, request, signal, deadlines)) {
            delivered = true;
            yield piece;
          }
          if (signal.aborted) permit.abandon();
          else permit.success();
          return;
        } catch (error) {
          if (signal.aborted) return;
          if (!isUpstreamFailure(error)) throw error; // a bug: let the session actor crash
          const hold = holdOf(error);
          if (countsAgainstUpstream(error)) permit.failure(hold);
          else permit.success();
          const fields = {
            sessionId: request.sessionId,
            messageId: request.messageId,
            provider: inner.name,
            code: error.code,
            upstreamStatus: error.upstreamStatus,
            attempt,
            err: String(error.cause ?? error.message),
          };
          // A wait longer than a retry may take goes to the caller (a fallback model, or the client).
          const tooLong = hold !== undefined && hold.retryAfterMs > retryMaxMs;
          if (delivered || attempt >= retries || !retryable(error) || tooLong) {
            logger.warn(fields, 'model call failed');
            throw !delivered && error.upstreamStatus === 429 ? rateLimited(error, backoff(attempt)) : error;
          }
          const delayMs = Math.max(backoff(attempt), hold?.retryAfterMs ?? 0);
          logger.info({ ...fields, delayMs }, 'model call failed before its first token; retrying');
          await sleep(clock, delayMs, signal);
        } finally {
          permit.abandon(); // no-op once an outcome was reported; covers a consumer that stops early
        }
      }
    },
  };
}

const INTERRUPTED: unique symbol = Symbol('interrupted');

/**
 * One attempt under a watchdog: a single timer per attempt, pushed forward
 * lazily (one timer per deadline, not one per token). When it fires, or the
 * caller's signal aborts, the attempt's own signal aborts (closing the HTTP
 * request) and a pending read is abandoned at once.
 */
async function* withDeadlines(
  inner: ModelProvider,
  request: GenerationRequest,
  outer: CancelSignal,
  limits: { firstTokenTimeoutMs: number; stallTimeoutMs: number; clock: Clock },
): AsyncGenerator<ProviderChunk> {
  const { clock } = limits;
  const attempt = new ReplyAbort();
  const forward = () => attempt.abort();
  outer.addEventListener('abort', forward, { once: true });
  if (outer.aborted) attempt.abort();
  // Wakes the pending read when the attempt aborts (one resolver at a time, not
  // one Promise.race per token, whose reactions would pile up on a long stream).
  let interrupt: ((value: typeof INTERRUPTED) => void) | undefined;
  attempt.addEventListener('abort', () => interrupt?.(INTERRUPTED), { once: true });
  const read = () =>
    new Promise<IteratorResult<ProviderChunk> | typeof INTERRUPTED>((resolve, reject) => {
      if (attempt.aborted) return resolve(INTERRUPTED);
      interrupt = resolve;
      iterator.next().then(resolve, reject);
    });
  let sawToken = false;
  let timedOut = false;
  let deadline = clock.now() + limits.firstTokenTimeoutMs;
  let timer: unknown;
  let timerAt = Number.POSITIVE_INFINITY;
  const watch = () => {
    timerAt = deadline;
    timer = clock.setTimeout(() => {
      timer = undefined;
      timerAt = Number.POSITIVE_INFINITY;
      if (clock.now() < deadline) watch();
      else {
        timedOut = true;
        attempt.abort();
      }
    }, Math.max(0, deadline - clock.now()));
  };
  // A later deadline waits for the running timer; an earlier one needs a new timer.
  const moveDeadline = (to: number) => {
    deadline = to;
    if (to >= timerAt) return;
    if (timer !== undefined) clock.clearTimeout(timer);
    watch();
  };
  watch();
  const iterator = inner.stream(request, attempt)[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      if (sawToken) moveDeadline(clock.now() + limits.stallTimeoutMs);
      const result = await read();
      interrupt = undefined;
      if (result === INTERRUPTED) break;
      if (result.done) {
        finished = true;
        return;
      }
      sawToken = true;
      yield result.value;
    }
  } catch (error) {
    if (!timedOut) throw error;
  } finally {
    if (timer !== undefined) clock.clearTimeout(timer);
    outer.removeEventListener('abort', forward);
    if (!finished) {
      attempt.abort();
      iterator.return?.()?.catch(() => {});
    }
  }
  if (timedOut) {
    const limit = duration(sawToken ? limits.stallTimeoutMs : limits.firstTokenTimeoutMs);
    throw new ChatError(
      'upstream_timeout',
      sawToken ? `The model's server stopped sending for ${limit}.` : `The model's server sent no first token within ${limit}.`,
    );
  }
}

function duration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
