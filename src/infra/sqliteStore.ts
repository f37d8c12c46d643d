import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { ConversationRecord } from '../domain/conversationRecord.ts';
import type { SessionId } from '../domain/ids.ts';
import type { LoadWindow, MessagePageQuery, SessionPageQuery, SessionStore } from '../domain/ports.ts';
import { decodeMessageCursor, decodeSessionCursor, encodeSessionCursor, messagePage } from './pageCursor.ts';
import { chunksOfRows, messageValues, newerSchemaError, PREVIEW_CHARS, toMessage, toRecord, toSummary, windowRows } from './sql/rows.ts';
import { CHUNK_LOGS_SQL, COMMIT_SQL, commitPlanOf, UNFINISHED_SQL, UPSERT_MESSAGE_SQL } from './sqliteCommitPlan.ts';
import { prepareCommit } from './sqliteCommitter.mjs';
import { startSqliteWriterThread } from './sqliteWriterThread.ts';
import type { ChunkLogRow, MessageRow, Migration, SessionRow } from './sql/rows.ts';
import { SQLITE_MIGRATIONS } from './sql/sqliteMigrations.ts';
import { createSqliteKeyStore } from './sqliteKeyStore.ts';
import { guarded } from './storeErrors.ts';
import { createSqliteUsageStore } from './sqliteUsageStore.ts';
import { createGroupInsert } from './groupInsert.ts';
import { createWriteBatcher } from './writeBatcher.ts';

export interface SqliteStoreOptions {
  /** The database file (its directory is created); `:memory:` for a private in-memory database. */
  path: string;
  /**
   * How long a write waits for another process's lock, in ms (default 1 s).
   * better-sqlite3 waits synchronously, so this is also how long the event
   * loop can stall behind someone else's lock: keep it short.
   */
  busyTimeoutMs?: number;
  /**
   * WAL pages (4 KiB each) at which the writer thread checkpoints the log
   * into the database (default 10,000, about 40 MB; SQLite's own is 1,000).
   * The main thread's connection checkpoints only at twice that, when the
   * writer has not (a store that only creates sessions): a checkpoint copies
   * and fsyncs, and on the main thread it would stall the event loop. A log
   * that grew past twice that (a reader held it back) is cut back to it.
   */
  checkpointPages?: number;
}

/**
 * With SQLite's 1,000 pages the writer thread checkpointed every few
 * batches: 11% of the process's CPU in the saturate bench (perf: the WAL
 * hook, its fsync and pwrites), and 24.9k-28.9k chunks/s against
 * 29.5k-32.6k at 10,000 pages (bench/run.ts saturate, 2 cores).
 */
export const CHECKPOINT_PAGES = 10_000;

/**
 * How long the health probe waits for the write lock. It runs in the writer
 * thread, so waiting stalls no event loop; it may find the main thread's own
 * short writes (a new session, a delete) holding the lock, which must not
 * read as an outage. A lock held longer (another process) still fails it.
 */
const PROBE_LOCK_WAIT_MS = 200;

// The count and the first words of the first user message (in conversation order) ride on the order index (session_id, ord).
const SESSION_COLUMNS = `s.*, (SELECT count(*) FROM messages m WHERE m.session_id = s.id) AS message_count,
  (SELECT substr(m.content, 1, ${PREVIEW_CHARS}) FROM messages m WHERE m.session_id = s.id AND m.role = 'user' ORDER BY m.ord LIMIT 1) AS preview`;

/** A synchronous call as an asynchronous one (its throw becomes the rejection). */
const promised =
  <A extends unknown[], R>(run: (...args: A) => R) =>
  async (...args: A): Promise<R> =>
    run(...args);

/** What the committer answers, as the write batcher takes it. */
const outcomeOf = ({ absent, fenced }: { absent: string[]; fenced: string[] }) => ({
  absent: new Set(absent as SessionId[]),
  fenced: new Set(fenced as SessionId[]),
});

/** Applies the missing migrations in one IMMEDIATE transaction (a write lock across processes). */
export function migrateSqlite(db: Database.Database, migrations: readonly Migration[] = SQLITE_MIGRATIONS, upTo = Infinity): number {
  const apply = db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((row) => row.version));
    // Steps are numbered by the change that made them, so a database may have a later step and miss an earlier one: each missing step runs.
    const known = Math.max(0, ...migrations.map((migration) => migration.version));
    const newest = Math.max(0, ...applied);
    if (newest > known) throw newerSchemaError(newest, known);
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (migration.version > upTo || applied.has(migration.version)) continue;
      db.exec(migration.sql);
      record.run(migration.version, migration.name, Date.now());
    }
    return Math.max(0, ...(db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((row) => row.version));
  });
  return apply.immediate();
}

/**
 * The embedded store: one SQLite file in WAL mode (readers never wait for the
 * writer; `synchronous=NORMAL` keeps every committed write across a process
 * crash, not across a power cut: it fsyncs at checkpoints). better-sqlite3
 * is synchronous, so writes are group-committed: one transaction per batch,
 * not one per update.
 */
export function openSqliteStore(options: SqliteStoreOptions): SessionStore {
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  // Failures here stop the start-up with the driver's own words (an operator reads them).
  const db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 1000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  const checkpointPages = Math.max(1, Math.floor(options.checkpointPages ?? CHECKPOINT_PAGES));
  db.pragma(`wal_autocheckpoint = ${checkpointPages * 2}`);
  // A reader holding its snapshot (a long read, a backup) blocks the log's reset, so it grows past the
  // checkpoints; without a limit the file stays at that high-water mark. Past twice the checkpoint
  // size it is cut back at the next reset, which the writer's own checkpoints never reach.
  db.pragma(`journal_size_limit = ${checkpointPages * 2 * Number(db.pragma('page_size', { simple: true }))}`);
  migrateSqlite(db);

  const statements = {
    insertSession: db.prepare(
      `INSERT INTO sessions (id, created_at, last_active_at, last_seq, seq_reserved, stopped, title, metadata, owner_key_id, model)
       VALUES (@id, @created_at, @last_active_at, @last_seq, @seq_reserved, @stopped, @title, @metadata, @owner_key_id, @model)`,
    ),
    session: db.prepare('SELECT * FROM sessions WHERE id = ?'),
    history: db.prepare('SELECT * FROM messages WHERE session_id = ? ORDER BY ord'),
    newest: db.prepare('SELECT * FROM messages WHERE session_id = ? AND ord < ? ORDER BY ord DESC LIMIT ?'),
    unfinished: db.prepare(UNFINISHED_SQL),
    claim: db.prepare('UPDATE sessions SET fence = @token WHERE id = @id AND fence < @token'),
    fenceOf: db.prepare('SELECT fence FROM sessions WHERE id = ?'),
    upsertMessage: db.prepare(UPSERT_MESSAGE_SQL),
    deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
    deleteOwnedSession: db.prepare('DELETE FROM sessions WHERE id = ? AND owner_key_id = ?'),
    firstSessions: db.prepare(
      `SELECT ${SESSION_COLUMNS} FROM sessions s
       ORDER BY s.created_at DESC, s.id DESC LIMIT ?`,
    ),
    nextSessions: db.prepare(
      `SELECT ${SESSION_COLUMNS} FROM sessions s
       WHERE (s.created_at, s.id) < (?, ?) ORDER BY s.created_at DESC, s.id DESC LIMIT ?`,
    ),
    firstOwnSessions: db.prepare(
      `SELECT ${SESSION_COLUMNS} FROM sessions s
       WHERE s.owner_key_id = ? ORDER BY s.created_at DESC, s.id DESC LIMIT ?`,
    ),
    nextOwnSessions: db.prepare(
      `SELECT ${SESSION_COLUMNS} FROM sessions s
       WHERE s.owner_key_id = ? AND (s.created_at, s.id) < (?, ?) ORDER BY s.created_at DESC, s.id DESC LIMIT ?`,
    ),
    idle: db.prepare('SELECT id FROM sessions WHERE last_active_at < ? ORDER BY last_active_at LIMIT ?'),
    messagesAsc: db.prepare('SELECT * FROM messages WHERE session_id = ? AND ord > ? ORDER BY ord LIMIT ?'),
    messagesDesc: db.prepare('SELECT * FROM messages WHERE session_id = ? AND ord < ? ORDER BY ord DESC LIMIT ?'),
    chunkLogs: db.prepare(CHUNK_LOGS_SQL),
    ping: db.prepare('SELECT 1'),
  };

  // Group commits run in the writer thread (sqliteWriterThread.ts) for a file;
  // a private in-memory database cannot be shared with a thread, so its
  // commits run here, the same code (sqliteCommitter.mjs).
  const writer =
    options.path === ':memory:'
      ? undefined
      : startSqliteWriterThread({
          path: options.path,
          busyTimeoutMs: options.busyTimeoutMs ?? 1000,
          probeTimeoutMs: PROBE_LOCK_WAIT_MS,
          checkpointPages,
          sql: COMMIT_SQL,
        });
  const commitPlans = writer ? writer.commit : promised(prepareCommit(db, COMMIT_SQL));
  // (.then, not await: an async frame would hold the plans while the writer thread commits them.)
  const batcher = createWriteBatcher((updates) => commitPlans(updates.map(commitPlanOf)).then(outcomeOf));
  const insertRecord = (record: ConversationRecord) => {
    statements.insertSession.run({
      id: record.sessionId,
      created_at: record.createdAt,
      last_active_at: record.lastActiveAt,
      last_seq: record.lastSeq,
      seq_reserved: record.seqReserved,
      stopped: record.stopped ? 1 : 0,
      title: record.title ?? null,
      metadata: record.metadata === undefined ? null : JSON.stringify(record.metadata),
      owner_key_id: record.owner ?? null,
      model: record.model ?? null,
    });
    for (const message of record.messages) statements.upsertMessage.run(messageValues(record.sessionId, message));
  };
  // Sessions created in the same turn share one transaction (resolved once it is committed).
  const insertAll = db.transaction((records: readonly ConversationRecord[]) => {
    for (const record of records) insertRecord(record);
  });
  const creates = createGroupInsert(promised(insertAll));
  let closed = false;

  const history = async (sessionId: SessionId, window: LoadWindow | undefined) =>
    window === undefined
      ? (statements.history.all(sessionId) as MessageRow[])
      : windowRows(
          window,
          (before, limit) => statements.newest.all(sessionId, before, limit) as MessageRow[],
          (before) => statements.unfinished.all(sessionId, before) as MessageRow[],
        );

  return {
    keys: createSqliteKeyStore(db),

    usage: createSqliteUsageStore(db),
    create: (record: ConversationRecord) => creates.create(record),

    load: (sessionId: SessionId, window?: LoadWindow) =>
      guarded(async () => {
        const row = statements.session.get(sessionId) as SessionRow | undefined;
        if (!row) return undefined;
        return toRecord(row, await history(sessionId, window));
      }),

    save: (update) => batcher.save(update),

    delete: (sessionId: SessionId, owner?: string) =>
      guarded(() => (owner === undefined ? statements.deleteSession.run(sessionId) : statements.deleteOwnedSession.run(sessionId, owner)).changes > 0),

    claim: (sessionId: SessionId, token: number) =>
      guarded(() => {
        // One statement, and SQLite serialises writers across processes: a claim and a fenced write never interleave.
        const claimed = statements.claim.run({ id: sessionId, token }).changes > 0;
        const row = statements.fenceOf.get(sessionId) as { fence: number } | undefined;
        return row ? { claimed, fence: Number(row.fence) } : undefined;
      }),

    ping: () =>
      guarded(async () => {
        if (closed) throw new Error('store closed');
        // The writer thread takes (and gives back) the write lock: proves writes can happen now.
        if (writer) await writer.probe();
        else statements.ping.get();
      }),

    async close() {
      if (closed) return;
      await creates.drain();
      await batcher.drain();
      closed = true;
      await writer?.close();
      db.close();
    },

    listSessions: (query: SessionPageQuery) =>
      guarded(() => {
        const after = query.cursor === undefined ? undefined : decodeSessionCursor(query.cursor);
        const { owner } = query;
        const rows = (
          owner === undefined
            ? after === undefined
              ? statements.firstSessions.all(query.limit + 1)
              : statements.nextSessions.all(after.createdAt, after.sessionId, query.limit + 1)
            : after === undefined
              ? statements.firstOwnSessions.all(owner, query.limit + 1)
              : statements.nextOwnSessions.all(owner, after.createdAt, after.sessionId, query.limit + 1)
        ) as SessionRow[];
        const page = rows.slice(0, query.limit).map(toSummary);
        const last = page[page.length - 1];
        return { sessions: page, nextCursor: rows.length > query.limit && last ? encodeSessionCursor(last) : null };
      }),

    listMessages: (sessionId: SessionId, query: MessagePageQuery) =>
      guarded(() => {
        if (!statements.session.get(sessionId)) return undefined;
        const descending = query.order === 'desc';
        const from = query.cursor === undefined ? (descending ? Number.MAX_SAFE_INTEGER : 0) : decodeMessageCursor(query.cursor);
        const rows = (descending ? statements.messagesDesc : statements.messagesAsc).all(sessionId, from, query.limit + 1) as MessageRow[];
        return messagePage(rows, query.limit, toMessage);
      }),

    idleSessions: (before: number, limit: number) =>
      guarded(() => (statements.idle.all(before, limit) as { id: string }[]).map((row) => row.id)),

    chunksAfter: (sessionId: SessionId, afterSeq: number) =>
      guarded(() => chunksOfRows(sessionId, statements.chunkLogs.all(sessionId) as ChunkLogRow[], afterSeq)),
  };
}
