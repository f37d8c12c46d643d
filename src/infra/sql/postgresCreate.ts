import type { Pool } from 'pg';
import type { ConversationRecord } from '../../domain/conversationRecord.ts';
import { inOneRoundTrip } from '../postgresPool.ts';
import { PG_COLUMN_TYPES, settledInOrder } from './postgresCommit.ts';
import { MESSAGE_COLUMNS, messageValues } from './rows.ts';

const SESSION_INSERT = `INSERT INTO sessions (id, created_at, last_active_at, last_seq, seq_reserved, stopped, title, metadata, owner_key_id, model)
  SELECT u.id, u.created_at, u.last_active_at, u.last_seq, u.seq_reserved, u.stopped, u.title, u.metadata::jsonb, u.owner_key_id, u.model
  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::boolean[], $7::text[], $8::text[], $9::text[], $10::text[])
    AS u (id, created_at, last_active_at, last_seq, seq_reserved, stopped, title, metadata, owner_key_id, model)`;

// One session, the usual case below saturation: VALUES plans cheaper than unnest (PostgreSQL's CPU per
// new session 0.44 ms with a one-row unnest, 0.18 with this, named; bench/handshakeCost.ts at 300/s).
const ONE_SESSION_INSERT = `INSERT INTO sessions (id, created_at, last_active_at, last_seq, seq_reserved, stopped, title, metadata, owner_key_id, model)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`;

const MESSAGE_LIST = MESSAGE_COLUMNS.join(', ');
const MESSAGE_INSERT = `INSERT INTO messages (${MESSAGE_LIST})
  SELECT ${MESSAGE_COLUMNS.map((column) => `u.${column}`).join(', ')}
  FROM unnest(${MESSAGE_COLUMNS.map((column, index) => `$${index + 1}::${PG_COLUMN_TYPES[column]}[]`).join(', ')}) WITH ORDINALITY AS u (${MESSAGE_LIST}, n)
  ORDER BY u.n`;

const sessionColumns = (records: readonly ConversationRecord[]) => {
  const column = <V>(value: (record: ConversationRecord) => V) => records.map(value);
  return [
    column((record) => record.sessionId),
    column((record) => record.createdAt),
    column((record) => record.lastActiveAt),
    column((record) => record.lastSeq),
    column((record) => record.seqReserved),
    column((record) => record.stopped),
    column((record) => record.title ?? null),
    column((record) => (record.metadata === undefined ? null : JSON.stringify(record.metadata))),
    column((record) => record.owner ?? null),
    column((record) => record.model ?? null),
  ];
};

/**
 * New sessions (and the history they start with), however many: one
 * statement per table, arrays through `unnest`. Without history it is one
 * statement, its own transaction: no BEGIN and COMMIT (one write on the
 * socket instead of three, a third of the statements for PostgreSQL). With
 * history both statements go in one transaction, issued at once.
 */
export async function insertRecords(pool: Pool, records: readonly ConversationRecord[]): Promise<void> {
  const rows = records.flatMap((record) => record.messages.map((message) => messageValues(record.sessionId, message)));
  if (rows.length === 0) {
    // Named: each pooled connection parses it once.
    if (records.length === 1) await pool.query({ name: 'llm-chat-create-session', text: ONE_SESSION_INSERT, values: sessionColumns(records).map(([value]) => value) });
    else await pool.query({ name: 'llm-chat-create-sessions', text: SESSION_INSERT, values: sessionColumns(records) });
    return;
  }
  await inOneRoundTrip(pool, (client) =>
    settledInOrder([
      client.query(SESSION_INSERT, sessionColumns(records)),
      client.query(MESSAGE_INSERT, MESSAGE_COLUMNS.map((_, index) => rows.map((row) => row[index]))),
    ]),
  );
}
