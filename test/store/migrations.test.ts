import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresPool, migratePostgres, openPostgresStore } from '../../src/infra/postgresStore.ts';
import { POSTGRES_MIGRATIONS } from '../../src/infra/sql/postgresMigrations.ts';
import { SQLITE_MIGRATIONS } from '../../src/infra/sql/sqliteMigrations.ts';
import { migrateSqlite, openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { dropSchemas, postgresReachable, TEST_DATABASE_URL, uniqueSchema } from '../support/postgres.ts';

const LATEST = SQLITE_MIGRATIONS.at(-1)!.version;
// Versions are numbered by task and may leave gaps: the previous one is the step before the last.
const PREVIOUS = SQLITE_MIGRATIONS.at(-2)!.version;
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-migrations-'));
let files = 0;
const tempFile = () => join(directory, `db-${++files}.sqlite`);
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** What a version-1 node wrote: a session mid-conversation, before usage and the chunk log existed. */
const V1_SESSION = 'previous00000000000001';

describe('SQLite migrations', () => {
  it('migrate an empty database to the latest version, once, and do nothing the second time', () => {
    const db = new Database(tempFile());
    expect(migrateSqlite(db)).toBe(LATEST);
    expect(migrateSqlite(db)).toBe(LATEST);
    const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
    expect(versions.map((row) => row.version)).toEqual(SQLITE_MIGRATIONS.map((migration) => migration.version));
    db.close();
  });

  it('upgrade a database from the previous version with its data intact', async () => {
    const path = tempFile();
    const db = new Database(path);
    expect(migrateSqlite(db, SQLITE_MIGRATIONS, PREVIOUS)).toBe(PREVIOUS);
    db.prepare('INSERT INTO sessions (id, created_at, last_active_at, last_seq, stopped) VALUES (?, 1, 2, 5, 0)').run(V1_SESSION);
    db.prepare(
      `INSERT INTO messages (session_id, id, role, content, status, created_at, updated_at) VALUES
       (?, 'u1', 'user', 'hello', 'complete', 1, 1), (?, 'r1', 'assistant', 'hi there', 'complete', 1, 2)`,
    ).run(V1_SESSION, V1_SESSION);
    db.close();

    const store = openSqliteStore({ path });
    const loaded = await store.load(V1_SESSION);
    expect(loaded?.lastSeq).toBe(5);
    expect(loaded?.messages.map((m) => [m.id, m.content, m.usage])).toEqual([
      ['u1', 'hello', undefined],
      ['r1', 'hi there', undefined],
    ]);
    // What the new version added works on the old data.
    await store.save({
      sessionId: V1_SESSION,
      lastSeq: 6,
      lastActiveAt: 3,
      stopped: false,
      messages: [{ id: 'r2', role: 'assistant', content: 'x', status: 'streaming', createdAt: 3, updatedAt: 3, usage: { inputTokens: 1, outputTokens: 2 } }],
      chunks: [{ type: 'chunk', sessionId: V1_SESSION, messageId: 'r2', seq: 6, chunk: 'x', is_last: false }],
    });
    expect((await store.chunksAfter(V1_SESSION, 0)).map((chunk) => chunk.seq)).toEqual([6]);
    expect((await store.load(V1_SESSION))?.messages[2]?.usage).toEqual({ inputTokens: 1, outputTokens: 2 });
    // Version 6: an old session starts unfenced and can be claimed.
    expect(await store.claim!(V1_SESSION, 1)).toEqual({ claimed: true, fence: 1 });
    await store.close();
  });

  it('refuse a database written by a newer version (migrations only go forward)', () => {
    const path = tempFile();
    const db = new Database(path);
    migrateSqlite(db);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)').run(LATEST + 1, 'from the future');
    db.close();
    expect(() => openSqliteStore({ path })).toThrow(/newer than this build/);
  });
});

const reachable = await postgresReachable();
const schemas: string[] = [];
afterAll(() => (reachable ? dropSchemas(schemas) : undefined));

describe.skipIf(!reachable)('PostgreSQL migrations (real local server)', () => {
  const schema = () => {
    const name = uniqueSchema('llm_chat_migrate');
    schemas.push(name);
    return name;
  };

  it('migrate an empty schema once even when several nodes start at the same moment', async () => {
    const name = schema();
    const pools = Array.from({ length: 4 }, () => createPostgresPool({ connectionString: TEST_DATABASE_URL, schema: name }));
    try {
      const reached = await Promise.all(pools.map((pool) => migratePostgres(pool, name)));
      expect(reached).toEqual([LATEST, LATEST, LATEST, LATEST]);
      expect(await migratePostgres(pools[0]!, name)).toBe(LATEST);
      const { rows } = await pools[0]!.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((row) => row.version)).toEqual(POSTGRES_MIGRATIONS.map((migration) => migration.version));
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  it('upgrade a schema from the previous version with its data intact', async () => {
    const name = schema();
    const old = await openPostgresStore({ connectionString: TEST_DATABASE_URL, schema: name, migrateTo: PREVIOUS });
    await old.close();
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      await client.query(`INSERT INTO "${name}".sessions (id, created_at, last_active_at, last_seq, stopped) VALUES ($1, 1, 2, 5, false)`, [V1_SESSION]);
      await client.query(
        `INSERT INTO "${name}".messages (session_id, id, role, content, status, created_at, updated_at) VALUES
         ($1, 'u1', 'user', 'hello', 'complete', 1, 1), ($1, 'r1', 'assistant', 'hi there', 'complete', 1, 2)`,
        [V1_SESSION],
      );
    } finally {
      await client.end();
    }
    const store = await openPostgresStore({ connectionString: TEST_DATABASE_URL, schema: name });
    try {
      const loaded = await store.load(V1_SESSION);
      expect(loaded?.messages.map((m) => [m.id, m.content, m.usage])).toEqual([
        ['u1', 'hello', undefined],
        ['r1', 'hi there', undefined],
      ]);
      await store.save({
        sessionId: V1_SESSION,
        lastSeq: 6,
        lastActiveAt: 3,
        stopped: false,
        messages: [{ id: 'r2', role: 'assistant', content: 'x', status: 'streaming', createdAt: 3, updatedAt: 3 }],
        chunks: [{ type: 'chunk', sessionId: V1_SESSION, messageId: 'r2', seq: 6, chunk: 'x', is_last: false }],
      });
      expect((await store.chunksAfter(V1_SESSION, 0)).map((chunk) => chunk.seq)).toEqual([6]);
      expect(await store.claim!(V1_SESSION, 1)).toEqual({ claimed: true, fence: 1 });
    } finally {
      await store.close();
    }
  });

  it('fail to open with an error, promptly, when the server cannot be reached', async () => {
    await expect(openPostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/none', timeoutMs: 500 })).rejects.toThrow();
  });
});
