/**
 * CPU cost the provider wrappers add per chunk: a provider yielding chunks as
 * fast as it can, read raw, through `guardedProvider` (breaker, deadlines,
 * retries) and through `coalescingProvider` on top of that.
 *
 *   npx tsx bench/providerOverhead.ts [chunks]
 */
import { performance } from 'node:perf_hooks';
import { createCircuitBreaker } from '../src/actors/circuitBreaker.ts';
import { coalescingProvider } from '../src/actors/coalescingProvider.ts';
import { guardedProvider } from '../src/actors/guardedProvider.ts';
import type { GenerationRequest, ModelProvider } from '../src/domain/ports.ts';
import { silentLogger } from '../src/infra/silentLogger.ts';
import { systemClock } from '../src/infra/systemClock.ts';

const chunks = Number(process.argv[2] ?? 200_000);
const fast: ModelProvider = {
  name: 'fast',
  async *stream() {
    for (let index = 0; index < chunks; index += 1) yield { text: 'tok ', last: false };
    yield { text: '', last: true };
  },
};
const breaker = createCircuitBreaker({ name: 'fast', clock: systemClock, logger: silentLogger });
const guarded = guardedProvider(fast, { breaker, clock: systemClock, logger: silentLogger });
const coalesced = coalescingProvider(guarded, { clock: systemClock });
const request: GenerationRequest = { sessionId: 's', messageId: 'm', prompt: 'p', history: [] };

async function measure(name: string, provider: ModelProvider): Promise<void> {
  const started = performance.now();
  let out = 0;
  for await (const _piece of provider.stream(request, new AbortController().signal)) out += 1;
  const ms = performance.now() - started;
  console.log(`${name.padEnd(22)} ${((ms * 1e6) / chunks).toFixed(0).padStart(6)} ns per input chunk  (${out} chunks out)`);
}

for (let round = 0; round < 2; round += 1) {
  await measure('raw', fast);
  await measure('guarded', guarded);
  await measure('guarded + coalesced', coalesced);
}
breaker.stop();
