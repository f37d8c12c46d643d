import type { GenerationRequest, ModelProvider, ProviderChunk } from '../../src/domain/ports.ts';

/**
 * Wraps a provider so that prompts containing `trigger` fail after
 * `afterChunks` chunks: a provider that throws mid-stream. It records every
 * abort it sees, to prove cancellation reaches the provider.
 */
export function failingOn(
  inner: ModelProvider,
  trigger: string,
  afterChunks = 2,
): ModelProvider & { aborted: string[]; started: GenerationRequest[] } {
  const aborted: string[] = [];
  const started: GenerationRequest[] = [];
  return {
    name: `failing(${inner.name})`,
    aborted,
    started,
    async *stream(request, signal): AsyncIterable<ProviderChunk> {
      started.push(request);
      signal.addEventListener('abort', () => aborted.push(request.messageId), { once: true });
      let count = 0;
      for await (const piece of inner.stream(request, signal)) {
        if (request.prompt.includes(trigger) && count === afterChunks) throw new Error('model exploded (test)');
        count += 1;
        yield piece;
      }
    },
  };
}
