import { createCircuitBreaker } from './actors/circuitBreaker.ts';
import type { BreakerStatus, CircuitBreaker } from './actors/circuitBreaker.ts';
import { coalescingProvider } from './actors/coalescingProvider.ts';
import { countedUsage } from './actors/countedUsage.ts';
import { guardedProvider } from './actors/guardedProvider.ts';
import { createModelRouter } from './actors/modelRouter.ts';
import type { RoutedModel } from './actors/modelRouter.ts';
import type { ProviderKind } from './config.ts';
import type { Clock, Logger, ModelProvider } from './domain/ports.ts';
import type { ModelSpec, ModelsConfig } from './modelsFile.ts';
import { createOpenAiProvider } from './infra/openAiProvider.ts';
import { createSimulatedProvider } from './infra/simulatedProvider.ts';
import { countTokens } from './infra/tokenizer.ts';

/** Which models answer, and how they are guarded. Part of the server's options. */
export interface ModelOptions {
  /** Simulated model: chunks per reply (default 5) and ms between them (default 400). */
  simChunks?: number;
  simIntervalMs?: number;
  /** The models clients may name (`--models-file`); absent: one model, described by the options below. */
  models?: ModelsConfig;
  /** The single model: `simulated` (default) or `openai`, any OpenAI-compatible server. Ignored when `provider` or `models` is given. */
  llmProvider?: ProviderKind;
  llmBaseUrl?: string;
  llmApiKey?: string;
  llmModel?: string;
  /** Defaults for every OpenAI-compatible model (a models file may override them per model). */
  llmSystemPrompt?: string;
  llmTemperature?: number;
  llmMaxTokens?: number;
  historyBudgetTokens?: number;
  /** Upstream deadlines, retries before the first token, and the circuit breaker (each model has its own). */
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
  /** A model of your own (tests); it runs behind the guard, as the only model. */
  provider?: ModelProvider;
}

/** What transports need to know of the models: their names, and which answers when none is named. */
export interface ModelCatalog {
  readonly defaultModel: string;
  readonly names: readonly string[];
  has(name: string): boolean;
}

/** One model as `/api/status` shows it. */
export interface ModelStatus {
  name: string;
  provider: string;
  /** The upstream's model id (OpenAI-compatible models). */
  model?: string;
  fallbacks: readonly string[];
  breaker: BreakerStatus;
}

export interface Models {
  /** What sessions call: routes each request to its model, with fallbacks. */
  provider: ModelProvider;
  catalog: ModelCatalog;
  /** The default model's breaker (kept for `/api/status`'s `provider` and for tests). */
  breaker: CircuitBreaker;
  status(): ModelStatus[];
  stop(): void;
}

interface Built extends RoutedModel {
  kind: string;
  upstreamModel?: string;
  breaker: CircuitBreaker;
}

/**
 * Every configured model behind its own circuit breaker, first-token and
 * stall deadlines and retries (an OpenAI-compatible one also with its token
 * deltas joined into chunks), and the router in front. The simulated model
 * cannot fail or stall, so it runs bare (measured: the guard is ~12% of the
 * CPU per reply); its breaker exists all the same: `/api/status` shows one
 * per model.
 */
export function createModels(options: ModelOptions, clock: Clock, logger: Logger): Models {
  const specs = specsOf(options);
  const built = new Map<string, Built>();
  for (const spec of specs.models) built.set(spec.name, build(spec, options, clock, logger));
  const names = [...built.keys()];
  const defaultModel = specs.defaultModel;
  const router = createModelRouter({ models: built, defaultModel, logger });
  return {
    provider: router,
    catalog: { defaultModel, names, has: (name) => built.has(name) },
    breaker: built.get(defaultModel)!.breaker,
    status: () =>
      [...built.values()].map((model) => ({
        name: model.name,
        provider: model.kind,
        ...(model.upstreamModel !== undefined ? { model: model.upstreamModel } : {}),
        fallbacks: model.fallbacks,
        breaker: model.breaker.status(),
      })),
    stop() {
      for (const model of built.values()) model.breaker.stop();
    },
  };
}

/** The models file, or the one model the flags describe (named after its upstream model id, or `simulated`). */
function specsOf(options: ModelOptions): ModelsConfig {
  if (options.provider) return { defaultModel: options.provider.name, models: [{ name: options.provider.name, provider: 'simulated', fallbacks: [] }] };
  if (options.models) return options.models;
  if (options.llmProvider === 'openai') {
    if (!options.llmModel) throw new Error('llmProvider "openai" needs llmModel');
    const spec: ModelSpec = {
      name: options.llmModel,
      provider: 'openai',
      baseUrl: options.llmBaseUrl ?? 'https://api.openai.com/v1',
      model: options.llmModel,
      fallbacks: [],
      ...(options.llmApiKey ? { apiKey: options.llmApiKey } : {}),
    };
    return { defaultModel: spec.name, models: [spec] };
  }
  return { defaultModel: 'simulated', models: [{ name: 'simulated', provider: 'simulated', fallbacks: [] }] };
}

function build(spec: ModelSpec, options: ModelOptions, clock: Clock, logger: Logger): Built {
  const breaker = createCircuitBreaker({
    name: spec.name,
    clock,
    logger,
    failureThreshold: options.breakerFailures,
    failureRatePercent: options.breakerFailureRate,
    window: options.breakerWindow,
    cooldownMs: options.breakerCooldownMs,
  });
  const guard = (inner: ModelProvider) =>
    guardedProvider(inner, {
      breaker,
      clock,
      logger,
      firstTokenTimeoutMs: options.firstTokenTimeoutMs,
      stallTimeoutMs: options.stallTimeoutMs,
      retries: options.llmRetries,
      retryBaseMs: options.retryBaseMs,
    });
  const base = { name: spec.name, fallbacks: spec.fallbacks, breaker };
  if (options.provider) return { ...base, kind: options.provider.name, provider: guard(countedUsage(options.provider, countTokens)) };
  if (spec.provider === 'simulated') {
    return { ...base, kind: 'simulated', provider: createSimulatedProvider({ chunks: options.simChunks ?? 5, intervalMs: options.simIntervalMs ?? 400, clock }) };
  }
  const upstream = createOpenAiProvider({
    baseUrl: spec.baseUrl!,
    apiKey: spec.apiKey,
    model: spec.model!,
    systemPrompt: spec.systemPrompt ?? options.llmSystemPrompt,
    temperature: spec.temperature ?? options.llmTemperature,
    maxTokens: spec.maxTokens ?? options.llmMaxTokens,
    historyBudgetTokens: spec.historyBudgetTokens ?? options.historyBudgetTokens,
  });
  return {
    ...base,
    kind: 'openai',
    upstreamModel: spec.model!,
    provider: coalescingProvider(guard(upstream), { clock, flushMs: options.chunkFlushMs, maxChars: options.chunkMaxChars }),
  };
}
