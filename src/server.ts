import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createSessionRegistry } from './actors/sessionRegistry.ts';
import type { SessionRegistry } from './actors/sessionRegistry.ts';
import type { IdGenerator } from './domain/ids.ts';
import type { Clock, EventBus, Logger, ModelProvider, SessionStore } from './domain/ports.ts';
import { createInProcessBus } from './infra/inProcessBus.ts';
import { createJsonLogger } from './infra/jsonLogger.ts';
import { createMemoryStore } from './infra/memoryStore.ts';
import { randomIds } from './infra/randomIds.ts';
import { withStoredReplay } from './infra/storedReplayBus.ts';
import { createSimulatedProvider } from './infra/simulatedProvider.ts';
import { systemClock } from './infra/systemClock.ts';
import { createHttpApp } from './transport/httpApp.ts';
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
  maxSessions?: number;
  /** How often a streaming reply's text is written to the store (default 500 ms). */
  flushIntervalMs?: number;
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
  /** Starts listening; port 0 picks a free port. Resolves with the address. */
  listen(port?: number, host?: string): Promise<{ port: number; host: string; url: string }>;
  /** Stops sessions (clients are told), closes connections, the bus and the store. */
  close(): Promise<void>;
}

/** The composition root used by `main.ts` and by tests. */
export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createJsonLogger();
  const store = options.store ?? createMemoryStore();
  const bus = withStoredReplay(
    options.bus ??
      createInProcessBus({
        replayLogSize: options.replayLogSize ?? 1000,
        onListenerError: (error, event) => logger.error({ sessionId: event.sessionId, err: String(error) }, 'bus listener failed'),
      }),
    store,
    logger,
  );
  const provider =
    options.provider ?? createSimulatedProvider({ chunks: options.simChunks ?? 5, intervalMs: options.simIntervalMs ?? 400, clock });

  const registry = createSessionRegistry({
    bus,
    store,
    provider,
    clock,
    logger,
    ids: options.ids ?? randomIds,
    queueLimit: options.queueLimit ?? 8,
    sessionTtlMs: options.sessionTtlMs ?? 600_000,
    maxSessions: options.maxSessions,
    flushIntervalMs: options.flushIntervalMs,
    restartPolicy: {
      ...(options.restartIntensity !== undefined ? { intensity: options.restartIntensity } : {}),
      ...(options.restartPeriodMs !== undefined ? { periodMs: options.restartPeriodMs } : {}),
      ...(options.restartBackoffMs !== undefined ? { backoffBaseMs: options.restartBackoffMs } : {}),
    },
  });
  const sse = createSseStreams({ registry, bus, logger, heartbeatMs: options.heartbeatMs, maxBufferedBytes: options.maxBufferedBytes });
  const ws = createWsGateway({
    registry,
    bus,
    logger,
    maxFrameBytes: options.maxFrameBytes,
    maxBufferedBytes: options.maxBufferedBytes,
  });
  const app = createHttpApp({ registry, sse, logger, maxBodyBytes: options.maxBodyBytes });
  const http = createHttpServer(app);
  http.on('upgrade', (request, socket, head) => ws.handleUpgrade(request, socket, head));

  let closing: Promise<void> | undefined;

  return {
    http,
    registry,
    bus,
    listen(port = 8080, host = '0.0.0.0') {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, host, () => {
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
        await bus.close();
        await store.close();
      })();
      return closing;
    },
  };
}
