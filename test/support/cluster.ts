import pg from 'pg';
import { startChildServer } from './childServer.ts';
import type { ChildServer } from './childServer.ts';
import { dropSchemas, postgresReachable, TEST_DATABASE_URL, uniqueSchema } from './postgres.ts';
import { redisServerAvailable, startRedis } from './redisServer.ts';
import type { OwnRedis } from './redisServer.ts';

/** Whether the many-node tests can run: redis-server and PostgreSQL (skipped with a message otherwise, unless required). */
export async function clusterServicesAvailable(): Promise<boolean> {
  return redisServerAvailable() && (await postgresReachable());
}

export interface ClusterOptions {
  leaseMs?: number;
  simChunks?: number;
  simIntervalMs?: number;
  flushIntervalMs?: number;
  /** More flags for every node. */
  args?: readonly string[];
}

/**
 * Server processes sharing one Redis of the test's own and one throw-away
 * PostgreSQL schema: the real thing, many nodes on loopback.
 */
export class TestCluster {
  readonly redis: OwnRedis;
  readonly schema: string;
  readonly databaseUrl: string;
  readonly nodes: ChildServer[] = [];
  readonly #options: ClusterOptions;

  private constructor(redis: OwnRedis, schema: string, options: ClusterOptions) {
    this.redis = redis;
    this.schema = schema;
    this.databaseUrl = `${TEST_DATABASE_URL}?options=-c%20search_path%3D${schema}`;
    this.#options = options;
  }

  static async start(nodes: number, options: ClusterOptions = {}): Promise<TestCluster> {
    const schema = uniqueSchema('llm_chat_cluster');
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query(`CREATE SCHEMA "${schema}"`);
    await client.end();
    const cluster = new TestCluster(await startRedis(), schema, options);
    // One first, so the schema is migrated once; then the rest together.
    await cluster.startNode();
    await Promise.all(Array.from({ length: nodes - 1 }, () => cluster.startNode()));
    return cluster;
  }

  /** One more node; `env` over the cluster's (a `REDIS_URL` through a fault proxy, say). */
  async startNode(extra: readonly string[] = [], env: Record<string, string> = {}): Promise<ChildServer> {
    const options = this.#options;
    const node = await startChildServer(
      [
        '--lease-ms', String(options.leaseMs ?? 1000),
        '--sim-chunks', String(options.simChunks ?? 5),
        '--sim-interval-ms', String(options.simIntervalMs ?? 50),
        '--flush-interval-ms', String(options.flushIntervalMs ?? 100),
        '--conn-rate-per-ip', '0',
        '--messages-per-minute', '0',
        '--log-level', 'info',
        ...(options.args ?? []),
        ...extra,
      ],
      { REDIS_URL: this.redis.url, DATABASE_URL: this.databaseUrl, STORE: 'postgres', WORKERS: '1', ...env },
    );
    this.nodes.push(node);
    return node;
  }

  /** A query on the cluster's schema. */
  async query<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    await client.connect();
    try {
      return (await client.query<T>(sql, values)).rows;
    } finally {
      await client.end();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        if (node.child.exitCode !== null || node.child.signalCode !== null) return;
        if (node.child.signalCode === null) node.child.kill('SIGCONT');
        await node.stop('SIGKILL');
      }),
    );
    await this.redis.stop();
    await dropSchemas([this.schema]);
  }
}

export const wsUrlOf = (node: ChildServer, query = '') => `${node.url.replace('http', 'ws')}/ws${query}`;
