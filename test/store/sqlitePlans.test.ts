import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_LOGS_SQL, KEEP_LOG_OF_SQL, UNFINISHED_SQL } from '../../src/infra/sqliteCommitPlan.ts';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';

// The statements that look for a session's few unfinished or chunk-logged
// messages must search their partial index, not walk the session's history
// by messages_order: a reply's start ran one of them, and its cost grew with
// the conversation (SQLite's planner, without statistics, picked the walk).
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-plans-'));
let db: Database.Database;

beforeAll(async () => {
  const path = join(directory, 'plans.sqlite');
  await (openSqliteStore({ path })).close(); // migrated as the server leaves it
  db = new Database(path, { readonly: true });
});
afterAll(() => {
  db.close();
  rmSync(directory, { recursive: true, force: true });
});

const planOf = (sql: string, ...parameters: unknown[]) =>
  (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...parameters) as { detail: string }[]).map((row) => row.detail).join(' | ');

describe('SQLite plans of the per-reply lookups', () => {
  it('a reply starting drops the other replies’ chunk logs through messages_chunk_log', () => {
    expect(planOf(KEEP_LOG_OF_SQL, 's', 'm')).toMatch(/USING INDEX messages_chunk_log/);
    // What the planner chose before the index was named: the whole history of the session.
    expect(planOf(KEEP_LOG_OF_SQL.replace(' INDEXED BY messages_chunk_log', ''), 's', 'm')).toMatch(/USING INDEX messages_order \(session_id=\?\)/);
  });

  it('resume reads the chunk logs through messages_chunk_log', () => {
    expect(planOf(CHUNK_LOGS_SQL, 's')).toMatch(/USING INDEX messages_chunk_log/);
  });

  it('activation finds unfinished messages through messages_unfinished', () => {
    expect(planOf(UNFINISHED_SQL, 's', 10)).toMatch(/USING INDEX messages_unfinished/);
  });
});
