import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createCircuitBreaker } from './actors/circuitBreaker.ts';
import type { CircuitBreaker } from './actors/circuitBreaker.ts';
import { coalescingProvider } from './actors/coalescingProvider.ts';
import { guardedProvider } from './actors/guardedProvider.ts';
import { createSessionRegistry } from './actors/sessionRegistry.ts';
import type { SessionRegistry } from './actors/sessionRegistry.ts';
import type { ProviderKind } from './config.ts';
import type { IdGenerator } from './domain/ids.ts';
import type { Clock, EventBus, Logger, ModelProvider, SessionStore } from './domain/ports.ts';
import { createInProcessBus } from './infra/inProcessBus.ts';
import { createJsonLogger } from './infra/jsonLogger.ts';
import { createMemoryStore } from './infra/memoryStore.ts';
import { createOpenAiProvider } from './infra/openAiProvider.ts';
import { randomIds } from './infra/randomIds.ts';
import { createSimulatedProvider } from './infra/simulatedProvider.ts';
import { systemClock } from './infra/systemClock.ts';
import { defaultMaxConnections } from './infra/fileLimit.ts';
import { createAdmission } from './transport/admission.ts';
import type { Admission, RejectReason } from './transport/admission.ts';
import { createHttpApp } from './transport/httpApp.ts';
import { createOpenAiRoutes } from './transport/openAiRoutes.ts';
import { createStatusRoute } from './transport/statusRoute.ts';
import { createSseStreams } from './transport/sseRoute.ts';
import { createWsGateway } from './transport/wsGateway.ts';

export interface ChatServerOptions {
  /** Simulated model: chunks per reply (default 5) and ms between them (default 400). */
  simChunks?: number;
  simIntervalMs?: number;
  queueLimit?: number;
  sessionTtlMs?: number;
  restartIntensity?: number;
  restartPeriodMs?: number;
  restartBackoffMs?: number;
  maxFrameBytes?: number;
  maxBodyBytes?: number;
  maxBufferedBytes?: number;
  replayLogSize?: number;
  heartbeatMs?: number;
  /** Most active sessions (default 100,000; 0 = no limit). */
  maxSessions?: number;
  /** Open WS + SSE connections (default: the open-file limit less 2%). */
  maxConnections?: number;
  /** New connections per client IP per second (default 50; 0 = off). */
  connRatePerIp?: number;
  /** Messages per session per minute (default 60; 0 = off). */
  messagesPerMinute?: number;
  /** Shed new work while event-loop p99 delay exceeds this (default 500 ms; 0 = off). */
  shedLagMs?: number;
  /** Observers for refusals and slow consumers (metrics). */
  onReject?: (reason: RejectReason) => void;
  onSlowConsumer?: (transport: 'ws' | 'sse') => void;
  /** The model: `simulated` (default) or `openai`, any OpenAI-compatible server. Ignored when `provider` is given. */
  llmProvider?: ProviderKind;
  llmBaseUrl?: string;
  llmApiKey?: string;
  llmModel?: string;
  llmSystemPrompt?: string;
  llmTemperature?: number;
  llmMaxTokens?: number;
  historyBudgetTokens?: number;
  /** Upstream deadlines, retries before the first token, and the circuit breaker (any provider). */
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
  /** Ports and collaborators; each defaults to the embedded implementation. */
  provider?: ModelProvider;
  store?: SessionStore;
  bus?: EventBus;
  clock?: Clock;
  ids?: IdGenerator;
  logger?: Logger;
}

export interface ChatServer {
  readonly http: Server;
  readonly registry: SessionRegistry;
  readonly bus: EventBus;
  readonly admission: Admission;
  /** The model's circuit breaker (its state is on `GET /api/status`). */
  readonly breaker: CircuitBreaker;
  /** Starts listening; port 0 picks a free port. Resolves with the address. */
  listen(port?: number, host?: string): Promise<{ port: number; host: string; url: string }>;
  /** Stops sessions (clients are told), closes connections, the bus and the store. */
  close(): Promise<void>;
}

/** The composition root used by `main.ts` and by tests. */
export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createJsonLogger();
  const bus =
    options.bus ??
    createInProcessBus({
      replayLogSize: options.replayLogSize ?? 1000,
      onListenerError: (error, event) => logger.error({ sessionId: event.sessionId, err: String(error) }, 'bus listener failed'),
    });
  const store = options.store ?? createMemoryStore();
  const model = createModel(options, clock, logger);
  const { provider, breaker } = model;

  const registry = createSessionRegistry({
    bus,
    store,
    provider,
    clock,
    logger,
    ids: options.ids ?? randomIds,
    queueLimit: options.queueLimit ?? 8,
    sessionTtlMs: options.sessionTtlMs ?? 600_000,
    maxSessions: options.maxSessions === 0 ? undefined : (options.maxSessions ?? 100_000),
    restartPolicy: {
      ...(options.restartIntensity !== undefined ? { intensity: options.restartIntensity } : {}),
      ...(options.restartPeriodMs !== undefined ? { periodMs: options.restartPeriodMs } : {}),
      ...(options.restartBackoffMs !== undefined ? { backoffBaseMs: options.restartBackoffMs } : {}),
    },
  });
  const admission = createAdmission({
    maxConnections: options.maxConnections ?? defaultMaxConnections(),
    connectionsPerIpPerSecond: options.connRatePerIp,
    messagesPerSessionPerMinute: options.messagesPerMinute,
    shedLagMs: options.shedLagMs,
    onReject: options.onReject,
  });
  const sse = createSseStreams({
    registry,
    bus,
    logger,
    admission,
    heartbeatMs: options.heartbeatMs,
    maxBufferedBytes: options.maxBufferedBytes,
    onSlowConsumer: () => options.onSlowConsumer?.('sse'),
  });
  const ws = createWsGateway({
    registry,
    bus,
    logger,
    admission,
    maxFrameBytes: options.maxFrameBytes,
    maxBufferedBytes: options.maxBufferedBytes,
    onSlowConsumer: () => options.onSlowConsumer?.('ws'),
  });
  const openAi = createOpenAiRoutes({
    registry,
    bus,
    clock,
    logger,
    model: model.name,
    maxBodyBytes: options.maxBodyBytes,
    heartbeatMs: options.heartbeatMs,
  });
  const status = createStatusRoute({ registry, provider: { name: provider.name, model: model.name, breaker: () => breaker.status() } });
  const app = createHttpApp({
    registry,
    sse,
    admission,
    logger,
    maxBodyBytes: options.maxBodyBytes,
    routers: [
      { path: '/api', router: status },
      { path: '/v1', router: openAi },
    ],
  });
  const http = createHttpServer(app);
  http.on('upgrade', (request, socket, head) => ws.handleUpgrade(request, socket, head));

  let closing: Promise<void> | undefined;

  return {
    http,
    registry,
    bus,
    admission,
    breaker,
    listen(port = 8080, host = '0.0.0.0') {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        // A deep accept queue (capped by net.core.somaxconn) rides out bursts of new connections.
        http.listen({ port, host, backlog: 4096 }, () => {
          http.off('error', reject);
          const address = http.address() as AddressInfo;
          const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          resolve({ port: address.port, host: address.address, url: `http://${shownHost}:${address.port}` });
        });
      });
    },
    close() {
      closing ??= (async () => {
        await registry.close(); // publishes session.stopped: watchers get a farewell
        ws.close();
        sse.close();
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
        admission.close();
        breaker.stop();
        await bus.close();
        await store.close();
      })();
      return closing;
    },
  };
}

/**
 * The model every session uses: the given provider, the simulated one, or an
 * OpenAI-compatible server (its token deltas joined into chunks), always
 * behind one circuit breaker with deadlines and retries.
 */
function createModel(options: ChatServerOptions, clock: Clock, logger: Logger): { provider: ModelProvider; breaker: CircuitBreaker; name: string } {
  const openAi = !options.provider && options.llmProvider === 'openai';
  let base: ModelProvider;
  if (options.provider) base = options.provider;
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
  // The simulated model keeps the seed's one-chunk-per-step shape.
  const provider = openAi ? coalescingProvider(guarded, { clock, flushMs: options.chunkFlushMs, maxChars: options.chunkMaxChars }) : guarded;
  const name = openAi ? (options.llmModel ?? base.name) : base.name;
  return { provider, breaker, name };
}
