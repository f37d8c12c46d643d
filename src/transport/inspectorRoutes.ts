import { Router } from 'express';
import type { Request, Response } from 'express';
import type { InspectionHub, WatchRecord } from '../actors/inspectionHub.ts';
import { machineCharts, summarise } from '../actors/sessionInsight.ts';
import type { SessionRegistry } from '../actors/sessionRegistry.ts';
import { ChatError } from '../domain/errors.ts';
import { isSessionId } from '../domain/ids.ts';
import type { Logger } from '../domain/ports.ts';
import { adminGuard } from './adminGuard.ts';
import type { BufferBudget, BufferedStream } from './bufferBudget.ts';
import { requestLogger } from './requestContext.ts';
import { sendPage } from './webPages.ts';

export interface InspectorRoutesOptions {
  registry: SessionRegistry;
  hub: InspectionHub;
  logger: Logger;
  /** Every data request must carry `Authorization: Bearer <adminToken>`. */
  adminToken: string;
  /** The names of API keys by id, so each session shows whose it is (absent: no names). */
  keyNames?: (ids: readonly string[]) => Promise<Map<string, string>>;
  /** How often the overview is pushed to a connected inspector (default 1 s). */
  overviewIntervalMs?: number;
  /** Sessions listed in an overview, most recently activated first (default 200). */
  overviewLimit?: number;
  /** An inspector stream whose unsent bytes pass this is ended (default 1 MiB). */
  maxBufferedBytes?: number;
  /** The node-wide budget of unsent bytes (shared with WebSocket, SSE and `/v1`): every stream reports to it. */
  budget: BufferBudget;
  /** Many nodes: this node's id (the owner of every session listed) and every node with its counts. */
  cluster?: { nodeId: string; nodes(): Promise<readonly Record<string, unknown>[]> };
}

export interface InspectorRoutes {
  router: Router;
  readonly streamCount: number;
  /** Ends every inspector stream. */
  close(): void;
}

/**
 * The operator's view under `/inspector`: the page itself (static, holds no
 * data), and behind the admin token the overview, the machine charts and a
 * live SSE stream (`/inspector/stream?sessionId=`).
 */
export function createInspectorRoutes(options: InspectorRoutesOptions): InspectorRoutes {
  const { registry, hub, logger } = options;
  const intervalMs = options.overviewIntervalMs ?? 1000;
  const limit = options.overviewLimit ?? 200;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  const open = new Set<() => void>();

  const authorise = adminGuard(options.adminToken);
  // Each session listed with the name of its key (null when it has none).
  const overview = async () => {
    const summary = summarise(registry.live(), limit);
    const owners = summary.sessions.flatMap((session) => (session.owner === null ? [] : [session.owner]));
    const names = owners.length > 0 && options.keyNames ? await options.keyNames(owners) : new Map<string, string>();
    const sessions = summary.sessions.map((session) => ({ ...session, keyName: session.owner === null ? null : (names.get(session.owner) ?? null) }));
    const cluster = options.cluster;
    if (!cluster) return { ...summary, sessions };
    // Many nodes: the sessions listed are this node's (it owns each); the others' counts come from their heartbeats.
    const nodes = await cluster.nodes().catch(() => []);
    return { ...summary, node: cluster.nodeId, sessions: sessions.map((session) => ({ ...session, node: cluster.nodeId })), cluster: { nodes } };
  };

  const router = Router();
  router.get('/inspector', sendPage('inspector.html'));
  router.get('/inspector/api/overview', authorise, async (_request: Request, response: Response) => {
    response.setHeader('Cache-Control', 'no-store');
    response.json(await overview());
  });
  router.get('/inspector/api/machines', authorise, (_request: Request, response: Response) => {
    response.json(machineCharts());
  });

  router.get('/inspector/stream', authorise, (request: Request, response: Response) => {
    const query = request.query['sessionId'];
    const sessionId = typeof query === 'string' && query !== '' ? query : undefined;
    if (sessionId !== undefined && !isSessionId(sessionId)) throw new ChatError('bad_request', 'Not a session id.');
    response.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    response.flushHeaders();

    let ended = false;
    const cutOff = (why: string) => {
      requestLogger(response, logger).warn({ buffered: response.writableLength }, why);
      end();
      response.destroy();
    };
    const stream: BufferedStream = {
      bufferedBytes: () => response.writableLength,
      shed: () => cutOff('closing slow inspector stream: node buffer budget exceeded'),
    };
    const send = (event: string, data: unknown) => {
      if (ended) return;
      response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (response.writableLength > maxBufferedBytes) cutOff('closing slow inspector stream');
      else options.budget.note(stream, response.writableLength);
    };
    const pushOverview = () => {
      overview().then(
        (data) => send('overview', data),
        (error: unknown) => requestLogger(response, logger).warn({ err: String(error) }, 'inspector overview failed'),
      );
    };
    const timer = setInterval(pushOverview, intervalMs);
    timer.unref();
    let unwatch: (() => void) | undefined;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      unwatch?.();
      options.budget.forget(stream);
      open.delete(end);
      response.end();
    };
    open.add(end);
    request.on('close', end);

    send('machines', machineCharts());
    pushOverview();
    if (sessionId !== undefined) {
      unwatch = hub.watch(sessionId, (record: WatchRecord) => send('inspect', record));
    }
  });

  return {
    router,
    get streamCount() {
      return open.size;
    },
    close() {
      for (const end of [...open]) end();
    },
  };
}
