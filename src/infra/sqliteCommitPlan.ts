import type { SessionUpdate } from '../domain/ports.ts';
import { chunkPlan } from './sessionUpdates.ts';
import { MESSAGE_COLUMNS, messageColumns, UPDATABLE_MESSAGE_COLUMNS } from './sql/rows.ts';

/** The statements of a group commit (sqliteCommitter.mjs prepares them where it runs). */
export interface CommitSql {
  touchSession: string;
  fenceOf: string;
  deleteMessage: string;
  upsertMessage: string;
  dropLogOf: string;
  keepLogOf: string;
  appendLog: string;
}

export const UPSERT_MESSAGE_SQL = `INSERT INTO messages (${MESSAGE_COLUMNS.join(', ')}) VALUES (${MESSAGE_COLUMNS.map((column) => `@${column}`).join(', ')})
       ON CONFLICT (session_id, id) DO UPDATE SET ${UPDATABLE_MESSAGE_COLUMNS.map((column) => `${column} = excluded.${column}`).join(', ')}`;

// Statements that look for a session's few unfinished or logged messages name
// their partial index: without statistics SQLite's planner picks
// messages_order (session_id, ord) and walks the session's whole history, so
// every reply's start cost grew with the conversation (18.7 µs a reply start
// at ~80 messages in the saturate bench, and rising). Exported for the test
// that holds them to their plans.
export const KEEP_LOG_OF_SQL =
  'UPDATE messages INDEXED BY messages_chunk_log SET chunk_first_seq = NULL, chunk_next_seq = NULL, chunk_lengths = NULL WHERE session_id = ? AND id <> ? AND chunk_lengths IS NOT NULL';
export const CHUNK_LOGS_SQL =
  'SELECT id, content, chunk_first_seq, chunk_lengths FROM messages INDEXED BY messages_chunk_log WHERE session_id = ? AND chunk_lengths IS NOT NULL';
export const UNFINISHED_SQL = "SELECT * FROM messages INDEXED BY messages_unfinished WHERE session_id = ? AND status IN ('queued', 'streaming') AND ord < ?";

export const COMMIT_SQL: CommitSql = {
  // A fenced update (@fence set) applies only while no newer token has claimed the session, and raises the stored one.
  touchSession: `UPDATE sessions SET last_seq = max(last_seq, @last_seq), seq_reserved = max(seq_reserved, @seq_reserved),
         last_active_at = max(last_active_at, @last_active_at), stopped = @stopped, fence = max(fence, coalesce(@fence, 0))
       WHERE id = @id AND fence <= coalesce(@fence, fence)`,
  fenceOf: 'SELECT fence FROM sessions WHERE id = ?',
  deleteMessage: 'DELETE FROM messages WHERE session_id = ? AND id = ?',
  upsertMessage: UPSERT_MESSAGE_SQL,
  dropLogOf:
    'UPDATE messages SET chunk_first_seq = NULL, chunk_next_seq = NULL, chunk_lengths = NULL WHERE session_id = ? AND id = ? AND chunk_lengths IS NOT NULL',
  keepLogOf: KEEP_LOG_OF_SQL,
  appendLog: `UPDATE messages SET chunk_first_seq = coalesce(chunk_first_seq, @first),
         chunk_lengths = CASE WHEN chunk_lengths IS NULL THEN @lengths ELSE chunk_lengths || ',' || @lengths END, chunk_next_seq = @next
       WHERE session_id = @session AND id = @id AND (chunk_next_seq IS NULL OR chunk_next_seq = @first)`,
};

/** One session's update as the committer runs it: statement parameters only, so it crosses to the writer thread as plain data. */
export interface CommitPlan {
  sessionId: string;
  touch: { id: string; last_seq: number; seq_reserved: number; last_active_at: number; stopped: 0 | 1; fence: number | null };
  withdrawn: readonly string[];
  messages: readonly ReturnType<typeof messageColumns>[];
  dropLogs: readonly string[];
  keepLogOnly: string | null;
  appends: readonly { session: string; id: string; first: number; next: number; lengths: string }[];
}

export function commitPlanOf(update: SessionUpdate): CommitPlan {
  const { sessionId } = update;
  const chunks = chunkPlan(update);
  return {
    sessionId,
    touch: {
      id: sessionId,
      last_seq: update.lastSeq,
      seq_reserved: update.seqReserved,
      last_active_at: update.lastActiveAt,
      stopped: update.stopped ? 1 : 0,
      fence: update.fence ?? null,
    },
    withdrawn: update.withdrawn ?? [],
    messages: update.messages.map((message) => messageColumns(sessionId, message)),
    dropLogs: chunks.dropMessages,
    keepLogOnly: chunks.keepOnly ?? null,
    appends: chunks.appends.map((append) => ({
      session: sessionId,
      id: append.messageId,
      first: append.firstSeq,
      next: append.nextSeq,
      lengths: append.lengths.join(','),
    })),
  };
}
