import type { JsonValue } from '../domain/conversationRecord.ts';
import { ChatError } from '../domain/errors.ts';
import { fitHistory, requestTokens, turnTokens } from '../domain/historyBudget.ts';
import type { TokenCounter } from '../domain/historyBudget.ts';
import { FINISH_REASONS } from '../domain/message.ts';
import type { FinishReason, Turn, Usage } from '../domain/message.ts';
import type { CancelSignal, GenerationRequest, ModelProvider, ProviderChunk } from '../domain/ports.ts';
import { answeredToolCalls } from '../domain/toolCalls.ts';
import type { ToolCallDelta } from '../domain/toolCalls.ts';
import { createChatStreamClient } from './chatStreamClient.ts';
import { countTokens } from './tokenizer.ts';

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
  /** Tokens of history sent per request, counted with `countTokens`; oldest turns go first (default 3,000). */
  historyBudgetTokens?: number;
  /** A whole-request backstop; the real deadlines are the guard's (default 10 min). */
  requestTimeoutMs?: number;
  /** Counts the history budget, and usage when the server reports none (default: the o200k tokenizer). */
  countTokens?: TokenCounter;
}

/** The parts of a streamed `chat.completion.chunk` read here (the rest is ignored). */
interface WireToolCall {
  index: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}
interface WireChunk {
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  choices?: { delta?: { content?: string | null; tool_calls?: WireToolCall[] | null }; logprobs?: { content?: unknown[] | null } | null; finish_reason?: string | null }[];
}

/** A turn as OpenAI's Chat Completions API takes it: content parts and tool calls as they were given. */
function toWire(turn: Turn): Record<string, unknown> {
  const content = turn.parts ?? turn.content;
  if (turn.role === 'tool') return { role: 'tool', tool_call_id: turn.toolCallId ?? '', content };
  if (turn.role === 'assistant' && turn.toolCalls?.length) {
    return { role: 'assistant', content: turn.content === '' && !turn.parts ? null : content, tool_calls: turn.toolCalls };
  }
  return { role: turn.role, content };
}

function finishReasonOf(value: string): FinishReason {
  if (value === 'function_call') return 'tool_calls';
  return (FINISH_REASONS as readonly string[]).includes(value) ? (value as FinishReason) : 'stop';
}

function toolDeltas(chunk: WireToolCall[] | null | undefined): ToolCallDelta[] | undefined {
  if (!chunk?.length) return undefined;
  return chunk.map((call) => ({
    index: call.index,
    ...(call.id ? { id: call.id } : {}),
    ...(call.function?.name ? { name: call.function.name } : {}),
    ...(call.function?.arguments ? { arguments: call.function.arguments } : {}),
  }));
}

function toolTokensOf(deltas: readonly ToolCallDelta[], count: TokenCounter): number {
  let tokens = 0;
  for (const delta of deltas) tokens += (delta.name ? count(delta.name) : 0) + (delta.arguments ? count(delta.arguments) : 0);
  return tokens;
}

/**
 * A model behind any OpenAI-compatible Chat Completions endpoint (OpenAI,
 * Ollama, vLLM, llama.cpp's server), streamed over keep-alive HTTP. It
 * yields raw token deltas and tool-call fragments, ends with the server's
 * finish_reason and usage (counted with the tokenizer when the server
 * reports none), and reports every failure as a typed ChatError; the
 * retries, deadlines and circuit breaker live in `guardedProvider`. Request fields the client asked to pass
 * through (`options.upstream`) go to the server as they are.
 */
export function createOpenAiProvider(options: OpenAiProviderOptions): ModelProvider {
  const client = createChatStreamClient({
    baseUrl: options.baseUrl,
    // Local servers (Ollama, vLLM) need no key and ignore this one.
    apiKey: options.apiKey || 'unused',
    timeoutMs: options.requestTimeoutMs ?? 600_000,
  });
  const budget = options.historyBudgetTokens ?? 3_000;
  const count = options.countTokens ?? countTokens;

  // A finished message never changes: its cost is counted once, not on every request of its session.
  const costs = new Map<string, number>();
  const costOf = (turn: Turn & { id?: string; status?: string }): number => {
    // (a reply whose abandoned tool calls were left out is another turn)
    const key = turn.id === undefined ? undefined : `${turn.id}:${turn.toolCalls?.length ?? 0}`;
    const cached = key === undefined ? undefined : costs.get(key);
    if (cached !== undefined) return cached;
    const cost = turnTokens(turn, count);
    if (key !== undefined && turn.status === 'complete') {
      if (costs.size >= 50_000) costs.delete(costs.keys().next().value!);
      costs.set(key, cost);
    }
    return cost;
  };

  const turnsFor = (request: GenerationRequest, system: string): Turn[] => {
    const prompt: Turn = request.promptTurn ?? { role: 'user', content: request.prompt };
    // Nothing to fit (an ephemeral /v1 request's usual case): nothing to count.
    if (request.history.length === 0) return [prompt];
    const reserved = requestTokens([prompt], count, system);
    const history = answeredToolCalls<Turn>([...request.history, prompt]).slice(0, -1);
    return [...fitHistory(history, budget, reserved, count, prompt, costOf), prompt];
  };

  return {
    name: 'openai',
    async *stream(request: GenerationRequest, signal: CancelSignal): AsyncIterable<ProviderChunk> {
      const temperature = request.options?.temperature ?? options.temperature;
      const upstream = request.options?.upstream ?? {};
      // A client's max_completion_tokens goes as it is; the configured limit only when the client set none.
      const maxTokens = request.options?.maxTokens ?? (upstream['max_completion_tokens'] === undefined ? options.maxTokens : undefined);
      const system = request.options?.system ?? options.systemPrompt ?? '';
      const turns = turnsFor(request, system);
      let finishReason: FinishReason | undefined;
      let usage: Usage | undefined;
      // Kept only to count usage when the server reports none (counted once, at the end).
      const text: string[] = [];
      const toolCallDeltas: ToolCallDelta[] = [];
      try {
        const body = {
          ...upstream,
          model: options.model,
          messages: [...(system ? [{ role: 'system', content: system }] : []), ...turns.map(toWire)],
          stream: true,
          stream_options: { include_usage: true },
          ...(temperature !== undefined ? { temperature } : {}),
          ...(maxTokens ? { max_tokens: maxTokens } : {}),
        };
        for await (const batch of client.stream(body, signal)) {
          // The deltas of one read go on as one piece (the coalescer would join them anyway).
          let pieceText = '';
          let pieceCalls: ToolCallDelta[] | undefined;
          let pieceLogprobs: JsonValue[] | undefined;
          for (const raw of batch) {
            const chunk = raw as WireChunk;
            if (chunk.usage) usage = { inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
            const choice = chunk.choices?.[0];
            if (!choice) continue;
            const content = choice.delta?.content;
            const toolCalls = toolDeltas(choice.delta?.tool_calls);
            if (content) pieceText += content;
            if (toolCalls) {
              (pieceCalls ??= []).push(...toolCalls);
              toolCallDeltas.push(...toolCalls);
            }
            if (choice.logprobs?.content?.length) (pieceLogprobs ??= []).push(...(choice.logprobs.content as JsonValue[]));
            if (choice.finish_reason) finishReason = finishReasonOf(choice.finish_reason);
          }
          if (pieceText) text.push(pieceText);
          if (pieceText || pieceCalls || pieceLogprobs) {
            yield { text: pieceText, last: false, ...(pieceCalls ? { toolCalls: pieceCalls } : {}), ...(pieceLogprobs ? { logprobs: pieceLogprobs } : {}) };
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        throw toChatError(error);
      }
      if (signal.aborted) return;
      // Without a finish_reason the connection was closed early, not the answer.
      if (!finishReason) throw new ChatError('upstream_error', "The model's stream ended before the reply was finished.");
      usage ??= { inputTokens: requestTokens(turns, count, system), outputTokens: count(text.join('')) + toolTokensOf(toolCallDeltas, count) };
      yield { text: '', last: true, usage, finishReason };
    },
  };
}

/** Every failure the client makes is a ChatError already; anything else is a broken connection. */
function toChatError(error: unknown): ChatError {
  if (error instanceof ChatError) return error;
  return new ChatError('upstream_error', "The connection to the model's server failed.", { cause: error });
}
