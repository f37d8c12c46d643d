import pg from 'pg';
import type { Pool, PoolClient } from 'pg';
import type { ConversationRecord } from '../domain/conversationRecord.ts';
import type { SessionId } from '../domain/ids.ts';
import type { MessagePageQuery, PageQuery, SessionStore, SessionUpdate } from '../domain/ports.ts';
import { decodeMessageCursor, decodeSessionCursor, encodeSessionCursor, messagePage } from './pageCursor.ts';
import { chunkPlan } from './sessionUpdates.ts';
import { POSTGRES_MIGRATIONS } from './sql/postgresMigrations.ts';
import { chunksOfRows, messageColumns, newerSchemaError, toMessage, toRecord, toSummary } from './sql/rows.ts';
import type { ChunkLogRow, MessageRow, Migration, SessionRow } from './sql/rows.ts';
import { guarded } from './storeErrors.ts';
import { createWriteBatcher } from './writeBatcher.ts';

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/database` */
  connectionString: string;
  /** Keep the tables in this schema (created if missing); default the server's search_path. */
  schema?: string;
  /** Pool size (default 4). */
  maxConnections?: number;
  /** Migrate only up to this version (tests of upgrades); default all. */
  migrateTo?: number;
  /** A query (or getting a connection) that takes longer fails as store_unavailable (default 10 s). */
  timeoutMs?: number;
}

/** First key of the two-key advisory lock that serialises migrations across nodes. */
const MIGRATION_LOCK = 0x11c4a7;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
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
    const known = migrations[migrations.length - 1]?.version ?? 0;
    const newest = Math.max(0, ...applied);
    if (newest > known) throw newerSchemaError(newest, known);
    for (const migration of migrations) {
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
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pool = new pg.Pool({
    connectionString: options.connectionString,
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

const SESSION_COLUMNS = `s.*, (SELECT count(*) FROM messages m WHERE m.session_id = s.id) AS message_count`;

/**
 * PostgreSQL, for several nodes sharing one database. Writes are
 * group-committed: a batch of updates from every session becomes one
 * transaction with one statement per table (arrays through `unnest`).
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<SessionStore> {
  const pool = createPostgresPool(options);
  try {
    await migratePostgres(pool, options.schema, POSTGRES_MIGRATIONS, options.migrateTo);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }

  const commit = (all: readonly SessionUpdate[]) =>
    inTransaction(pool, async (client) => {
      // A fenced update applies only while no newer token has claimed its session (and raises the stored
      // token); the row lock taken here orders it against a concurrent claim.
      const touched = await client.query<{ id: string }>(
        `UPDATE sessions AS s SET last_seq = GREATEST(s.last_seq, u.last_seq),
           last_active_at = GREATEST(s.last_active_at, u.last_active_at), stopped = u.stopped,
           fence = GREATEST(s.fence, COALESCE(u.fence, 0))
         FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::boolean[], $5::bigint[]) AS u (id, last_seq, last_active_at, stopped, fence)
         WHERE s.id = u.id AND s.fence <= COALESCE(u.fence, s.fence)
         RETURNING s.id`,
        [all.map((u) => u.sessionId), all.map((u) => u.lastSeq), all.map((u) => u.lastActiveAt), all.map((u) => u.stopped), all.map((u) => u.fence ?? null)],
      );
      const applied = new Set(touched.rows.map((row) => row.id));
      const fenced = new Set<SessionId>();
      const refused = all.filter((u) => !applied.has(u.sessionId) && u.fence !== undefined).map((u) => u.sessionId);
      if (refused.length > 0) {
        // Not applied: deleted meanwhile (nothing to keep) or claimed by a newer owner (refused).
        const { rows } = await client.query<{ id: string }>('SELECT id FROM sessions WHERE id = ANY($1::text[])', [refused]);
        for (const row of rows) fenced.add(row.id);
      }
      const updates = all.filter((u) => !fenced.has(u.sessionId));
      const rows = updates.flatMap((update) => update.messages.map((message) => messageColumns(update.sessionId, message)));
      if (rows.length > 0) {
        await client.query(
          `INSERT INTO messages (session_id, id, role, content, status, reply_to, error_code, input_tokens, output_tokens, created_at, updated_at)
           SELECT u.session_id, u.id, u.role, u.content, u.status, u.reply_to, u.error_code, u.input_tokens, u.output_tokens, u.created_at, u.updated_at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::int[], $10::bigint[], $11::bigint[])
             WITH ORDINALITY AS u (session_id, id, role, content, status, reply_to, error_code, input_tokens, output_tokens, created_at, updated_at, ord)
           WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = u.session_id)
           ORDER BY u.ord
           ON CONFLICT (session_id, id) DO UPDATE SET content = EXCLUDED.content, status = EXCLUDED.status,
             error_code = EXCLUDED.error_code, input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
             updated_at = EXCLUDED.updated_at`,
          [
            rows.map((r) => r.session_id),
            rows.map((r) => r.id),
            rows.map((r) => r.role),
            rows.map((r) => r.content),
            rows.map((r) => r.status),
            rows.map((r) => r.reply_to),
            rows.map((r) => r.error_code),
            rows.map((r) => r.input_tokens),
            rows.map((r) => r.output_tokens),
            rows.map((r) => r.created_at),
            rows.map((r) => r.updated_at),
          ],
        );
      }
      const plans = updates.map((update) => ({ sessionId: update.sessionId, plan: chunkPlan(update) }));
      const clear = `UPDATE messages m SET chunk_first_seq = NULL, chunk_next_seq = NULL, chunk_lengths = NULL
        FROM unnest($1::text[], $2::text[]) AS d (session_id, id) WHERE m.session_id = d.session_id AND m.chunk_lengths IS NOT NULL`;
      const drops = plans.flatMap(({ sessionId, plan }) => plan.dropMessages.map((messageId) => [sessionId, messageId] as const));
      if (drops.length > 0) {
        await client.query(`${clear} AND m.id = d.id`, [drops.map(([sessionId]) => sessionId), drops.map(([, messageId]) => messageId)]);
      }
      const keeps = plans.flatMap(({ sessionId, plan }) => (plan.keepOnly === undefined ? [] : [[sessionId, plan.keepOnly] as const]));
      if (keeps.length > 0) {
        await client.query(`${clear} AND m.id <> d.id`, [keeps.map(([sessionId]) => sessionId), keeps.map(([, messageId]) => messageId)]);
      }
      const appends = plans.flatMap(({ sessionId, plan }) => plan.appends.map((append) => ({ sessionId, ...append })));
      if (appends.length > 0) {
        await client.query(
          `UPDATE messages m SET chunk_first_seq = COALESCE(m.chunk_first_seq, u.first_seq),
             chunk_lengths = CASE WHEN m.chunk_lengths IS NULL THEN u.lengths ELSE m.chunk_lengths || ',' || u.lengths END,
             chunk_next_seq = u.next_seq
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) AS u (session_id, id, first_seq, next_seq, lengths)
           WHERE m.session_id = u.session_id AND m.id = u.id AND (m.chunk_next_seq IS NULL OR m.chunk_next_seq = u.first_seq)`,
          [
            appends.map((a) => a.sessionId),
            appends.map((a) => a.messageId),
            appends.map((a) => a.firstSeq),
            appends.map((a) => a.nextSeq),
            appends.map((a) => a.lengths.join(',')),
          ],
        );
      }
      return fenced;
    });
  const batcher = createWriteBatcher(commit);
  let closed = false;

  return {
    create: (record: ConversationRecord) =>
      guarded(() =>
        // A new session without messages is one statement: no transaction round trips (many nodes create
        // thousands a second).
        record.messages.length === 0
          ? pool
              .query(
                `INSERT INTO sessions (id, created_at, last_active_at, last_seq, stopped, title, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
                [
                  record.sessionId,
                  record.createdAt,
                  record.lastActiveAt,
                  record.lastSeq,
                  record.stopped,
                  record.title ?? null,
                  record.metadata === undefined ? null : JSON.stringify(record.metadata),
                ],
              )
              .then(() => undefined)
          : inTransaction(pool, async (client) => {
          await client.query(
            `INSERT INTO sessions (id, created_at, last_active_at, last_seq, stopped, title, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
            [
              record.sessionId,
              record.createdAt,
              record.lastActiveAt,
              record.lastSeq,
              record.stopped,
              record.title ?? null,
              record.metadata === undefined ? null : JSON.stringify(record.metadata),
            ],
          );
          for (const message of record.messages) {
            const row = messageColumns(record.sessionId, message);
            await client.query(
              `INSERT INTO messages (session_id, id, role, content, status, reply_to, error_code, input_tokens, output_tokens, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
              Object.values(row),
            );
          }
        }),
      ),

    load: (sessionId: SessionId) =>
      guarded(async () => {
        const session = await pool.query<SessionRow>('SELECT * FROM sessions WHERE id = $1', [sessionId]);
        const row = session.rows[0];
        if (!row) return undefined;
        const messages = await pool.query<MessageRow>('SELECT * FROM messages WHERE session_id = $1 ORDER BY position', [sessionId]);
        return toRecord(row, messages.rows);
      }),

    save: (update: SessionUpdate) => batcher.save(update),

    delete: (sessionId: SessionId) =>
      guarded(async () => ((await pool.query('DELETE FROM sessions WHERE id = $1', [sessionId])).rowCount ?? 0) > 0),

    claim: (sessionId: SessionId, token: number) =>
      guarded(async () => {
        const updated = await pool.query<{ fence: string }>('UPDATE sessions SET fence = $2 WHERE id = $1 AND fence < $2 RETURNING fence', [
          sessionId,
          token,
        ]);
        if (updated.rows[0]) return { claimed: true, fence: Number(updated.rows[0].fence) };
        const current = await pool.query<{ fence: string }>('SELECT fence FROM sessions WHERE id = $1', [sessionId]);
        return current.rows[0] ? { claimed: false, fence: Number(current.rows[0].fence) } : undefined;
      }),

    ping: () =>
      guarded(async () => {
        if (closed) throw new Error('store closed');
        await pool.query('SELECT 1');
        if (batcher.failing) throw new Error('the last write failed');
      }),

    async close() {
      if (closed) return;
      await batcher.drain();
      closed = true;
      await pool.end();
    },

    listSessions: (query: PageQuery) =>
      guarded(async () => {
        const after = query.cursor === undefined ? undefined : decodeSessionCursor(query.cursor);
        const { rows } =
          after === undefined
            ? await pool.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM sessions s ORDER BY s.created_at DESC, s.id DESC LIMIT $1`, [
                query.limit + 1,
              ])
            : await pool.query<SessionRow>(
                `SELECT ${SESSION_COLUMNS} FROM sessions s WHERE (s.created_at, s.id) < ($1::bigint, $2::text)
                 ORDER BY s.created_at DESC, s.id DESC LIMIT $3`,
                [after.createdAt, after.sessionId, query.limit + 1],
              );
        const page = rows.slice(0, query.limit).map(toSummary);
        const last = page[page.length - 1];
        return { sessions: page, nextCursor: rows.length > query.limit && last ? encodeSessionCursor(last) : null };
      }),

    listMessages: (sessionId: SessionId, query: MessagePageQuery) =>
      guarded(async () => {
        const exists = await pool.query('SELECT 1 FROM sessions WHERE id = $1', [sessionId]);
        if (exists.rowCount === 0) return undefined;
        const descending = query.order === 'desc';
        const from = query.cursor === undefined ? (descending ? Number.MAX_SAFE_INTEGER : 0) : decodeMessageCursor(query.cursor);
        const { rows } = await pool.query<MessageRow>(
          descending
            ? 'SELECT * FROM messages WHERE session_id = $1 AND position < $2 ORDER BY position DESC LIMIT $3'
            : 'SELECT * FROM messages WHERE session_id = $1 AND position > $2 ORDER BY position LIMIT $3',
          [sessionId, from, query.limit + 1],
        );
        return messagePage(rows, query.limit, toMessage);
      }),

    chunksAfter: (sessionId: SessionId, afterSeq: number) =>
      guarded(async () => {
        const { rows } = await pool.query<ChunkLogRow>(
          'SELECT id, content, chunk_first_seq, chunk_lengths FROM messages WHERE session_id = $1 AND chunk_lengths IS NOT NULL',
          [sessionId],
        );
        return chunksOfRows(sessionId, rows, afterSeq);
      }),
  };
}
