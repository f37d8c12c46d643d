import OpenAI, { APIConnectionError, APIError } from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { ChatError } from '../domain/errors.ts';
import { estimateTokens, fitHistory } from '../domain/historyBudget.ts';
import type { GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import type { Usage } from '../domain/message.ts';

export interface OpenAiProviderOptions {
  /** e.g. https://api.openai.com/v1, http://localhost:11434/v1 (Ollama), http://localhost:8000/v1 (vLLM). */
  baseUrl: string;
  /** Sent as a bearer token; servers without auth ignore it. */
  apiKey?: string;
  model: string;
  systemPrompt?: string;
  temperature?: number;
  /** 0 or unset: the server's default. */
  maxTokens?: number;
  /** Estimated tokens of history sent per request; oldest turns go first (default 3,000). */
  historyBudgetTokens?: number;
  /** The SDK's own whole-request backstop; the real deadlines are the guard's (default 10 min). */
  requestTimeoutMs?: number;
  /** For tests: the fetch the SDK uses. */
  fetch?: typeof fetch;
}

/**
 * A model behind any OpenAI-compatible Chat Completions endpoint (OpenAI,
 * Ollama, vLLM, llama.cpp's server), streamed with the official SDK. It
 * yields raw token deltas and reports every failure as a typed ChatError; the
 * retries, deadlines and circuit breaker live in `guardedProvider`, so the
 * SDK's own retries are off.
 */
export function createOpenAiProvider(options: OpenAiProviderOptions): ModelProvider {
  const client = new OpenAI({
    baseURL: options.baseUrl,
    // The SDK insists on a key; local servers (Ollama, vLLM) need none.
    apiKey: options.apiKey || 'unused',
    maxRetries: 0,
    timeout: options.requestTimeoutMs ?? 600_000,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const budget = options.historyBudgetTokens ?? 3_000;

  const messagesFor = (request: GenerationRequest): ChatCompletionMessageParam[] => {
    const system = request.options?.system ?? options.systemPrompt ?? '';
    const reserved = (system ? estimateTokens(system) : 0) + estimateTokens(request.prompt);
    const history = fitHistory(request.history, budget, reserved);
    return [
      ...(system ? [{ role: 'system' as const, content: system }] : []),
      ...history.map((turn) => ({ role: turn.role, content: turn.content })),
      { role: 'user', content: request.prompt },
    ];
  };

  return {
    name: 'openai',
    async *stream(request: GenerationRequest, signal: AbortSignal): AsyncIterable<ProviderChunk> {
      const temperature = request.options?.temperature ?? options.temperature;
      const maxTokens = request.options?.maxTokens ?? options.maxTokens;
      let finished = false;
      let usage: Usage | undefined;
      try {
        const stream = await client.chat.completions.create(
          {
            model: options.model,
            messages: messagesFor(request),
            stream: true,
            stream_options: { include_usage: true },
            ...(temperature !== undefined ? { temperature } : {}),
            ...(maxTokens ? { max_tokens: maxTokens } : {}),
          },
          { signal },
        );
        for await (const chunk of stream) {
          if (chunk.usage) usage = { inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
          const choice = chunk.choices[0];
          if (!choice) continue;
          if (choice.delta?.content) yield { text: choice.delta.content, last: false };
          if (choice.finish_reason) finished = true;
        }
      } catch (error) {
        if (signal.aborted) return;
        throw toChatError(error);
      }
      if (signal.aborted) return;
      // Without a finish_reason the connection was closed early, not the answer.
      if (!finished) throw new ChatError('upstream_error', "The model's stream ended before the reply was finished.");
      yield usage ? { text: '', last: true, usage } : { text: '', last: true };
    },
  };
}

/** What the client may see of an upstream failure: its status, never its text (it may hold secrets). */
function toChatError(error: unknown): ChatError {
  if (error instanceof ChatError) return error;
  if (error instanceof APIConnectionError) {
    return new ChatError('upstream_error', "The model's server could not be reached.", { cause: error });
  }
  if (error instanceof APIError && typeof error.status === 'number') {
    return new ChatError('upstream_error', `The model's server answered with HTTP ${error.status}.`, {
      cause: error,
      upstreamStatus: error.status,
    });
  }
  if (error instanceof APIError) {
    return new ChatError('upstream_error', "The model's server reported an error in its stream.", { cause: error });
  }
  return new ChatError('upstream_error', "The connection to the model's server failed.", { cause: error });
}
