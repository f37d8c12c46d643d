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
      for (let index = 1; index <= chunks; index += 1) {
        await delay(clock, intervalMs, signal);
        if (signal.aborted) return;
        yield { text: `chunk ${index}: ${request.prompt}`, last: index === chunks };
      }
    },
  };
}

/**
 * Resolves after `ms`, or at once (without throwing) when `signal` aborts.
 * At 0 ms it still yields to the event loop, as a real model's I/O would:
 * a reply produced in one macrotask would let no socket drain meanwhile.
 */
function delay(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  if (ms <= 0) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const onAbort = () => {
      clock.clearTimeout(handle);
      resolve();
    };
    const handle = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
