import { afterEach, describe, expect, it } from 'vitest';
import { openClusterNode } from '../../src/cluster/clusterNode.ts';
import type { Logger } from '../../src/domain/ports.ts';
import { checkRedisServer, connectRedis, openRedis, UnsupportedRedisError } from '../../src/infra/redisConnection.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { systemClock } from '../../src/infra/systemClock.ts';
import { startFakeRedis } from '../support/fakeRedis.ts';
import type { FakeRedis } from '../support/fakeRedis.ts';

const fakes: FakeRedis[] = [];
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  for (const fake of fakes.splice(0)) await fake.close();
});

/** What a node's start-up check says of a server answering INFO so, and what it logged as warnings. */
async function check(info: string | { error: string }): Promise<{ outcome: unknown; warnings: string[] }> {
  const fake = await startFakeRedis(info);
  fakes.push(fake);
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (_fields, message) => void warnings.push(String(message)) };
  const redis = openRedis({ url: fake.url, logger: silentLogger, name: 'llm-chat:test:commands' });
  closers.push(() => redis.disconnect());
  await connectRedis(redis, 2000);
  const outcome = await checkRedisServer(redis, logger).then(
    () => 'accepted',
    (error: unknown) => error,
  );
  return { outcome, warnings };
}

describe('the start-up check of the Redis server', () => {
  it('refuses a Redis older than 7, naming its version', async () => {
    const { outcome } = await check('# Server\r\nredis_version:6.2.14\r\nloading:0\r\n');
    expect(outcome).toBeInstanceOf(UnsupportedRedisError);
    expect(String((outcome as Error).message)).toMatch(/^Redis 6\.2\.14 is too old: llm-chat needs Redis 7\.0 or later/);
  });

  it('accepts 7 and later (Valkey says redis_version too), warning of a policy that evicts keys', async () => {
    expect(await check('# Server\r\nredis_version:7.2.4\r\nvalkey_version:8.0.1\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n')).toEqual({ outcome: 'accepted', warnings: [] });
    const evicting = await check('# Server\r\nredis_version:7.0.0\r\n# Memory\r\nmaxmemory_policy:allkeys-lru\r\n');
    expect(evicting.outcome).toBe('accepted');
    expect(evicting.warnings).toEqual([expect.stringMatching(/maxmemory-policy is not noeviction/)]);
  });

  it('goes on, with a warning, when the server forbids INFO (NOPERM), since nothing can be checked', async () => {
    const { outcome, warnings } = await check({ error: "NOPERM this user has no permissions to run the 'info' command" });
    expect(outcome).toBe('accepted');
    expect(warnings).toEqual([expect.stringMatching(/did not answer INFO; its version is not checked/)]);
  });
});

describe('a node whose start-up fails after Redis answered', () => {
  /** Starts a node against `fake`; resolves with why it refused, once every connection it opened is closed. */
  async function refusal(fake: FakeRedis): Promise<unknown> {
    const outcome = await openClusterNode({
      redisUrl: fake.url,
      nodeId: 'node-a',
      leaseMs: 2000,
      clock: systemClock,
      logger: silentLogger,
      replayLogSize: 100,
      logTtlMs: 60_000,
      connectTimeoutMs: 2000,
      storeIdentity: 'sqlite:test',
    }).then(
      async (node) => {
        await node.close();
        return 'started';
      },
      (error: unknown) => error,
    );
    const deadline = Date.now() + 2000;
    while (fake.connections > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return outcome;
  }

  it('closes its connections when the server is too old', async () => {
    const fake = await startFakeRedis('# Server\r\nredis_version:6.2.14\r\nloading:0\r\n');
    fakes.push(fake);
    expect(await refusal(fake)).toBeInstanceOf(UnsupportedRedisError);
    expect(fake.connections).toBe(0);
  });

  it('closes its connections when the server stops answering before the store is registered', async () => {
    const fake = await startFakeRedis('# Server\r\nredis_version:7.2.4\r\nloading:0\r\n', { unanswered: ['EVALSHA', 'EVAL'] });
    fakes.push(fake);
    const outcome = await refusal(fake);
    // The registration's script went out and was never answered: the command timed out.
    expect(String(outcome)).toMatch(/timed out/);
    expect(fake.commands.filter((name) => name === 'EVAL' || name === 'EVALSHA')).not.toHaveLength(0);
    expect(fake.connections).toBe(0);
  });
});
