import { sleep } from '../../src/actors/clockTimers.ts';
import { ChatError } from '../../src/domain/errors.ts';
import type { CancelSignal, GenerationRequest, ModelProvider, ProviderChunk } from '../../src/domain/ports.ts';
import type { ManualClock } from '../support/manualClock.ts';

export type Attempt = (signal: CancelSignal) => AsyncIterable<ProviderChunk>;

/** A provider that plays one scripted attempt per call and records what it saw. */
export function scripted(attempts: Attempt[]) {
  const calls: { signal: CancelSignal; startedAt: number }[] = [];
  let clockNow = () => 0;
  const provider: ModelProvider = {
    name: 'scripted',
    stream(_request, signal) {
      calls.push({ signal, startedAt: clockNow() });
      const attempt = attempts[calls.length - 1];
      if (!attempt) throw new Error('no more scripted attempts');
      return attempt(signal);
    },
  };
  return { provider, calls, useClock: (clock: ManualClock) => (clockNow = () => clock.now()) };
}

/** Pieces at the given times (ms after the attempt starts), then the end. */
export function timed(clock: ManualClock, pieces: [number, string][], end: 'done' | ChatError | 'hang' = 'done'): Attempt {
  return async function* (signal) {
    let at = 0;
    for (const [time, text] of pieces) {
      await sleep(clock, time - at, signal);
      at = time;
      if (signal.aborted) return;
      yield { text, last: false };
    }
    if (end === 'hang') await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    else if (end instanceof ChatError) throw end;
    else yield { text: '', last: true, usage: { inputTokens: 1, outputTokens: 2 } };
  };
}

const REQUEST: GenerationRequest = { sessionId: 's', messageId: 'r', prompt: 'hi', history: [] };

/** Consumes a stream in the background; the test drives time. */
export function run(provider: ModelProvider, signal = new AbortController().signal) {
  const state = { texts: [] as string[], chunks: [] as ProviderChunk[], error: undefined as ChatError | undefined, done: false };
  void (async () => {
    try {
      for await (const piece of provider.stream(REQUEST, signal)) {
        state.chunks.push(piece);
        state.texts.push(piece.text);
      }
    } catch (error) {
      state.error = error as ChatError;
    } finally {
      state.done = true;
    }
  })();
  return state;
}

export const upstream500 = () => new ChatError('upstream_error', 'HTTP 500', { upstreamStatus: 500 });
