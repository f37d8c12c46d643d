import type { ConversationRecord } from '../domain/conversationRecord.ts';
import type { SessionId } from '../domain/ids.ts';
import type { LoadWindow, MessagePageQuery, SessionPageQuery, SessionStore, SessionUpdate } from '../domain/ports.ts';
import { decodeMessageCursor, decodeSessionCursor, encodeSessionCursor, messagePage } from './pageCursor.ts';
import { commitUpdates } from './sql/postgresCommit.ts';
import { POSTGRES_MIGRATIONS } from './sql/postgresMigrations.ts';
import { chunksOfRows, PREVIEW_CHARS, toMessage, toRecord, toSummary, windowRows } from './sql/rows.ts';
import type { ChunkLogRow, MessageRow, SessionRow } from './sql/rows.ts';
import { createPostgresKeyStore } from './postgresKeyStore.ts';
import { guarded } from './storeErrors.ts';
import { createPostgresUsageStore } from './postgresUsageStore.ts';
import { createWriteBatcher } from './writeBatcher.ts';
import { createGroupInsert } from './groupInsert.ts';
import { insertRecords } from './sql/postgresCreate.ts';
import { createPostgresPool, inOneRoundTrip, migratePostgres } from './postgresPool.ts';
import type { PostgresStoreOptions } from './postgresPool.ts';

export { createPostgresPool, migratePostgres } from './postgresPool.ts';
export type { PostgresStoreOptions } from './postgresPool.ts';

const SESSION_COLUMNS = `s.*, (SELECT count(*) FROM messages m WHERE m.session_id = s.id) AS message_count,
  (SELECT substr(m.content, 1, ${PREVIEW_CHARS}) FROM messages m WHERE m.session_id = s.id AND m.role = 'user' ORDER BY m.ord LIMIT 1) AS preview`;

// A session's few unfinished or chunk-logged messages, through their partial
// indexes, not a walk of its history (test/store/postgresPlans.test.ts).
export const PG_UNFINISHED_SQL = "SELECT * FROM messages WHERE session_id = $1 AND status IN ('queued', 'streaming') AND ord < $2";
export const PG_CHUNK_LOGS_SQL = 'SELECT id, content, chunk_first_seq, chunk_lengths FROM messages WHERE session_id = $1 AND chunk_lengths IS NOT NULL';

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

  // Batches of disjoint sessions commit side by side, leaving one connection for reads.
  const batcher = createWriteBatcher(
    (updates) => inOneRoundTrip(pool, (client) => commitUpdates(client, updates)),
    Math.max(1, (options.maxConnections ?? 4) - 1),
  );
  // New sessions group-commit too (a transaction apiece was a fifth of a cluster node's time per
  // WebSocket handshake): up to two batches at once, so reads keep a connection.
  const creates = createGroupInsert<ConversationRecord>(
    (records) => insertRecords(pool, records),
    Math.max(1, Math.min(2, (options.maxConnections ?? 4) - 2)),
  );
  let closed = false;

  return {
    keys: createPostgresKeyStore(pool),

    usage: createPostgresUsageStore(pool),
    create: (record: ConversationRecord) => creates.create(record),

    load: (sessionId: SessionId, window?: LoadWindow) =>
      guarded(async () => {
        const session = await pool.query<SessionRow>('SELECT * FROM sessions WHERE id = $1', [sessionId]);
        const row = session.rows[0];
        if (!row) return undefined;
        const messages =
          window === undefined
            ? (await pool.query<MessageRow>('SELECT * FROM messages WHERE session_id = $1 ORDER BY ord', [sessionId])).rows
            : await windowRows(
                window,
                async (before, limit) =>
                  (
                    await pool.query<MessageRow>('SELECT * FROM messages WHERE session_id = $1 AND ord < $2 ORDER BY ord DESC LIMIT $3', [
                      sessionId,
                      before,
                      limit,
                    ])
                  ).rows,
                async (before) =>
                  (
                    await pool.query<MessageRow>(
                      PG_UNFINISHED_SQL,
                      [sessionId, before],
                    )
                  ).rows,
              );
        return toRecord(row, messages);
      }),

    save: (update: SessionUpdate) => batcher.save(update),

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

    delete: (sessionId: SessionId, owner?: string) =>
      guarded(async () => {
        const deleted =
          owner === undefined
            ? await pool.query('DELETE FROM sessions WHERE id = $1', [sessionId])
            : await pool.query('DELETE FROM sessions WHERE id = $1 AND owner_key_id = $2', [sessionId, owner]);
        return (deleted.rowCount ?? 0) > 0;
      }),

    ping: () =>
      guarded(async () => {
        if (closed) throw new Error('store closed');
        await pool.query('SELECT 1');
      }),

    async close() {
      if (closed) return;
      await Promise.all([batcher.drain(), creates.drain()]);
      closed = true;
      await pool.end();
    },

    listSessions: (query: SessionPageQuery) =>
      guarded(async () => {
        const after = query.cursor === undefined ? undefined : decodeSessionCursor(query.cursor);
        // $1 is the owner or null (every session): one plan per shape, the owner index when it is set.
        const { rows } =
          after === undefined
            ? await pool.query<SessionRow>(
                `SELECT ${SESSION_COLUMNS} FROM sessions s WHERE ($1::text IS NULL OR s.owner_key_id = $1)
                 ORDER BY s.created_at DESC, s.id DESC LIMIT $2`,
                [query.owner ?? null, query.limit + 1],
              )
            : await pool.query<SessionRow>(
                `SELECT ${SESSION_COLUMNS} FROM sessions s WHERE ($1::text IS NULL OR s.owner_key_id = $1)
                 AND (s.created_at, s.id) < ($2::bigint, $3::text) ORDER BY s.created_at DESC, s.id DESC LIMIT $4`,
                [query.owner ?? null, after.createdAt, after.sessionId, query.limit + 1],
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
            ? 'SELECT * FROM messages WHERE session_id = $1 AND ord < $2 ORDER BY ord DESC LIMIT $3'
            : 'SELECT * FROM messages WHERE session_id = $1 AND ord > $2 ORDER BY ord LIMIT $3',
          [sessionId, from, query.limit + 1],
        );
        return messagePage(rows, query.limit, toMessage);
      }),

    idleSessions: (before: number, limit: number) =>
      guarded(async () => {
        const { rows } = await pool.query<{ id: string }>('SELECT id FROM sessions WHERE last_active_at < $1 ORDER BY last_active_at LIMIT $2', [
          before,
          limit,
        ]);
        return rows.map((row) => row.id);
      }),

    chunksAfter: (sessionId: SessionId, afterSeq: number) =>
      guarded(async () => {
        const { rows } = await pool.query<ChunkLogRow>(
          PG_CHUNK_LOGS_SQL,
          [sessionId],
        );
        return chunksOfRows(sessionId, rows, afterSeq);
      }),
  };
}
