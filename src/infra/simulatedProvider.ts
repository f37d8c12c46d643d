import type { Clock, GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';

export interface SimulatedProviderOptions {
  /** Chunks per reply (default 5, as the seed). */
  chunks?: number;
  /** Delay before each chunk in ms (default 400, as the seed); 0 streams at once. */
  intervalMs?: number;
  clock: Clock;
}

/**
 * The seed's model: for user text T it streams `chunk 1: T` … `chunk N: T`,
 * one every `intervalMs`. Every session streams on its own timers, so a
 * thousand sessions finish in one stream's time.
 */
export function createSimulatedProvider(options: SimulatedProviderOptions): ModelProvider {
  const chunks = options.chunks ?? 5;
  const intervalMs = options.intervalMs ?? 400;
  const { clock } = options;

  return {
    name: 'simulated',
    async *stream(request: GenerationRequest, signal: AbortSignal): AsyncIterable<ProviderChunk> {
      // One abort listener per reply, not one per chunk: EventTarget
      // listeners are costly when 10,000 replies stream at once.
      let timer: unknown;
      let wake: (() => void) | undefined;
      const onAbort = () => {
        if (timer !== undefined) clock.clearTimeout(timer);
        wake?.();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        for (let index = 1; index <= chunks; index += 1) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            if (signal.aborted) resolve();
            // At 0 ms it still yields to the event loop, as a real model's
            // I/O would: a reply made in one macrotask lets no socket drain.
            else if (intervalMs <= 0) setImmediate(resolve);
            else timer = clock.setTimeout(resolve, intervalMs);
          });
          timer = undefined;
          if (signal.aborted) return;
          yield { text: `chunk ${index}: ${request.prompt}`, last: index === chunks };
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    },
  };
}
