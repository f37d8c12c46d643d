import type { Migration } from './rows.ts';

/**
 * PostgreSQL schema, forward only. Never edit a released step: add a new one.
 * Times are epoch milliseconds; `position` keeps messages in history order.
 */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'sessions and messages',
    sql: `
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        last_active_at BIGINT NOT NULL,
        last_seq BIGINT NOT NULL DEFAULT 0,
        stopped BOOLEAN NOT NULL DEFAULT FALSE,
        title TEXT,
        metadata JSONB
      );
      CREATE INDEX sessions_newest ON sessions (created_at DESC, id DESC);
      CREATE TABLE messages (
        position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        status TEXT NOT NULL,
        reply_to TEXT,
        error_code TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        UNIQUE (session_id, id)
      );
      CREATE INDEX messages_history ON messages (session_id, position);
    `,
  },
  {
    version: 2,
    name: 'usage and the chunk log for resume',
    sql: `
      ALTER TABLE messages ADD COLUMN input_tokens INTEGER;
      ALTER TABLE messages ADD COLUMN output_tokens INTEGER;
      -- The chunk log of a reply still streaming (or interrupted): the seq of its first chunk, the seq
      -- the next append must start at, and each chunk's length in the text (see infra/sessionUpdates.ts).
      ALTER TABLE messages ADD COLUMN chunk_first_seq BIGINT;
      ALTER TABLE messages ADD COLUMN chunk_next_seq BIGINT;
      ALTER TABLE messages ADD COLUMN chunk_lengths TEXT;
      CREATE INDEX messages_chunk_log ON messages (session_id) WHERE chunk_lengths IS NOT NULL;
    `,
  },
  {
    version: 6,
    name: 'fencing token of the session owner',
    sql: `
      -- The newest lease token that claimed the session (many nodes, see src/cluster): writes with an
      -- older one are refused, so a node that lost its lease cannot overwrite the new owner's history.
      ALTER TABLE sessions ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
    `,
  },
];
