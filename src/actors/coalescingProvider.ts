import type { Clock, GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import { TIMED_OUT, within } from './clockTimers.ts';

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
      let bufferedSince = 0;
      let pending: Promise<IteratorResult<ProviderChunk>> | undefined;
      let finished = false;
      try {
        for (;;) {
          pending ??= iterator.next();
          const wait = bufferedSince + flushMs - clock.now();
          const result = buffer === '' ? await pending : wait <= 0 ? TIMED_OUT : await within(pending, wait, clock);
          if (result === TIMED_OUT) {
            const text = buffer;
            buffer = '';
            yield { text, last: false };
            continue;
          }
          pending = undefined;
          if (result.done) {
            finished = true;
            if (!signal.aborted) yield { text: buffer, last: true };
            return;
          }
          const piece = result.value;
          if (buffer === '') bufferedSince = clock.now();
          buffer += piece.text;
          if (piece.last) {
            finished = true;
            yield piece.usage ? { text: buffer, last: true, usage: piece.usage } : { text: buffer, last: true };
            return;
          }
          if (buffer.length >= maxChars) {
            const text = buffer;
            buffer = '';
            yield { text, last: false };
          }
        }
      } catch (error) {
        // Text that arrived before the failure is the user's: it goes out first.
        if (buffer !== '' && !signal.aborted) yield { text: buffer, last: false };
        throw error;
      } finally {
        if (!finished) iterator.return?.()?.catch(() => {});
      }
    },
  };
}
