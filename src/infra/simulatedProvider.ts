import { requestTokens, settledTurnTokens } from '../domain/historyBudget.ts';
import type { TokenCounter } from '../domain/historyBudget.ts';
import type { Clock, GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import { createSharedWakeups } from './sharedWakeups.ts';
import type { Wakeup } from './sharedWakeups.ts';
import { countTokens } from './tokenizer.ts';

export interface SimulatedProviderOptions {
  /** Chunks per reply (default 5, as the seed). */
  chunks?: number;
  /** Delay before each chunk in ms (default 400, as the seed); 0 streams at once. */
  intervalMs?: number;
  clock: Clock;
  /** Counts the usage it reports (default: the o200k tokenizer). */
  countTokens?: TokenCounter;
}

/**
 * The seed's model: for user text T it streams `chunk 1: T` … `chunk N: T`,
 * one every `intervalMs`. Every session streams on its own schedule (on
 * timers shared by the replies due in the same millisecond), so a thousand
 * sessions finish in one stream's time. It reports usage counted
 * with the tokenizer: in, the prompt it reads (it reads no history); out,
 * its whole reply. It always stops with `finish_reason` `stop`.
 */
export function createSimulatedProvider(options: SimulatedProviderOptions): ModelProvider {
  const chunks = options.chunks ?? 5;
  const intervalMs = options.intervalMs ?? 400;
  const { clock } = options;
  const count = options.countTokens ?? countTokens;
  // All replies of this model share timers: one per due millisecond, not one per chunk per reply.
  const wakeups = createSharedWakeups(clock);

  return {
    name: 'simulated',
    async *stream(request: GenerationRequest, signal: AbortSignal): AsyncIterable<ProviderChunk> {
      // One abort listener per reply, not one per chunk: EventTarget
      // listeners are costly when 10,000 replies stream at once.
      let pending: Wakeup | undefined;
      let wake: (() => void) | undefined;
      const onAbort = () => {
        pending?.cancel();
        wake?.();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        for (let index = 1; index <= chunks; index += 1) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            if (signal.aborted) resolve();
            // At 0 ms it still yields to the event loop (after I/O), as a real
            // model's I/O would: a reply made in one macrotask lets no socket drain.
            else pending = intervalMs <= 0 ? wakeups.nextTurn(resolve) : wakeups.after(intervalMs, resolve);
          });
          pending = undefined;
          if (signal.aborted) return;
          const text = `chunk ${index}: ${request.prompt}`;
          if (index < chunks) {
            yield { text, last: false };
            continue;
          }
          const prompt = request.promptTurn ?? { role: 'user' as const, content: request.prompt };
          // The prompt is the stored message (counted once: its window read the same count).
          const inputTokens = requestTokens([], count, request.options?.system) + settledTurnTokens(prompt, count);
          const usage = { inputTokens, outputTokens: replyTokens(request.prompt, chunks, count) };
          yield { text, last: true, usage, finishReason: 'stop' };
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    },
  };
}

/**
 * Tokens of the whole reply: counted as one text up to 64 kB, beyond as the
 * prompt's count times the chunks plus the prefixes (a long prompt repeated
 * hundreds of times would cost a count of megabytes per reply).
 */
function replyTokens(prompt: string, chunks: number, count: TokenCounter): number {
  if ((prompt.length + 12) * chunks <= 65_536) {
    let reply = '';
    for (let index = 1; index <= chunks; index += 1) reply += `chunk ${index}: ${prompt}`;
    return count(reply);
  }
  let prefixes = 0;
  for (let index = 1; index <= chunks; index += 1) prefixes += count(`chunk ${index}: `);
  return prefixes + chunks * count(prompt);
}
