import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionId } from '../../src/domain/ids.ts';
import type { Message } from '../../src/domain/message.ts';
import { openPostgresStore, PG_CHUNK_LOGS_SQL, PG_UNFINISHED_SQL } from '../../src/infra/postgresStore.ts';
import { PG_CLEAR_CHUNK_LOGS_SQL, stillOurs } from '../../src/infra/sql/postgresCommit.ts';
import { dropSchemas, postgresReachable, TEST_DATABASE_URL, uniqueSchema } from '../support/postgres.ts';

// As sqlitePlans.test.ts for SQLite: the statements that look for a session's
// few unfinished or chunk-logged messages must search their partial index
// with the session as its condition, not walk the session's history
// (messages_order) nor every session's chunk log. Measured on a database
// shaped like a busy one: one long conversation, 3,000 sessions each keeping
// its last reply's chunk log, statistics gathered.
const available = await postgresReachable();
const schema = uniqueSchema('llm_chat_plans');
let client: pg.Client;

const message = (sessionId: string, order: number): Message => ({
  id: `${sessionId}-m${order}`,
  order,
  role: order % 2 === 0 ? 'assistant' : 'user',
  content: `text ${order}`,
  status: 'complete',
  createdAt: order,
  updatedAt: order,
});
const record = (sessionId: string, count: number) => ({
  sessionId: sessionId as SessionId,
  createdAt: 1,
  lastActiveAt: 1,
  lastSeq: 0,
  seqReserved: 0,
  stopped: false,
  messages: Array.from({ length: count }, (_, index) => message(sessionId, index + 1)),
});

beforeAll(async () => {
  if (!available) return;
  const store = await openPostgresStore({ connectionString: TEST_DATABASE_URL, schema });
  await store.create(record('long', 5000));
  await Promise.all(Array.from({ length: 3000 }, (_, index) => store.create(record(`s${index}`, 10))));
  await store.close();
  client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  await client.query(`SET search_path TO "${schema}"`);
  // Each session keeps its last reply's chunk log, as the store leaves them.
  await client.query("UPDATE messages SET chunk_first_seq = 1, chunk_next_seq = 2, chunk_lengths = '6' WHERE ord = 10");
  await client.query('ANALYZE');
}, 60_000);
afterAll(async () => {
  if (!available) return;
  await client.end();
  await dropSchemas([schema]);
});

/** The plan the server's prepared statement gets for these parameters. */
async function planOf(sql: string, parameters: string): Promise<string> {
  await client.query('DEALLOCATE ALL');
  await client.query(`PREPARE probe AS ${sql}`);
  const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE probe(${parameters})`);
  return rows.map((row) => row['QUERY PLAN']).join('\n');
}

describe.skipIf(!available)('PostgreSQL plans of the per-reply lookups', () => {
  it('activation finds unfinished messages through messages_unfinished, by session', async () => {
    const plan = await planOf(PG_UNFINISHED_SQL, "'long', 100000");
    expect(plan).toMatch(/messages_unfinished/);
    expect(plan).toMatch(/Index Cond: \(session_id = 'long'::text\)/);
    expect(plan).not.toMatch(/messages_order|Seq Scan/);
  });

  it('resume reads the chunk logs through messages_chunk_log, by session', async () => {
    const plan = await planOf(PG_CHUNK_LOGS_SQL, "'long'");
    expect(plan).toMatch(/messages_chunk_log/);
    expect(plan).toMatch(/Index Cond: \(session_id = 'long'::text\)/);
    expect(plan).not.toMatch(/messages_order|Seq Scan on messages/);
  });

  it('a reply starting drops the other replies’ chunk logs through messages_chunk_log, by session, fenced', async () => {
    const plan = await planOf(`${PG_CLEAR_CHUNK_LOGS_SQL} AND m.id <> d.id${stillOurs(3)}`, "ARRAY['long'], ARRAY['long-m10'], ARRAY['long'], ARRAY[NULL]::bigint[]");
    expect(plan).toMatch(/Index Scan using messages_chunk_log on messages m/);
    expect(plan).toMatch(/Index Cond: \(session_id = d\.session_id\)/);
    expect(plan).not.toMatch(/Seq Scan on messages/);
  });
});
