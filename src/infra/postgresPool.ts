import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import { POSTGRES_MIGRATIONS } from './sql/postgresMigrations.ts';
import { newerSchemaError } from './sql/rows.ts';
import type { Migration } from './sql/rows.ts';

/**
 * PostgreSQL's pool, transactions and migrations for the store: a connection
 * that failed or timed out is never handed out again, and migrations are
 * serialised across nodes by an advisory lock.
 */

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/database` */
  connectionString: string;
  /** Keep the tables in this schema (created if missing); default the server's search_path. */
  schema?: string;
  /** Pool size (default 4). */
  maxConnections?: number;
  /** Migrate only up to this version (tests of upgrades); default all. */
  migrateTo?: number;
  /** A query (or getting a connection) that takes longer fails as store_unavailable (default 5 s). */
  timeoutMs?: number;
}

/** First key of the two-key advisory lock that serialises migrations across nodes. */
const MIGRATION_LOCK = 0x11c4a7;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

// A connection lost while checked out emits 'error' on the client: the query in flight rejects anyway.
const ignore = () => {};

/** A connection that failed (or timed out, and may still be busy with the old query) is never handed out again. */
function releaseAfter(client: PoolClient, error: unknown): void {
  client.off('error', ignore);
  client.release(error instanceof Error ? error : new Error(String(error)));
}

export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  client.on('error', ignore);
  let result: T;
  try {
    await client.query('BEGIN');
    result = await work(client);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    releaseAfter(client, error);
    throw error;
  }
  client.off('error', ignore);
  client.release();
  return result;
}

/**
 * One transaction in one round trip: the pool's connections pipeline, so
 * BEGIN, every statement `work` issues (it must issue them all before it
 * awaits anything) and COMMIT go out together. A failing statement makes
 * PostgreSQL turn the COMMIT into a rollback; its error is what rejects.
 */
export async function inOneRoundTrip<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  client.on('error', ignore);
  const begin = client.query('BEGIN');
  const result = work(client);
  const commit = client.query('COMMIT');
  const [began, worked, committed] = await Promise.allSettled([begin, result, commit]);
  const failure = [began, worked, committed].find((outcome) => outcome.status === 'rejected');
  if (failure) {
    releaseAfter(client, failure.reason);
    throw failure.reason;
  }
  client.off('error', ignore);
  client.release();
  return (worked as PromiseFulfilledResult<T>).value;
}

/**
 * Applies the missing migrations in one transaction holding an advisory lock,
 * so nodes starting at once take turns: the first migrates, the others find
 * the work done. Returns the schema version reached.
 */
export async function migratePostgres(
  pool: Pool,
  schema: string | undefined,
  migrations: readonly Migration[] = POSTGRES_MIGRATIONS,
  upTo = Infinity,
): Promise<number> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATION_LOCK, schema ?? '']);
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
    );
    const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((row) => row.version));
    // Steps are numbered by the change that made them, so a database may have a later step and miss an earlier one: each missing step runs.
    const known = Math.max(0, ...migrations.map((migration) => migration.version));
    const newest = Math.max(0, ...applied);
    if (newest > known) throw newerSchemaError(newest, known);
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (migration.version > upTo || applied.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        Date.now(),
      ]);
      applied.add(migration.version);
    }
    return Math.max(0, ...applied);
  });
}

export function createPostgresPool(options: PostgresStoreOptions): Pool {
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new Error(`Invalid PostgreSQL schema name "${options.schema}" (lower-case letters, digits, _).`);
  }
  const timeoutMs = options.timeoutMs ?? 5_000;
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    // Queries go out without waiting for the previous answer: a commit is one round trip, not six.
    pipeline: true,
    max: options.maxConnections ?? 4,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    // A node paused mid-transaction (GC, SIGSTOP) must not hold row locks that the session's next owner needs.
    idle_in_transaction_session_timeout: Math.min(timeoutMs, 5000),
    ...(options.schema !== undefined ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // An idle connection dropped by the server must not take the process down; the next query reconnects.
  pool.on('error', () => {});
  return pool;
}

// The count and the first words of the first user message (in conversation order) ride on the order index (session_id, ord).
