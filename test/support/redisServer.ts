import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

const required = process.env['LLM_CHAT_REQUIRE_SERVICES'] === '1';

/**
 * Whether `redis-server` can be started here. Without the binary the tests
 * that need it are skipped with a message, unless LLM_CHAT_REQUIRE_SERVICES=1
 * (CI), where the suite fails instead.
 */
export function redisServerAvailable(): boolean {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0) return true;
  const why = probe.error ? String(probe.error) : probe.stderr;
  if (required) throw new Error(`redis-server is required (LLM_CHAT_REQUIRE_SERVICES=1) but cannot run: ${why}`);
  console.warn(`[skip] Redis tests skipped: redis-server cannot run (${why}). Set LLM_CHAT_REQUIRE_SERVICES=1 to make this a failure.`);
  return false;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server of the test's own (never the shared 6379): killed, restarted and flushed at will. */
export interface OwnRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILLs it (everything it held is gone: no persistence). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** A client for the test's own checks (closed by stop()). */
  client(): Redis;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<OwnRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const clients: Redis[] = [];

  const launch = async () => {
    const started = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    child = started;
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        await probe.connect();
        await probe.ping();
        break;
      } catch (error) {
        probe.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}: ${String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    probe.disconnect();
  };

  const kill = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGKILL');
    });
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: launch,
    client() {
      const client = new Redis({ port, host: '127.0.0.1' });
      client.on('error', () => {});
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.disconnect();
      await kill();
    },
  };
}
