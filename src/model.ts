import { createCircuitBreaker } from './actors/circuitBreaker.ts';
import type { CircuitBreaker } from './actors/circuitBreaker.ts';
import { coalescingProvider } from './actors/coalescingProvider.ts';
import { countedUsage } from './actors/countedUsage.ts';
import { guardedProvider } from './actors/guardedProvider.ts';
import type { ProviderKind } from './config.ts';
import type { Clock, Logger, ModelProvider } from './domain/ports.ts';
import { createOpenAiProvider } from './infra/openAiProvider.ts';
import { createSimulatedProvider } from './infra/simulatedProvider.ts';
import { countTokens } from './infra/tokenizer.ts';

/** Which model answers, and how it is guarded. Part of the server's options. */
export interface ModelOptions {
  /** Simulated model: chunks per reply (default 5) and ms between them (default 400). */
  simChunks?: number;
  simIntervalMs?: number;
  /** The model: `simulated` (default) or `openai`, any OpenAI-compatible server. Ignored when `provider` is given. */
  llmProvider?: ProviderKind;
  llmBaseUrl?: string;
  llmApiKey?: string;
  llmModel?: string;
  llmSystemPrompt?: string;
  llmTemperature?: number;
  llmMaxTokens?: number;
  historyBudgetTokens?: number;
  /** Upstream deadlines, retries before the first token, and the circuit breaker (a real or given provider). */
  firstTokenTimeoutMs?: number;
  stallTimeoutMs?: number;
  llmRetries?: number;
  retryBaseMs?: number;
  breakerFailures?: number;
  breakerFailureRate?: number;
  breakerWindow?: number;
  breakerCooldownMs?: number;
  /** Token deltas of a real model are joined into chunks for at most this long / this many characters. */
  chunkFlushMs?: number;
  chunkMaxChars?: number;
  /** A model of your own (tests); it runs behind the guard. */
  provider?: ModelProvider;
}

export interface Model {
  provider: ModelProvider;
  breaker: CircuitBreaker;
  /** The served model's name (`/v1/models`, `/api/status`). */
  name: string;
}

/**
 * The model every session uses: the given provider or an OpenAI-compatible
 * server behind the circuit breaker, deadlines and retries (the latter with
 * its token deltas joined into chunks), or the simulated one, which cannot
 * fail and runs bare. The breaker exists in every case: `/api/status` shows it.
 */
export function createModel(options: ModelOptions, clock: Clock, logger: Logger): Model {
  const openAi = !options.provider && options.llmProvider === 'openai';
  let base: ModelProvider;
  if (options.provider) base = countedUsage(options.provider, countTokens);
  else if (openAi) {
    if (!options.llmModel) throw new Error('llmProvider "openai" needs llmModel');
    base = createOpenAiProvider({
      baseUrl: options.llmBaseUrl ?? 'https://api.openai.com/v1',
      apiKey: options.llmApiKey,
      model: options.llmModel,
      systemPrompt: options.llmSystemPrompt,
      temperature: options.llmTemperature,
      maxTokens: options.llmMaxTokens,
      historyBudgetTokens: options.historyBudgetTokens,
    });
  } else base = createSimulatedProvider({ chunks: options.simChunks ?? 5, intervalMs: options.simIntervalMs ?? 400, clock });

  const breaker = createCircuitBreaker({
    name: base.name,
    clock,
    logger,
    failureThreshold: options.breakerFailures,
    failureRatePercent: options.breakerFailureRate,
    window: options.breakerWindow,
    cooldownMs: options.breakerCooldownMs,
  });
  const guarded = guardedProvider(base, {
    breaker,
    clock,
    logger,
    firstTokenTimeoutMs: options.firstTokenTimeoutMs,
    stallTimeoutMs: options.stallTimeoutMs,
    retries: options.llmRetries,
    retryBaseMs: options.retryBaseMs,
  });
  // The simulated model keeps the seed's one-chunk-per-step shape, and, as it
  // cannot fail or stall, skips the guard (measured: ~12% of the CPU per reply).
  const provider = openAi
    ? coalescingProvider(guarded, { clock, flushMs: options.chunkFlushMs, maxChars: options.chunkMaxChars })
    : options.provider
      ? guarded
      : base;
  const name = openAi ? (options.llmModel ?? base.name) : base.name;
  return { provider, breaker, name };
}
