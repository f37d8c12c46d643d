import { startRetentionSweeper } from './actors/retentionSweeper.ts';
import { createAccess } from './access.ts';
import type { AuthOptions } from './access.ts';
export { DEFAULT_KEY_LIMITS } from './access.ts';
export type { AuthOptions } from './access.ts';
export type { ChatServer, ChatServerOptions } from './chatServerOptions.ts';
import type { ChatServer, ChatServerOptions } from './chatServerOptions.ts';
import { createSessionRegistry } from './actors/sessionRegistry.ts';
import type { Sessions } from './actors/sessions.ts';
import type { ClusterSessions } from './cluster/clusterSessions.ts';
import { ChatError } from './domain/errors.ts';
import { registerClusterMetrics } from './infra/clusterMetrics.ts';
import { redisLimiters } from './infra/rateLimiters.ts';
import type { Registry } from 'prom-client';
import { createStoreHealth } from './actors/storeHealth.ts';
import { createInProcessBus } from './infra/inProcessBus.ts';
import { createMemoryStore } from './infra/memoryStore.ts';
import { createPinoLogger } from './infra/pinoLogger.ts';
import { redactSecrets } from './infra/redactingLogger.ts';
import { createPrometheusMetrics } from './infra/prometheusMetrics.ts';
import { trackStore } from './infra/trackedStore.ts';
import type { StoreOperation } from './infra/trackedStore.ts';
import { randomIds } from './infra/randomIds.ts';
import { withStoredReplay } from './infra/storedReplayBus.ts';
import { systemClock } from './infra/systemClock.ts';
import { defaultMaxConnections } from './infra/fileLimit.ts';
import { createAdmission } from './transport/admission.ts';
import { createBufferBudget } from './transport/bufferBudget.ts';
import { countTokens } from './infra/tokenizer.ts';
import { createModels } from './model.ts';
import { createUsage } from './usage.ts';
import { createAdminRoutes } from './transport/adminRoutes.ts';
import { createAuthRoutes } from './transport/authRoutes.ts';
import { createHttpApp } from './transport/httpApp.ts';
import { createSseAccess } from './transport/sseAccess.ts';
import { createOpenAiRoutes } from './transport/openAiRoutes.ts';
import { createStatusRoute } from './transport/statusRoute.ts';
import { createOpsRoutes } from './transport/opsRoutes.ts';
import { createWebPages } from './transport/webPages.ts';
import { createSseStreams } from './transport/sseRoute.ts';
import { listen } from './transport/listen.ts';
import { createWsGateway } from './transport/wsGateway.ts';
import { createChatHttpServer } from './transport/chatHttpServer.ts';
import { drainAndClose } from './drainAndClose.ts';
import { createInspector } from './inspector.ts';

/** The composition root used by `main.ts` and by tests. */
export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const clock = options.clock ?? systemClock;
  // API keys and `access_token` never reach a log line whole, whoever writes it.
  const logger = redactSecrets(options.logger ?? createPinoLogger());
  let shuttingDown = false;
  // Metrics are created after the store; the hook looks them up when a failure happens.
  let countStoreError: ((operation: StoreOperation) => void) | undefined;
  const cluster = options.cluster;
  const rawStore = options.store ?? createMemoryStore();
  const store = trackStore(cluster ? cluster.fence(rawStore) : rawStore, { onError: (operation) => countStoreError?.(operation) });
  const bus = withStoredReplay(
    options.bus ??
      cluster?.bus ??
      createInProcessBus({
        replayLogSize: options.replayLogSize ?? 1000,
        replayLogBytes: options.replayLogBytes ?? 1024 * 1024,
        onListenerError: (error, event) => logger.error({ sessionId: event.sessionId, err: String(error) }, 'bus listener failed'),
      }),
    store,
    logger,
  );
  const models = createModels(options, clock, logger);
  const { provider, breaker } = models;
  // One view of whether the store takes work, from its own answers: sessions and /readyz share it.
  const health = createStoreHealth({ ping: () => store.ping(), clock, logger });

  const registry = createSessionRegistry({
    bus,
    store,
    health,
    provider,
    clock,
    logger,
    ids: options.ids ?? randomIds,
    // What a model may be sent is what a session keeps in memory; the rest is paged from the store.
    // The window holds what the most generous model may be sent, counted with the same tokenizer.
    contextBudgetTokens: Math.max(options.historyBudgetTokens ?? 3000, ...(options.models?.models ?? []).map((spec) => spec.historyBudgetTokens ?? 0)),
    countTokens,
    queueLimit: options.queueLimit ?? 8,
    sessionTtlMs: options.sessionTtlMs ?? 600_000,
    maxSessions: options.maxSessions === 0 ? undefined : (options.maxSessions ?? 100_000),
    onPassivated: (count) => metrics?.passivated(count),
    onReleased: (sessionId) => clustered?.released(sessionId),
    ...(options.inspect ? { inspect: options.inspect } : {}),
    flushIntervalMs: options.flushIntervalMs,
    // A store that dies with the process (memory) gains nothing from mid-reply flushes.
    flushStreaming: store.durable !== false,
    restartPolicy: {
      ...(options.restartIntensity !== undefined ? { intensity: options.restartIntensity } : {}),
      ...(options.restartPeriodMs !== undefined ? { periodMs: options.restartPeriodMs } : {}),
      ...(options.restartBackoffMs !== undefined ? { backoffBaseMs: options.restartBackoffMs } : {}),
    },
  });
  // Across nodes, transports reach sessions through the cluster (attached at listen()).
  let clustered: ClusterSessions | undefined;
  const attachedCluster = (): ClusterSessions => {
    if (!clustered) throw new ChatError('unavailable', 'This node has not joined its cluster yet.');
    return clustered;
  };
  const routed: Sessions = cluster
    ? {
        create: (details, access) => attachedCluster().create(details, access),
        find: (sessionId, access) => attachedCluster().find(sessionId, access),
        remove: (sessionId, access) => attachedCluster().remove(sessionId, access),
        listSessions: (query, access) => attachedCluster().listSessions(query, access),
        listMessages: (sessionId, query, access) => attachedCluster().listMessages(sessionId, query, access),
      }
    : registry;
  const admission = createAdmission({
    maxConnections: options.maxConnections || defaultMaxConnections(),
    // Per-IP rates (with their burst) are the client limits' below: they count only traffic without a valid key.
    connectionsPerIpPerSecond: 0,
    messagesPerSessionPerMinute: options.messagesPerMinute,
    shedLagMs: options.shedLagMs,
    onReject: options.onReject,
    ...(cluster ? { limiters: redisLimiters(cluster.limiterRedis) } : {}),
  });
  const authOptions: AuthOptions = options.auth ?? { mode: 'keys' };
  // Tokens spent per key, day and model: budgets, /api/usage, /admin/usage, llm_chat_tokens_total.
  const usage = createUsage({ store, bus, clock, logger, flushMs: options.usageFlushMs, defaultModel: models.catalog.defaultModel });
  const access = createAccess({
    auth: authOptions,
    store,
    registry: routed,
    ...(cluster ? { limiters: redisLimiters(cluster.limiterRedis) } : {}),
    health,
    admission,
    clock,
    logger,
    models: models.catalog,
    ledger: usage.ledger,
    connRatePerIp: options.connRatePerIp,
    connBurstPerIp: options.connBurstPerIp,
  });
  const { keyRing, auth, limits, origins, keyConnections, sessions } = access;
  usage.start({ registry, keyRing, metrics: () => metrics });
  const retention =
    options.retentionDays && options.retentionDays > 0
      ? startRetentionSweeper({ store, registry, clock, logger, retentionDays: options.retentionDays })
      : undefined;
  const budget = createBufferBudget({
    maxTotalBytes: options.maxBufferedTotalBytes,
    onShed: (bytes) => logger.warn({ bytes, heldBytes: budget.heldBytes }, 'node buffer budget exceeded: closing the heaviest consumer'),
  });
  const sse = createSseStreams({
    registry: routed,
    bus,
    logger,
    admission,
    budget,
    heartbeatMs: options.heartbeatMs,
    maxBufferedBytes: options.maxBufferedBytes,
    onSlowConsumer: () => {
      options.onSlowConsumer?.('sse');
      metrics?.slowConsumer('sse');
    },
  });
  const ws = createWsGateway({
    registry: routed,
    bus,
    logger,
    admission,
    sessions,
    origins,
    keyConnections,
    identify: (request) => access.identifySocket(request),
    budget,
    pingIntervalMs: options.wsPingMs,
    clock,
    closeGraceMs: options.wsCloseGraceMs,
    maxFrameBytes: options.maxFrameBytes,
    maxBufferedBytes: options.maxBufferedBytes,
    onSlowConsumer: () => {
      options.onSlowConsumer?.('ws');
      metrics?.slowConsumer('ws');
    },
    onClientError: (code) => metrics?.clientError('ws', code),
  });
  const metrics =
    options.metrics === false
      ? undefined
      : createPrometheusMetrics({
          bus,
          clock,
          connections: () => ({ ws: ws.connectionCount, sse: sse.streamCount }),
          edge: () => ({ slots: admission.connections, bufferedBytes: budget.heldBytes }),
          liveSessions: () => registry.activeCount,
          ...(cluster ? { extend: (register: Registry) => registerClusterMetrics(register, cluster) } : {}),
        });
  countStoreError = (operation) => metrics?.storeError(operation);
  const ops = createOpsRoutes({ health, shuttingDown: () => shuttingDown, metrics, ...(cluster ? { redis: cluster } : {}) });
  const { inspection, inspector } = createInspector(options.inspector, { registry, bus, clock, logger, maxBufferedBytes: options.maxBufferedBytes, budget, keyRing, cluster });
  const admin = keyRing && authOptions.adminToken ? createAdminRoutes({ ring: keyRing, logger, adminToken: authOptions.adminToken, maxBodyBytes: options.maxBodyBytes }) : undefined;
  const openAi = createOpenAiRoutes({
    registry: routed,
    auth,
    sessions,
    admission,
    keyConnections,
    maxBufferedBytes: options.maxBufferedBytes,
    budget,
    onSlowConsumer: () => {
      options.onSlowConsumer?.('http');
      metrics?.slowConsumer('http');
    },
    bus,
    clock,
    logger,
    maxBodyBytes: options.maxV1BodyBytes,
    heartbeatMs: options.heartbeatMs,
  });
  const status = createStatusRoute({ registry, models, ...(cluster ? { node: cluster.nodeId } : {}) });
  const adminUsage = usage.adminRoutes(keyRing, authOptions.adminToken);
  const app = createHttpApp({
    sessions,
    auth,
    sse,
    sseAccess: createSseAccess({ auth, sessions, limits, keyConnections }),
    authRoutes: createAuthRoutes({ auth }),
    logger,
    maxBodyBytes: options.maxBodyBytes,
    routers: [
      { path: '/api', router: status },
      { path: '/api', router: usage.routes(auth) },
      { path: '/v1', router: openAi.router },
      { path: '/', router: createWebPages() },
      ...(admin ? [{ path: '/', router: admin }] : []),
      ...(adminUsage ? [{ path: '/', router: adminUsage }] : []),
      ...(inspector ? [{ path: '/', router: inspector.router }] : []),
      { path: '/', router: ops },
    ],
    onClientError: (code) => metrics?.clientError('http', code),
  });
  const http = createChatHttpServer({ app, openAi, ws, logger, trustProxy: options.trustProxy ?? '', shuttingDown: () => shuttingDown });

  let closing: Promise<void> | undefined;
  const shutdown = (deadlineMs: number): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      await drainAndClose({ retention, access, http, ws, sse, registry, logger, usage, cluster, inspector, inspection, metrics, admission, models, health, store, bus }, deadlineMs);
    })();
    return closing;
  };

  return {
    http,
    registry,
    sessions: routed,
    bus,
    admission,
    keys: keyRing,
    breaker,
    models: models.catalog,
    inspection,
    edge: () => ({ slots: admission.connections, ws: ws.connectionCount, wsTracked: ws.attachedCount, sse: sse.streamCount, bufferedBytes: budget.heldBytes }),
    get shuttingDown() {
      return shuttingDown;
    },
    async listen(port = 8080, host = '0.0.0.0') {
      if (cluster && !clustered) {
        clustered = await cluster.attach({
          registry,
          store,
          ids: options.ids ?? randomIds,
          describe: () => ({ sessions: registry.activeCount, connections: ws.connectionCount + sse.streamCount, pid: process.pid }),
          ...(options.maxSessions === 0 ? {} : { maxSessions: options.maxSessions ?? 100_000 }),
        });
      }
      return listen(http, port, host);
    },
    close() {
      // Already draining: stop waiting, interrupt what is still in flight.
      if (closing) void registry.close();
      return shutdown(0);
    },
    shutdown(deadlineMs = options.shutdownDeadlineMs ?? 10_000) {
      return shutdown(deadlineMs);
    },
  };
}
