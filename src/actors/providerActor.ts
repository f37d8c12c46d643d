import { fromPromise } from 'xstate';
import type { GenerationRequest, ModelProvider } from '../domain/ports.ts';

export interface ProviderActorInput {
  provider: ModelProvider;
  request: GenerationRequest;
  /** Called for every piece; `last` is true exactly once, on the final one. */
  onChunk: (text: string, last: boolean) => void;
}

/**
 * Runs one generation. Chunks go straight to `onChunk` (and from there to the
 * bus) rather than through the session machine: a transition per token would
 * cost more than the streaming itself. Only the end (done or thrown) reaches
 * the parent, as an actor event. Stopping the actor aborts `signal`, which
 * every provider honours.
 */
export const providerActor = fromPromise<void, ProviderActorInput>(async ({ input, signal }) => {
  let ended = false;
  for await (const piece of input.provider.stream(input.request, signal)) {
    if (signal.aborted) return;
    input.onChunk(piece.text, piece.last);
    if (piece.last) {
      ended = true;
      break;
    }
  }
  // A stream that just stops still owes its watchers an `is_last` chunk.
  if (!ended && !signal.aborted) input.onChunk('', true);
});
