import type { SessionUpdate } from '../domain/ports.ts';
import { chunkPlan } from './sessionUpdates.ts';
import { MESSAGE_COLUMNS, messageValues, UPDATABLE_MESSAGE_COLUMNS } from './sql/rows.ts';
import type { ColumnValue } from './sql/rows.ts';

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

/** The message upsert, its values by position in MESSAGE_COLUMNS order (`messageValues`). */
export const UPSERT_MESSAGE_SQL = `INSERT INTO messages (${MESSAGE_COLUMNS.join(', ')}) VALUES (${MESSAGE_COLUMNS.map(() => '?').join(', ')})
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

// The group commit's statements take positional parameters (arrays), not named
// ones (objects): better-sqlite3 looks each named parameter up on the object
// from C++ (HasOwnProperty, then Get), and the structured clone to the writer
// thread writes every key of every row. Both showed in callgrind's count of a
// burst (bench/instructionCount.ts, README Round 13).
export const COMMIT_SQL: CommitSql = {
  // A fenced update (a fence set) applies only while no newer token has claimed the session, and raises the stored one.
  touchSession: `UPDATE sessions SET last_seq = max(last_seq, ?), seq_reserved = max(seq_reserved, ?),
         last_active_at = max(last_active_at, ?), stopped = ?, fence = max(fence, coalesce(?, 0))
       WHERE id = ? AND fence <= coalesce(?, fence)`,
  fenceOf: 'SELECT fence FROM sessions WHERE id = ?',
  deleteMessage: 'DELETE FROM messages WHERE session_id = ? AND id = ?',
  upsertMessage: UPSERT_MESSAGE_SQL,
  dropLogOf:
    'UPDATE messages SET chunk_first_seq = NULL, chunk_next_seq = NULL, chunk_lengths = NULL WHERE session_id = ? AND id = ? AND chunk_lengths IS NOT NULL',
  keepLogOf: KEEP_LOG_OF_SQL,
  // Parameters: first, lengths, lengths, next, session, id, first.
  appendLog: `UPDATE messages SET chunk_first_seq = coalesce(chunk_first_seq, ?),
         chunk_lengths = CASE WHEN chunk_lengths IS NULL THEN ? ELSE chunk_lengths || ',' || ? END, chunk_next_seq = ?
       WHERE session_id = ? AND id = ? AND (chunk_next_seq IS NULL OR chunk_next_seq = ?)`,
};

/**
 * One session's update as the committer runs it: statement parameters only,
 * in the order of COMMIT_SQL's placeholders, so it crosses to the writer
 * thread as plain arrays.
 */
export interface CommitPlan {
  sessionId: string;
  /** touchSession's: last_seq, seq_reserved, last_active_at, stopped, fence, id, fence. */
  touch: readonly [number, number, number, 0 | 1, number | null, string, number | null];
  withdrawn: readonly string[];
  /** Each message's columns in MESSAGE_COLUMNS order. */
  messages: readonly (readonly ColumnValue[])[];
  dropLogs: readonly string[];
  keepLogOnly: string | null;
  /** appendLog's: first, lengths, lengths, next, session, id, first. */
  appends: readonly (readonly [number, string, string, number, string, string, number])[];
}

export function commitPlanOf(update: SessionUpdate): CommitPlan {
  const { sessionId } = update;
  const chunks = chunkPlan(update);
  const fence = update.fence ?? null;
  return {
    sessionId,
    touch: [update.lastSeq, update.seqReserved, update.lastActiveAt, update.stopped ? 1 : 0, fence, sessionId, fence],
    withdrawn: update.withdrawn ?? [],
    messages: update.messages.map((message) => messageValues(sessionId, message)),
    dropLogs: chunks.dropMessages,
    keepLogOnly: chunks.keepOnly ?? null,
    appends: chunks.appends.map((append) => {
      const lengths = append.lengths.join(',');
      return [append.firstSeq, lengths, lengths, append.nextSeq, sessionId, append.messageId, append.firstSeq] as const;
    }),
  };
}
