import type { Migration } from './rows.ts';

/**
 * SQLite schema, forward only. Never edit a released step: add a new one.
 * Times are epoch milliseconds; `ord` keeps messages in conversation order
 * (`position` is the order of first write, kept for nothing else since version 3).
 */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'sessions and messages',
    sql: `
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        last_active_at INTEGER NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0,
        stopped INTEGER NOT NULL DEFAULT 0,
        title TEXT,
        metadata TEXT
      );
      CREATE INDEX sessions_newest ON sessions (created_at DESC, id DESC);
      CREATE TABLE messages (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        status TEXT NOT NULL,
        reply_to TEXT,
        error_code TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
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
      ALTER TABLE messages ADD COLUMN chunk_first_seq INTEGER;
      ALTER TABLE messages ADD COLUMN chunk_next_seq INTEGER;
      ALTER TABLE messages ADD COLUMN chunk_lengths TEXT;
      CREATE INDEX messages_chunk_log ON messages (session_id) WHERE chunk_lengths IS NOT NULL;
    `,
  },
  {
    version: 3,
    name: 'conversation order and the chunk-number high-water mark',
    sql: `
      -- No chunk numbered above seq_reserved was ever sent; a restarted session goes on above it.
      -- Rows from earlier versions get their old safety margin once (they had no mark).
      ALTER TABLE sessions ADD COLUMN seq_reserved INTEGER NOT NULL DEFAULT 0;
      UPDATE sessions SET seq_reserved = last_seq + 1000000;
      -- A message's place in its conversation (a reply right after its question); history pages by it.
      ALTER TABLE messages ADD COLUMN ord INTEGER NOT NULL DEFAULT 0;
      UPDATE messages SET ord = position * 2;
      CREATE UNIQUE INDEX messages_order ON messages (session_id, ord);
      DROP INDEX messages_history;
      -- Re-activation loads a recent window plus whatever was left unfinished, however old.
      CREATE INDEX messages_unfinished ON messages (session_id) WHERE status IN ('queued', 'streaming');
    `,
  },
  {
    // A database made by a build that had version 4 before version 3 gets 3 afterwards: the runner applies whichever steps it lacks.
    version: 4,
    name: 'api keys and session owners',
    sql: `
      -- Keys are stored hashed (SHA-256 of a 256-bit random key): the key itself is shown once and kept nowhere.
      -- A revoked key stays (revoked_at set) so the sessions it made still show whose they were.
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        limits TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
      );
      ALTER TABLE sessions ADD COLUMN owner_key_id TEXT;
      -- A key's sessions, newest first (GET /api/sessions), and the retention sweep's oldest activity first.
      CREATE INDEX sessions_by_owner ON sessions (owner_key_id, created_at DESC, id DESC);
      CREATE INDEX sessions_idle ON sessions (last_active_at);
    `,
  },
  {
    version: 5,
    name: 'structured messages (content parts, tool calls, finish reason, model) and token usage',
    sql: `
      -- JSON text, as the client or the model sent it (TEXT rather than JSONB: JSONB refuses \\u0000 escapes).
      ALTER TABLE messages ADD COLUMN parts TEXT;
      ALTER TABLE messages ADD COLUMN tool_calls TEXT;
      ALTER TABLE messages ADD COLUMN tool_call_id TEXT;
      ALTER TABLE messages ADD COLUMN finish_reason TEXT;
      ALTER TABLE messages ADD COLUMN model TEXT;
      -- The model a session answers with unless a message names another.
      ALTER TABLE sessions ADD COLUMN model TEXT;
      -- Tokens spent per API key (key_id '' without keys), UTC day and model: budgets and usage reports.
      CREATE TABLE token_usage (
        key_id TEXT NOT NULL,
        day TEXT NOT NULL,
        model TEXT NOT NULL,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (key_id, day, model)
      );
      CREATE INDEX token_usage_by_day ON token_usage (day);
    `,
  },
  {
    version: 6,
    name: 'fencing token of the session owner',
    sql: `
      -- The newest lease token that claimed the session (many nodes, see src/cluster): writes with an
      -- older one are refused, so a node that lost its lease cannot overwrite the new owner's history.
      ALTER TABLE sessions ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
    `,
  },
];
