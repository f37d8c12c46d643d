import { randomBytes } from 'node:crypto';
import cluster from 'node:cluster';
import { constants as osConstants, hostname } from 'node:os';
import { openClusterNode, StoreMismatchError } from './cluster/clusterNode.ts';
import type { ClusterNode } from './cluster/clusterNode.ts';
import { storeIdentity } from './cluster/storeIdentity.ts';
import { announceListening, onPrimaryShutdown, runWorkers } from './cluster/workers.ts';
import { redactedRedisUrl, UnsupportedRedisError } from './infra/redisConnection.ts';
import { createKeyRing } from './actors/keyRing.ts';
import { allowedOriginsOf, ConfigError, helpText, loadConfig } from './config.ts';
import type { Config } from './config.ts';
import { browsableBase, ensureFirstKey, isLoopback, printKey } from './keyCommands.ts';
import { openStore } from './infra/openStore.ts';
import { createPinoLogger } from './infra/pinoLogger.ts';
import { connectStately } from './infra/statelyInspector.ts';
import { silentLogger } from './infra/silentLogger.ts';
import { systemClock } from './infra/systemClock.ts';
import { createChatServer } from './server.ts';

/** After the shutdown deadline, what is left (closing sockets, flushing the store) gets this long; with the exit itself, within 1 s. */
const SHUTDOWN_BACKSTOP_MS = 800;

/** `--new-key NAME`: a key in the configured store, printed once; the server is not started. */
async function newKey(config: Config, name: string): Promise<void> {
  if (config.storeKind === 'memory') {
    process.stderr.write('llm-chat: --new-key needs a store that outlives this command (sqlite or postgres), not --store memory\n');
    process.exit(2);
  }
  const { store, where } = await openStore(config);
  try {
    const ring = createKeyRing({ store: store.keys!, clock: systemClock, logger: silentLogger });
    const { key, view } = await ring.create({ name });
    const base = isLoopback(config.host) || config.host === '0.0.0.0' || config.host === '::' ? `http://localhost:${config.port}` : `http://${config.host}:${config.port}`;
    printKey(process.stdout, key, view, base);
    process.stderr.write(`llm-chat: stored in ${where}\n`);
  } finally {
    await store.close();
  }
}

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
  if (parsed.newKey !== undefined) {
    await newKey(config, parsed.newKey);
    return;
  }
  const {
    inspector,
    adminToken: configuredToken,
    inspectRedact,
    inspectStately,
    logFormat,
    auth,
    allowedOrigins,
    keyMessagesPerMinute,
    keySessionsPerMinute,
    keyLiveSessions,
    keyConnections,
    keyTokensPerDay,
    redisUrl,
    workers,
    leaseMs,
    nodeId: configuredNodeId,
    ...settings
  } = config;
  const logger = createPinoLogger({ level: config.logLevel, format: logFormat });
  if (workers !== 1 && cluster.isPrimary) {
    // One admin token for every worker: the inspector and /admin/keys may be served by any of them.
    const sharedToken = (inspector || auth === 'keys') && !configuredToken ? randomBytes(24).toString('base64url') : '';
    if (sharedToken) process.env['ADMIN_TOKEN'] = sharedToken;
    runWorkers({
      count: workers,
      logger,
      onListening: (url, count) => {
        logger.info({ url, workers: count, redis: redactedRedisUrl(redisUrl), auth }, 'llm-chat listening');
        if (sharedToken && inspector) {
          logger.info({ inspector: `http://localhost:${new URL(url).port}/inspector#token=${sharedToken}` }, 'inspector ready (admin token generated for this run)');
        }
      },
    });
    return;
  }
  // The inspector and the key admin API are never served without a token: one is made when none is configured.
  const adminToken = inspector || auth === 'keys' ? configuredToken || randomBytes(24).toString('base64url') : undefined;
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
        replayLogBytes: config.replayLogBytes,
        logTtlMs: config.sessionTtlMs,
        storeIdentity: storeIdentity(kind, where, nodeId, config.databaseUrl),
      });
    } catch (error) {
      await store.close().catch(() => {});
      if (error instanceof StoreMismatchError || error instanceof UnsupportedRedisError) {
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
    auth: {
      mode: auth,
      ...(adminToken ? { adminToken } : {}),
      allowedOrigins: allowedOriginsOf(config),
      keyLimits: {
        messagesPerMinute: keyMessagesPerMinute,
        sessionsPerMinute: keySessionsPerMinute,
        liveSessions: keyLiveSessions,
        connections: keyConnections,
        tokensPerDay: keyTokensPerDay,
      },
    },
    inspector: inspector && adminToken ? { adminToken, redact: inspectRedact } : undefined,
    inspect: stately?.inspect,
  });
  const address = await server.listen(config.port, config.host);
  const base = browsableBase(address);
  if (server.keys) await ensureFirstKey(server.keys, logger, base);
  if (auth === 'none' && !isLoopback(address.host)) {
    logger.warn({ host: address.host }, '--auth none on an address other hosts can reach: anyone who reaches this port can read and use every session and spend the model');
  }
  const model = config.models
    ? { models: config.models.models.map((spec) => spec.name), defaultModel: config.models.defaultModel }
    : config.llmProvider === 'openai'
      ? { provider: 'openai', model: config.llmModel, baseUrl: config.llmBaseUrl }
      : { provider: 'simulated' };
  if (cluster.isWorker) {
    logger.info({ url: address.url, ...model, store: kind, storeAt: where, auth, node: clusterNode?.nodeId }, 'worker listening');
    announceListening(address.url);
  } else logger.info({ url: address.url, ...model, store: kind, storeAt: where, auth, ...(clusterNode ? { node: clusterNode.nodeId } : {}) }, 'llm-chat listening');

  if (adminToken) {
    if (configuredToken) logger.info({ ...(inspector ? { inspector: `${base}/inspector` } : {}), admin: `${base}/admin/keys` }, 'admin token from configuration');
    else if (inspector) {
      const link = `${base}/inspector#token=${adminToken}`;
      logger.info({ inspector: link, admin: `${base}/admin/keys` }, 'inspector ready (admin token generated for this run; it also guards /admin/keys)');
      if (!['debug', 'info'].includes(config.logLevel)) process.stderr.write(`llm-chat: inspector at ${link}\n`);
    } else {
      // No inspector link to carry it: printed like a key, never logged.
      process.stdout.write(`llm-chat: admin token for /admin/keys (generated for this run): ${adminToken}\n`);
    }
  }

  // A bug must cost one request or one session, never the node.
  process.on('uncaughtException', (error) => logger.error({ err: String(error), stack: error.stack }, 'uncaught exception'));
  process.on('unhandledRejection', (reason) => logger.error({ err: String(reason) }, 'unhandled rejection'));

  let shuttingDown = false;
  // A second signal: exit now, as a crash would. Acknowledged messages are
  // already in the store; the reply in flight comes back `interrupted`.
  const exitNow = (signal: NodeJS.Signals) => {
    logger.warn({ signal }, 'second signal: exiting at once');
    process.exit(128 + (osConstants.signals[signal] ?? 0));
  };
  const shutdown = (signal: NodeJS.Signals) => {
    if (shuttingDown) return;
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
  // Only signals count towards "second": with --workers, Ctrl-C signals the
  // whole process group and the primary asks too, in either order.
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) exitNow(signal);
    signalled = true;
    shutdown(signal);
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  if (cluster.isWorker) onPrimaryShutdown((signal, now) => (now ? exitNow(signal) : shutdown(signal)));
}

main().catch((error: unknown) => {
  process.stderr.write(`llm-chat: failed to start: ${String(error)}\n`);
  process.exit(1);
});
