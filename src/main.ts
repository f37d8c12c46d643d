import { ConfigError, helpText, loadConfig } from './config.ts';
import { createJsonLogger } from './infra/jsonLogger.ts';
import { openStore } from './infra/openStore.ts';
import { createChatServer } from './server.ts';

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
  const logger = createJsonLogger({ level: config.logLevel });
  const { store, kind, where } = await openStore(config);
  const server = createChatServer({ ...config, maxSessions: config.maxSessions === 0 ? undefined : config.maxSessions, logger, store });
  const address = await server.listen(config.port, config.host);
  logger.info({ url: address.url, provider: 'simulated', store: kind, storeAt: where }, 'llm-chat listening');

  // A bug must cost one request or one session, never the node.
  process.on('uncaughtException', (error) => logger.error({ err: String(error), stack: error.stack }, 'uncaught exception'));
  process.on('unhandledRejection', (reason) => logger.error({ err: String(reason) }, 'unhandled rejection'));

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: String(error) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`llm-chat: failed to start: ${String(error)}\n`);
  process.exit(1);
});
