import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { ChunkEvent } from '../../src/domain/events.ts';
import type { SessionId } from '../../src/domain/ids.ts';
import type { Message } from '../../src/domain/message.ts';
import { COMMIT_SQL, type CommitPlan, type CommitSql, commitPlanOf } from '../../src/infra/sqliteCommitPlan.ts';
import { prepareCommit } from '../../src/infra/sqliteCommitter.mjs';
import { migrateSqlite } from '../../src/infra/sqliteStore.ts';

const sessionId = 's1' as SessionId;

/** A migrated database with one session, and the commit with a count of how often each of its statements ran. */
function committer() {
  const db = new Database(':memory:');
  migrateSqlite(db);
  db.prepare('INSERT INTO sessions (id, created_at, last_active_at, last_seq, seq_reserved, stopped) VALUES (?, 1, 1, 0, 0, 0)').run(sessionId);
  const runs = new Map<string, number>();
  const names = new Map(Object.entries(COMMIT_SQL).map(([name, sql]) => [sql, name as keyof CommitSql]));
  // Counts each statement's runs by its name in COMMIT_SQL.
  const counting = new Proxy(db, {
    get(target, property) {
      if (property !== 'prepare') return Reflect.get(target, property, target);
      return (sql: string) => {
        const statement = target.prepare(sql);
        const name = names.get(sql) ?? sql;
        return { run: (...parameters: unknown[]) => (runs.set(name, (runs.get(name) ?? 0) + 1), statement.run(...parameters)), get: statement.get.bind(statement) };
      };
    },
  });
  const commit = prepareCommit(counting, COMMIT_SQL) as (plans: readonly CommitPlan[]) => unknown;
  const write = (messages: Message[], chunks: ChunkEvent[] = []) => {
    runs.clear();
    commit([commitPlanOf({ sessionId, lastSeq: chunks.at(-1)?.seq ?? 0, seqReserved: 1000, lastActiveAt: 2, stopped: false, messages, chunks })]);
    return Object.fromEntries(runs);
  };
  const stored = () => db.prepare('SELECT content, status, chunk_first_seq, chunk_next_seq, chunk_lengths FROM messages WHERE id = ?').get('r1');
  return { write, stored };
}

const reply = (content: string, status: Message['status'] = 'streaming'): Message => ({
  id: 'r1',
  order: 1,
  role: 'assistant',
  content,
  status,
  createdAt: 1,
  updatedAt: 2,
  replyTo: 'u1',
});
const chunk = (seq: number, text: string): ChunkEvent => ({ type: 'chunk', sessionId, messageId: 'r1', seq, chunk: text, is_last: false });

describe('SQLite group commit: a stored reply’s flush and end', () => {
  it('a flush of a stored reply is one statement: its text and the next chunks of its log', () => {
    const { write, stored } = committer();
    write([reply('')]);
    expect(write([reply('ab')], [chunk(1, 'a'), chunk(2, 'b')])).toEqual({ touchSession: 1, streamWithLog: 1, keepLogOf: 1 });
    expect(write([reply('abc')], [chunk(3, 'c')])).toEqual({ touchSession: 1, streamWithLog: 1, keepLogOf: 1 });
    expect(stored()).toEqual({ content: 'abc', status: 'streaming', chunk_first_seq: 1, chunk_next_seq: 4, chunk_lengths: '1,1,1' });
  });

  it('a reply not stored yet, or an append that does not start where the log ends, takes the upsert and the append', () => {
    const { write, stored } = committer();
    expect(write([reply('ab')], [chunk(1, 'a'), chunk(2, 'b')])).toEqual({ touchSession: 1, streamWithLog: 1, upsertMessage: 1, keepLogOf: 1, appendLog: 1 });
    // A gap (chunk 3 never written): the text is kept, the log is not extended past it.
    expect(write([reply('abcd')], [chunk(4, 'd')])).toEqual({ touchSession: 1, streamWithLog: 1, upsertMessage: 1, keepLogOf: 1, appendLog: 1 });
    expect(stored()).toEqual({ content: 'abcd', status: 'streaming', chunk_first_seq: 1, chunk_next_seq: 3, chunk_lengths: '1,1' });
  });

  it('the end of a stored reply is one statement: its last version, its log dropped', () => {
    const { write, stored } = committer();
    write([reply('ab')], [chunk(1, 'a'), chunk(2, 'b')]);
    expect(write([reply('abc', 'complete')], [chunk(3, 'c')])).toEqual({ touchSession: 1, finishDroppingLog: 1 });
    expect(stored()).toEqual({ content: 'abc', status: 'complete', chunk_first_seq: null, chunk_next_seq: null, chunk_lengths: null });
    // A reply that ends before it was ever stored is inserted whole.
    const fresh = committer();
    expect(fresh.write([reply('x', 'complete')])).toEqual({ touchSession: 1, finishDroppingLog: 1, upsertMessage: 1, dropLogOf: 1 });
    expect(fresh.stored()).toEqual({ content: 'x', status: 'complete', chunk_first_seq: null, chunk_next_seq: null, chunk_lengths: null });
  });
});
