import { createInspectionHub } from './actors/inspectionHub.ts';
import type { InspectionHub } from './actors/inspectionHub.ts';
import type { KeyRing } from './actors/keyRing.ts';
import type { SessionRegistry } from './actors/sessionRegistry.ts';
import type { ChatServerOptions } from './chatServerOptions.ts';
import type { ClusterNode } from './cluster/clusterNode.ts';
import type { Clock, EventBus, Logger } from './domain/ports.ts';
import type { BufferBudget } from './transport/bufferBudget.ts';
import { createInspectorRoutes } from './transport/inspectorRoutes.ts';
import type { InspectorRoutes } from './transport/inspectorRoutes.ts';

/** What the inspector is built from. */
export interface InspectorSources {
  registry: SessionRegistry;
  bus: EventBus;
  clock: Clock;
  logger: Logger;
  maxBufferedBytes: number | undefined;
  budget: BufferBudget;
  keyRing: KeyRing | undefined;
  cluster: ClusterNode | undefined;
}

/** The state-machine inspector: both parts absent when `inspectorOptions` is. */
export interface Inspector {
  inspection: InspectionHub | undefined;
  inspector: InspectorRoutes | undefined;
}

/** The inspection hub over every session's actors and the `/inspector` routes behind the admin token. */
export function createInspector(inspectorOptions: ChatServerOptions['inspector'], sources: InspectorSources): Inspector {
  const { registry, bus, clock, logger, maxBufferedBytes, budget, keyRing, cluster } = sources;
  const inspection = inspectorOptions
    ? createInspectionHub({
        registry,
        bus,
        clock,
        redact: inspectorOptions.redact,
        onObserverError: (error) => logger.error({ err: String(error) }, 'inspection observer failed'),
      })
    : undefined;
  const inspector =
    inspectorOptions && inspection
      ? createInspectorRoutes({
          registry,
          hub: inspection,
          logger,
          adminToken: inspectorOptions.adminToken,
          maxBufferedBytes,
          budget,
          ...(keyRing ? { keyNames: (ids: readonly string[]) => keyRing.names(ids) } : {}),
          ...(cluster ? { cluster: { nodeId: cluster.nodeId, nodes: () => cluster.nodes() } } : {}),
        })
      : undefined;
  return { inspection, inspector };
}
