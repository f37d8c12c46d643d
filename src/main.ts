import { randomBytes } from 'node:crypto';
import cluster from 'node:cluster';
import { constants as osConstants, hostname } from 'node:os';
import { openClusterNode, StoreMismatchError } from './cluster/clusterNode.ts';
import type { ClusterNode } from './cluster/clusterNode.ts';
import { storeIdentity } from './cluster/storeIdentity.ts';
import { announceListening, runWorkers } from './cluster/workers.ts';
import { ConfigError, helpText, loadConfig } from './config.ts';
import { redactedRedisUrl } from './infra/redisConnection.ts';
import { systemClock } from './infra/systemClock.ts';
import { openStore } from './infra/openStore.ts';
import { createPinoLogger } from './infra/pinoLogger.ts';
import { connectStately } from './infra/statelyInspector.ts';
import { createChatServer } from './server.ts';

/** After the shutdown deadline, what is left (closing sockets, flushing the store) gets this long; with the exit itself, within 1 s. */
const SHUTDOWN_BACKSTOP_MS = 800;

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`llm-chat: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (parsed.help) {
    process.stdout.write(helpText());
    return;
  }
  const { config } = parsed;
  const { inspector, adminToken: configuredToken, inspectRedact, inspectStately, logFormat, redisUrl, workers, leaseMs, nodeId: configuredNodeId, ...settings } = config;
  const logger = createPinoLogger({ level: config.logLevel, format: logFormat });
  if (workers !== 1 && cluster.isPrimary) {
    // One token for every worker: the inspector may be served by any of them.
    const sharedToken = inspector ? configuredToken || randomBytes(24).toString('base64url') : '';
    if (inspector && !configuredToken) process.env['ADMIN_TOKEN'] = sharedToken;
    runWorkers({
      count: workers,
      logger,
      onListening: (url, count) => {
        logger.info({ url, workers: count, redis: redactedRedisUrl(redisUrl) }, 'llm-chat listening');
        if (inspector && !configuredToken) {
          const port = new URL(url).port;
          logger.info({ inspector: `http://localhost:${port}/inspector#token=${sharedToken}` }, 'inspector ready (admin token generated for this run)');
        }
      },
    });
    return;
  }
  // The inspector is never served without a token: one is made when none is configured.
  const adminToken = inspector ? configuredToken || randomBytes(24).toString('base64url') : undefined;
  const stately = inspectStately ? await connectStately(inspectStately, logger) : undefined;
  const { store, kind, where } = await openStore(config);
  let clusterNode: ClusterNode | undefined;
  if (redisUrl !== '') {
    const nodeId = configuredNodeId || `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    try {
      clusterNode = await openClusterNode({
        redisUrl,
        nodeId,
        leaseMs,
        clock: systemClock,
        logger,
        replayLogSize: config.replayLogSize,
        logTtlMs: config.sessionTtlMs,
        storeIdentity: storeIdentity(kind, where, nodeId, config.databaseUrl),
      });
    } catch (error) {
      await store.close().catch(() => {});
      if (error instanceof StoreMismatchError) {
        process.stderr.write(`llm-chat: ${error.message}\n`);
        process.exit(2);
      }
      throw error;
    }
    logger.info({ node: nodeId, redis: redactedRedisUrl(redisUrl), leaseMs }, 'joined the cluster');
  }
  const server = createChatServer({
    ...settings,
    ...(clusterNode ? { cluster: clusterNode } : {}),
    store,
    logger,
    inspector: adminToken ? { adminToken, redact: inspectRedact } : undefined,
    inspect: stately?.inspect,
  });
  const address = await server.listen(config.port, config.host);
  const model = config.llmProvider === 'openai' ? { provider: 'openai', model: config.llmModel, baseUrl: config.llmBaseUrl } : { provider: 'simulated' };
  if (cluster.isWorker) {
    logger.info({ url: address.url, ...model, store: kind, storeAt: where, node: clusterNode?.nodeId }, 'worker listening');
    announceListening(address.url);
  } else logger.info({ url: address.url, ...model, store: kind, storeAt: where, ...(clusterNode ? { node: clusterNode.nodeId } : {}) }, 'llm-chat listening');

  if (adminToken) {
    // 0.0.0.0 and :: are not addresses a browser can open.
    const base = /^(0\.0\.0\.0|::)$/.test(address.host) ? `http://localhost:${address.port}` : address.url;
    if (configuredToken) logger.info({ inspector: `${base}/inspector` }, 'inspector ready (admin token from configuration)');
    else {
      const link = `${base}/inspector#token=${adminToken}`;
      logger.info({ inspector: link }, 'inspector ready (admin token generated for this run)');
      if (!['debug', 'info'].includes(config.logLevel)) process.stderr.write(`llm-chat: inspector at ${link}\n`);
    }
  }

  // A bug must cost one request or one session, never the node.
  process.on('uncaughtException', (error) => logger.error({ err: String(error), stack: error.stack }, 'uncaught exception'));
  process.on('unhandledRejection', (reason) => logger.error({ err: String(reason) }, 'unhandled rejection'));

  let shuttingDown = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      // A second signal: exit now, as a crash would. Acknowledged messages are
      // already in the store; the reply in flight comes back `interrupted`.
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(128 + (osConstants.signals[signal] ?? 0));
    }
    shuttingDown = true;
    const deadlineMs = config.shutdownDeadlineMs;
    logger.info({ signal, deadlineMs }, 'shutting down: letting replies in flight finish');
    // Whatever peers or the store do, the process is gone within the deadline + 1 s.
    const backstop = setTimeout(() => {
      logger.error({ deadlineMs }, 'shutdown overran its deadline: exiting now');
      process.exit(1);
    }, deadlineMs + SHUTDOWN_BACKSTOP_MS);
    backstop.unref();
    server.shutdown(deadlineMs).then(
      async () => {
        await stately?.stop();
        logger.info({}, 'shut down');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: String(error) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`llm-chat: failed to start: ${String(error)}\n`);
  process.exit(1);
});
