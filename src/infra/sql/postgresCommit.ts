import type { PoolClient } from 'pg';
import type { SessionUpdate } from '../../domain/ports.ts';
import { chunkPlan } from '../sessionUpdates.ts';
import type { CommitOutcome } from '../writeBatcher.ts';
import { MESSAGE_COLUMNS, messageValues, UPDATABLE_MESSAGE_COLUMNS } from './rows.ts';

/** The array type each message column travels as through `unnest`. */
export const PG_COLUMN_TYPES: Record<(typeof MESSAGE_COLUMNS)[number], string> = {
  session_id: 'text',
  id: 'text',
  ord: 'bigint',
  role: 'text',
  content: 'text',
  status: 'text',
  reply_to: 'text',
  error_code: 'text',
  input_tokens: 'int',
  output_tokens: 'int',
  created_at: 'bigint',
  updated_at: 'bigint',
  parts: 'text',
  tool_calls: 'text',
  tool_call_id: 'text',
  finish_reason: 'text',
  model: 'text',
};

/**
 * The fencing check of a statement on messages (alias `m`): only sessions
 * whose update went through, from the session ids and tokens in parameters
 * `$first` and `$first + 1`.
 */
export const stillOurs = (first: number) =>
  ` AND EXISTS (SELECT 1 FROM sessions fs, unnest($${first}::text[], $${first + 1}::bigint[]) AS ff (id, fence)
       WHERE fs.id = m.session_id AND ff.id = m.session_id AND fs.fence <= COALESCE(ff.fence, fs.fence))`;

/** Clears chunk logs of the sessions in $1 (messages in $2 chosen by what follows: `AND m.id = d.id`, or `<>` to keep one); through messages_chunk_log (test/store/postgresPlans.test.ts). */
export const PG_CLEAR_CHUNK_LOGS_SQL = `UPDATE messages m SET chunk_first_seq = NULL, chunk_next_seq = NULL, chunk_lengths = NULL
    FROM unnest($1::text[], $2::text[]) AS d (session_id, id) WHERE m.session_id = d.session_id AND m.chunk_lengths IS NOT NULL`;

/**
 * Waits for statements issued together (pipelined): rejects with the first
 * one's error in issue order (the later ones only fail because it did).
 */
export async function settledInOrder(statements: readonly Promise<unknown>[]): Promise<unknown[]> {
  const outcomes = await Promise.allSettled(statements);
  const failure = outcomes.find((outcome) => outcome.status === 'rejected');
  if (failure) throw failure.reason;
  return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value);
}

/**
 * One batch of updates from every session, in the caller's transaction, with
 * one statement per table (arrays through `unnest`), all issued at once (the
 * connection pipelines them; none depends on another's answer). Resolves with
 * the ids of sessions not stored (deleted meanwhile): nothing of those is kept.
 */
export async function commitUpdates(client: PoolClient, updates: readonly SessionUpdate[]): Promise<CommitOutcome> {
  const statements: Promise<unknown>[] = [];
  // Many nodes: an update carrying a fencing token applies only while no newer token has claimed its
  // session, and raises the stored one. The session row goes first (its lock orders this transaction
  // against a claim); every later statement joins on it, so nothing of a refused update is written.
  const fenceOf = new Map(updates.map((u) => [u.sessionId, u.fence ?? null]));
  const touched = client.query<{ id: string }>(
    `UPDATE sessions AS s SET last_seq = GREATEST(s.last_seq, u.last_seq), seq_reserved = GREATEST(s.seq_reserved, u.seq_reserved),
       last_active_at = GREATEST(s.last_active_at, u.last_active_at), stopped = u.stopped, fence = GREATEST(s.fence, COALESCE(u.fence, 0))
     FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[], $6::bigint[]) AS u (id, last_seq, seq_reserved, last_active_at, stopped, fence)
     WHERE s.id = u.id AND s.fence <= COALESCE(u.fence, s.fence) RETURNING s.id`,
    [
      updates.map((u) => u.sessionId),
      updates.map((u) => u.lastSeq),
      updates.map((u) => u.seqReserved),
      updates.map((u) => u.lastActiveAt),
      updates.map((u) => u.stopped),
      updates.map((u) => u.fence ?? null),
    ],
  );
  const refused = client.query<{ id: string }>(
    `SELECT s.id FROM unnest($1::text[], $2::bigint[]) AS u (id, fence) JOIN sessions s ON s.id = u.id WHERE u.fence IS NOT NULL AND s.fence > u.fence`,
    [updates.map((u) => u.sessionId), updates.map((u) => u.fence ?? null)],
  );
  // The same check for the statements on messages: only sessions whose update went through.
  const fenceIds = updates.map((u) => u.sessionId);
  const fences = updates.map((u) => u.fence ?? null);
  const withdrawn = updates.flatMap((update) => (update.withdrawn ?? []).map((id) => [update.sessionId, id] as const));
  if (withdrawn.length > 0) {
    statements.push(client.query(`DELETE FROM messages m USING unnest($1::text[], $2::text[]) AS w (session_id, id) WHERE m.session_id = w.session_id AND m.id = w.id${stillOurs(3)}`, [
      withdrawn.map(([sessionId]) => sessionId),
      withdrawn.map(([, id]) => id),
      fenceIds,
      fences,
    ]));
  }
  const rows = updates.flatMap((update) => update.messages.map((message) => messageValues(update.sessionId, message)));
  if (rows.length > 0) {
    const list = MESSAGE_COLUMNS.join(', ');
    statements.push(client.query(
      `INSERT INTO messages (${list})
       SELECT ${MESSAGE_COLUMNS.map((column) => `u.${column}`).join(', ')}
       FROM unnest(${MESSAGE_COLUMNS.map((column, index) => `$${index + 1}::${PG_COLUMN_TYPES[column]}[]`).join(', ')}, $${MESSAGE_COLUMNS.length + 1}::bigint[])
         WITH ORDINALITY AS u (${list}, fence, n)
       WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.id = u.session_id AND s.fence <= COALESCE(u.fence, s.fence))
       ORDER BY u.n
       ON CONFLICT (session_id, id) DO UPDATE SET ${UPDATABLE_MESSAGE_COLUMNS.map((column) => `${column} = EXCLUDED.${column}`).join(', ')}`,
      // (A row's values are in MESSAGE_COLUMNS order: session_id first.)
      [...MESSAGE_COLUMNS.map((_, index) => rows.map((row) => row[index])), rows.map((row) => fenceOf.get(row[0] as string) ?? null)],
    ));
  }
  const plans = updates.map((update) => ({ sessionId: update.sessionId, plan: chunkPlan(update) }));
  const drops = plans.flatMap(({ sessionId, plan }) => plan.dropMessages.map((messageId) => [sessionId, messageId] as const));
  if (drops.length > 0) {
    statements.push(client.query(`${PG_CLEAR_CHUNK_LOGS_SQL} AND m.id = d.id${stillOurs(3)}`, [drops.map(([sessionId]) => sessionId), drops.map(([, messageId]) => messageId), fenceIds, fences]));
  }
  const keeps = plans.flatMap(({ sessionId, plan }) => (plan.keepOnly === undefined ? [] : [[sessionId, plan.keepOnly] as const]));
  if (keeps.length > 0) {
    statements.push(client.query(`${PG_CLEAR_CHUNK_LOGS_SQL} AND m.id <> d.id${stillOurs(3)}`, [keeps.map(([sessionId]) => sessionId), keeps.map(([, messageId]) => messageId), fenceIds, fences]));
  }
  const appends = plans.flatMap(({ sessionId, plan }) => plan.appends.map((append) => ({ sessionId, ...append })));
  if (appends.length > 0) {
    statements.push(client.query(
      `UPDATE messages m SET chunk_first_seq = COALESCE(m.chunk_first_seq, u.first_seq),
         chunk_lengths = CASE WHEN m.chunk_lengths IS NULL THEN u.lengths ELSE m.chunk_lengths || ',' || u.lengths END,
         chunk_next_seq = u.next_seq
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) AS u (session_id, id, first_seq, next_seq, lengths)
       WHERE m.session_id = u.session_id AND m.id = u.id AND (m.chunk_next_seq IS NULL OR m.chunk_next_seq = u.first_seq)${stillOurs(6)}`,
      [
        appends.map((a) => a.sessionId),
        appends.map((a) => a.messageId),
        appends.map((a) => a.firstSeq),
        appends.map((a) => a.nextSeq),
        appends.map((a) => a.lengths.join(',')),
        fenceIds,
        fences,
      ],
    ));
  }
  await settledInOrder([touched, ...statements, refused]);
  const present = new Set((await touched).rows.map((row) => row.id));
  const fenced = new Set((await refused).rows.map((row) => row.id));
  // Deleted meanwhile: nothing of them is kept (the message insert skips them too).
  return { absent: new Set(updates.map((u) => u.sessionId).filter((id) => !present.has(id) && !fenced.has(id))), fenced };
}
