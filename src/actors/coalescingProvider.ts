import type { Clock, GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import { TIMED_OUT } from './clockTimers.ts';

export interface CoalescingOptions {
  /** Longest time text waits in the buffer before it goes out (default 16 ms). */
  flushMs?: number;
  /** A buffer this long goes out at once (default 256 characters). */
  maxChars?: number;
  clock: Clock;
}

/**
 * Joins a model's token deltas into fewer, larger chunks: a buffer goes out
 * when it is `flushMs` old or `maxChars` long, so a fast model does not cost
 * one frame (and one bus event) per token, and a slow one is not held back
 * by more than `flushMs`. The final piece carries `last` and the usage.
 */
export function coalescingProvider(inner: ModelProvider, options: CoalescingOptions): ModelProvider {
  const flushMs = options.flushMs ?? 16;
  const maxChars = options.maxChars ?? 256;
  const { clock } = options;

  return {
    name: inner.name,
    async *stream(request: GenerationRequest, signal: AbortSignal): AsyncIterable<ProviderChunk> {
      const iterator = inner.stream(request, signal)[Symbol.asyncIterator]();
      let buffer = '';
      let pending: Promise<IteratorResult<ProviderChunk>> | undefined;
      let finished = false;
      // One flush timer per outgoing chunk (armed when the buffer starts
      // filling), not one per incoming token.
      let flushTimer: unknown;
      let flushDue: Promise<typeof TIMED_OUT> | undefined;
      let due = false;
      const startBuffer = () => {
        due = flushMs <= 0;
        if (due) return;
        flushDue = new Promise((resolve) => {
          flushTimer = clock.setTimeout(() => {
            flushTimer = undefined;
            due = true;
            resolve(TIMED_OUT);
          }, flushMs);
        });
      };
      const takeBuffer = () => {
        if (flushTimer !== undefined) clock.clearTimeout(flushTimer);
        flushTimer = undefined;
        flushDue = undefined;
        const text = buffer;
        buffer = '';
        return text;
      };
      try {
        for (;;) {
          pending ??= iterator.next();
          let result: IteratorResult<ProviderChunk> | typeof TIMED_OUT;
          if (buffer === '') result = await pending;
          else if (due || !flushDue) result = TIMED_OUT;
          else {
            const current = pending;
            const timer = flushDue;
            result = await new Promise((resolve, reject) => {
              current.then(resolve, reject);
              void timer.then(resolve);
            });
          }
          if (result === TIMED_OUT) {
            yield { text: takeBuffer(), last: false };
            continue;
          }
          pending = undefined;
          if (result.done) {
            finished = true;
            const text = takeBuffer();
            if (!signal.aborted) yield { text, last: true };
            return;
          }
          const piece = result.value;
          if (buffer === '' && piece.text !== '' && !piece.last) startBuffer();
          buffer += piece.text;
          if (piece.last) {
            finished = true;
            const text = takeBuffer();
            yield piece.usage ? { text, last: true, usage: piece.usage } : { text, last: true };
            return;
          }
          if (buffer.length >= maxChars) yield { text: takeBuffer(), last: false };
        }
      } catch (error) {
        // Text that arrived before the failure is the user's: it goes out first.
        const text = takeBuffer();
        if (text !== '' && !signal.aborted) yield { text, last: false };
        throw error;
      } finally {
        if (flushTimer !== undefined) clock.clearTimeout(flushTimer);
        if (!finished) iterator.return?.()?.catch(() => {});
      }
    },
  };
}
