import type { Server } from 'node:http';
import type { Access } from './access.ts';
import type { InspectionHub } from './actors/inspectionHub.ts';
import type { RetentionSweeper } from './actors/retentionSweeper.ts';
import type { SessionRegistry } from './actors/sessionRegistry.ts';
import type { StoreHealth } from './actors/storeHealth.ts';
import type { ClusterNode } from './cluster/clusterNode.ts';
import type { EventBus, Logger } from './domain/ports.ts';
import type { ChatMetrics } from './infra/prometheusMetrics.ts';
import type { TrackedStore } from './infra/trackedStore.ts';
import type { Models } from './model.ts';
import type { Admission } from './transport/admission.ts';
import type { InspectorRoutes } from './transport/inspectorRoutes.ts';
import type { SseStreams } from './transport/sseRoute.ts';
import type { WsGateway } from './transport/wsGateway.ts';
import type { UsageWiring } from './usage.ts';

/** At shutdown, how long WebSocket peers get to answer the close frame (the process exits within the deadline + 1 s). */
const SHUTDOWN_CLOSE_GRACE_MS = 400;

/** What `createChatServer` started and its shutdown stops. */
export interface ServerParts {
  retention: RetentionSweeper | undefined;
  access: Access;
  http: Server;
  ws: WsGateway;
  sse: SseStreams;
  registry: SessionRegistry;
  logger: Logger;
  usage: UsageWiring;
  cluster: ClusterNode | undefined;
  inspector: InspectorRoutes | undefined;
  inspection: InspectionHub | undefined;
  metrics: ChatMetrics | undefined;
  admission: Admission;
  models: Models;
  health: StoreHealth;
  store: TrackedStore;
  bus: EventBus;
}

/** The shutdown sequence, in its order: refuse, tell clients, drain, flush, release, close. Run once, after `shuttingDown` is set. */
export async function drainAndClose(parts: ServerParts, deadlineMs: number): Promise<void> {
  const { retention, access, http, ws, sse, registry, logger, usage, cluster, inspector, inspection, metrics, admission, models, health, store, bus } = parts;
  retention?.stop();
  access.close();
  const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
  http.closeIdleConnections();
  const notice = JSON.stringify({ type: 'shutdown', deadlineMs });
  ws.broadcast(notice);
  sse.broadcast(`event: server.shutdown\ndata: ${notice}\n\n`);
  const drained = await registry.drain(deadlineMs); // each session's watchers get `stopped`
  if (deadlineMs > 0) logger.info({ ...drained }, 'sessions drained');
  await registry.close(); // flushes the store writer (bounded wait)
  await usage.close();
  // Leases go only now: the last writes carried their tokens, and the next owner loads after them.
  await cluster?.close();
  // A peer that never answers the close handshake must not hold the exit (ws alone waits 30 s).
  const closingSockets = ws.close({ graceMs: SHUTDOWN_CLOSE_GRACE_MS });
  sse.close();
  inspector?.close();
  inspection?.close();
  http.closeAllConnections();
  await closingSockets;
  await stopped;
  metrics?.close();
  admission.close();
  models.stop();
  health.close();
  await store.settled();
  await bus.close();
  await store.close();
}
