import { Redis } from 'ioredis';
import type { Logger } from '../domain/ports.ts';

export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` */
  url: string;
  logger: Logger;
  /** Shown in `CLIENT LIST` (e.g. `llm-chat:NODE:commands`). */
  name: string;
  /** A command without an answer within this long fails (default 1 s): a hung Redis must not hang lease renewal. */
  commandTimeoutMs?: number;
  /** Commands of one tick share a pipeline (default true); see openRedis. */
  autoPipelining?: boolean;
}

/**
 * One ioredis connection as llm-chat uses it:
 * - commands fail at once while disconnected (no offline queue): a caller
 *   gets `unavailable` now rather than a promise that waits for Redis;
 * - reconnection is retried forever, at most a second apart, so service
 *   resumes within about a second of Redis coming back, without a restart;
 * - commands issued in the same tick go out as one pipeline (auto-pipelining):
 *   a chunk's publish shares its round trip with everything else of that tick.
 */
export function openRedis(options: RedisConnectionOptions): Redis {
  const { logger } = options;
  const redis = new Redis(options.url, {
    connectionName: options.name,
    enableOfflineQueue: false,
    enableAutoPipelining: options.autoPipelining ?? true,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    lazyConnect: true,
  });
  let down = false;
  // Without an 'error' listener ioredis would print every failed reconnection attempt.
  redis.on('error', (error: Error) => {
    if (!down) logger.warn({ redis: options.name, err: String(error) }, 'redis connection failed; retrying');
    down = true;
  });
  redis.on('ready', () => {
    if (down) logger.info({ redis: options.name }, 'redis connection back');
    down = false;
  });
  redis.on('close', () => {
    if (!down) logger.warn({ redis: options.name }, 'redis connection lost; retrying');
    down = true;
  });
  return redis;
}

/** Connects, or rejects after `timeoutMs` (start-up: Redis must be there when a node starts); reconnection goes on by itself. */
export async function connectRedis(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  let timer: NodeJS.Timeout | undefined;
  let onReady: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      onReady = resolve;
      redis.once('ready', onReady);
      timer = setTimeout(() => reject(new Error(`no answer from Redis within ${timeoutMs} ms`)), timeoutMs);
      // The first attempt may fail; the retry strategy keeps trying until the timeout.
      if (redis.status === 'wait') redis.connect().catch(() => {});
    });
  } finally {
    clearTimeout(timer);
    if (onReady) redis.off('ready', onReady);
  }
}

/** The URL without its password, for logs. */
export function redactedRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://(unparsable URL)';
  }
}

/** The Redis a node found cannot keep the cluster's guarantees (too old): it must not join. */
export class UnsupportedRedisError extends Error {
  override name = 'UnsupportedRedisError';
}

/** The first Redis version with what the cluster uses (sharded pub/sub: SSUBSCRIBE, SPUBLISH). */
const MIN_REDIS_MAJOR = 7;

/** A field of an INFO answer (`name:value` lines), or undefined. */
const infoField = (info: string, name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();

/**
 * Start-up: reads what the server says it is (INFO) and refuses one older
 * than Redis 7 with a message naming its version; without this, the first
 * SSUBSCRIBE failed later as an unknown command, one session at a time.
 * Warns when the server may evict keys (a lease evicted drops a session's
 * owner): `maxmemory-policy` should be `noeviction`.
 */
export async function checkRedisServer(redis: Redis, logger: Logger): Promise<void> {
  let info: string;
  try {
    info = await redis.info();
  } catch (error) {
    // A server that renamed or forbade INFO (some managed ones): nothing to check against.
    logger.warn({ err: String(error) }, 'Redis did not answer INFO; its version is not checked (llm-chat needs 7.0 or later)');
    return;
  }
  const version = infoField(info, 'redis_version') ?? 'unknown';
  const major = Number.parseInt(version, 10);
  if (!(major >= MIN_REDIS_MAJOR)) {
    throw new UnsupportedRedisError(
      `Redis ${version} is too old: llm-chat needs Redis ${MIN_REDIS_MAJOR}.0 or later (sharded pub/sub, SSUBSCRIBE and SPUBLISH).`,
    );
  }
  const policy = infoField(info, 'maxmemory_policy');
  if (policy !== undefined && policy !== 'noeviction') {
    logger.warn({ maxmemoryPolicy: policy }, 'Redis may evict keys (maxmemory-policy is not noeviction): an evicted lease drops its session\'s owner');
  }
}
