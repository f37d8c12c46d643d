import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { SessionStore } from '../../src/domain/ports.ts';
import { openPostgresStore } from '../../src/infra/postgresStore.ts';
import { startFaultProxy } from './faultProxy.ts';
import type { FaultProxy } from './faultProxy.ts';

/** The local test server (trust auth); override with LLM_CHAT_TEST_DATABASE_URL. */
export const TEST_DATABASE_URL = process.env['LLM_CHAT_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

const required = process.env['LLM_CHAT_REQUIRE_SERVICES'] === '1';

/**
 * Whether PostgreSQL tests can run. When the server is unreachable they are
 * skipped with a message, unless LLM_CHAT_REQUIRE_SERVICES=1 (CI), where the
 * suite fails instead.
 */
export async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (error) {
    if (required) throw new Error(`PostgreSQL is required (LLM_CHAT_REQUIRE_SERVICES=1) but unreachable at ${TEST_DATABASE_URL}: ${String(error)}`);
    console.warn(`[skip] PostgreSQL tests skipped: no server at ${TEST_DATABASE_URL} (${String(error)}). Set LLM_CHAT_REQUIRE_SERVICES=1 to make this a failure.`);
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A schema name unique to this run, for one test file's tables. */
export function uniqueSchema(prefix = 'llm_chat_test'): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Drops the schemas a test run created. */
export async function dropSchemas(schemas: readonly string[]): Promise<void> {
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * A PostgreSQL store in a throw-away schema (named from `prefix`), reached
 * through a TCP fault proxy of its own. The caller closes the proxy and
 * drops the schema.
 */
export async function storeBehindProxy(prefix: string, timeoutMs: number): Promise<{ proxy: FaultProxy; store: SessionStore; schema: string }> {
  const target = new URL(TEST_DATABASE_URL);
  const proxy = await startFaultProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const schema = uniqueSchema(prefix);
  const store = await openPostgresStore({ connectionString: proxy.through(TEST_DATABASE_URL), schema, timeoutMs });
  return { proxy, store, schema };
}
