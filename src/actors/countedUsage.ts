import { requestTokens } from '../domain/historyBudget.ts';
import type { TokenCounter } from '../domain/historyBudget.ts';
import type { CancelSignal, GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';

/**
 * Every reply has usage: a model that reports none gets it counted on its
 * final piece, in as the prompt it was given (with the system prompt, and
 * without the history: a provider of unknown habits may not have read it),
 * out as the text and tool calls it streamed. A model's own count is kept.
 */
export function countedUsage(inner: ModelProvider, count: TokenCounter): ModelProvider {
  return {
    name: inner.name,
    async *stream(request: GenerationRequest, signal: CancelSignal): AsyncIterable<ProviderChunk> {
      let text = '';
      let calls = '';
      const usage = () => {
        const prompt = request.promptTurn ?? { role: 'user' as const, content: request.prompt };
        return { inputTokens: requestTokens([prompt], count, request.options?.system), outputTokens: count(text) + count(calls) };
      };
      for await (const piece of inner.stream(request, signal)) {
        text += piece.text;
        for (const delta of piece.toolCalls ?? []) calls += (delta.name ?? '') + (delta.arguments ?? '');
        if (!piece.last || piece.usage) yield piece;
        else yield { ...piece, usage: usage() };
        if (piece.last) return;
      }
      // A stream that just ended still gets its usage on a final piece.
      if (!signal.aborted) yield { text: '', last: true, usage: usage() };
    },
  };
}
