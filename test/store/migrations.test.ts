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
// Versions are numbered by task (3 and 4 came from parallel work): the upgrade tests start from version 2, before both.
const PREVIOUS = 2;
const PG_PREVIOUS = 2;
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-migrations-'));
let files = 0;
const tempFile = () => join(directory, `db-${++files}.sqlite`);
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function migrateSqliteVersions(path: string): { version: number }[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
  } finally {
    db.close();
  }
}

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

  it('upgrade a database from version 2 (before the chunk-number mark, conversation order and owners) with its data intact', async () => {
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
    // Rows written before the chunk-number mark existed get the old safety margin, once.
    expect(loaded?.seqReserved).toBe(5 + 1_000_000);
    expect(loaded?.messages.map((m) => [m.id, m.content, m.usage])).toEqual([
      ['u1', 'hello', undefined],
      ['r1', 'hi there', undefined],
    ]);
    // The old order (of writing) becomes the conversation order.
    expect(loaded!.messages[0]!.order).toBeLessThan(loaded!.messages[1]!.order);
    // What the new version added works on the old data.
    await store.save({
      sessionId: V1_SESSION,
      lastSeq: 6,
      seqReserved: 2_000_000,
      lastActiveAt: 3,
      stopped: false,
      messages: [
        { id: 'r2', order: loaded!.messages[1]!.order + 2, role: 'assistant', content: 'x', status: 'streaming', createdAt: 3, updatedAt: 3, usage: { inputTokens: 1, outputTokens: 2 } },
      ],
      chunks: [{ type: 'chunk', sessionId: V1_SESSION, messageId: 'r2', seq: 6, chunk: 'x', is_last: false }],
    });
    expect((await store.chunksAfter(V1_SESSION, 0)).map((chunk) => chunk.seq)).toEqual([6]);
    expect((await store.load(V1_SESSION))?.messages[2]?.usage).toEqual({ inputTokens: 1, outputTokens: 2 });
    // Structured messages (version 5) on the old data.
    const call = { id: 'call_1', type: 'function' as const, function: { name: 'f', arguments: '{}' } };
    await store.save({
      sessionId: V1_SESSION,
      lastSeq: 6,
      seqReserved: 2_000_000,
      lastActiveAt: 4,
      stopped: false,
      messages: [{ id: 'r2', order: loaded!.messages[1]!.order + 2, role: 'assistant', content: 'x', status: 'complete', createdAt: 3, updatedAt: 4, toolCalls: [call], finishReason: 'tool_calls', model: 'sim' }],
    });
    expect((await store.load(V1_SESSION))?.messages[2]).toMatchObject({ toolCalls: [call], finishReason: 'tool_calls', model: 'sim' });
    // A session from before keys belongs to nobody: no key lists it, and the key table is there.
    expect(loaded?.owner).toBeUndefined();
    expect((await store.listSessions({ limit: 10, owner: 'key_any' })).sessions).toEqual([]);
    expect((await store.listSessions({ limit: 10 })).sessions.map((session) => [session.sessionId, session.preview])).toEqual([[V1_SESSION, 'hello']]);
    expect(await store.keys?.hasActive()).toBe(false);
    await store.close();
  });

  it('upgrade a database made with version 4 before version 3 (a build of the identity work alone, 1, 2 and 4): 3 is applied, owners and keys kept', async () => {
    const path = tempFile();
    const db = new Database(path);
    expect(migrateSqlite(db, SQLITE_MIGRATIONS.filter((migration) => migration.version !== 3 && migration.version <= 4))).toBe(4);
    db.prepare("INSERT INTO sessions (id, created_at, last_active_at, last_seq, stopped, owner_key_id) VALUES (?, 1, 2, 5, 0, 'key_one')").run(V1_SESSION);
    db.prepare(
      `INSERT INTO messages (session_id, id, role, content, status, created_at, updated_at) VALUES
       (?, 'u1', 'user', 'hello', 'complete', 1, 1), (?, 'r1', 'assistant', 'hi there', 'complete', 1, 2)`,
    ).run(V1_SESSION, V1_SESSION);
    db.prepare("INSERT INTO api_keys (id, name, key_hash, created_at) VALUES ('key_one', 'one', ?, 1)").run('a'.repeat(64));
    db.close();

    const store = openSqliteStore({ path });
    const versions = migrateSqliteVersions(path).map((row) => row.version);
    expect(versions).toEqual(SQLITE_MIGRATIONS.map((migration) => migration.version));
    const loaded = await store.load(V1_SESSION);
    expect(loaded?.owner).toBe('key_one');
    expect(loaded?.seqReserved).toBe(5 + 1_000_000);
    expect(loaded!.messages.map((message) => message.id)).toEqual(['u1', 'r1']);
    expect(loaded!.messages[0]!.order).toBeLessThan(loaded!.messages[1]!.order);
    expect((await store.listSessions({ limit: 10, owner: 'key_one' })).sessions.map((session) => session.sessionId)).toEqual([V1_SESSION]);
    expect((await store.keys?.findByHash('a'.repeat(64)))?.name).toBe('one');
    await store.close();
  });

  it('apply a step missing below a later one (steps are numbered by the change that made them)', () => {
    const db = new Database(tempFile());
    const step = (version: number) => ({ version, name: `step ${version}`, sql: `CREATE TABLE step_${version} (id INTEGER)` });
    expect(migrateSqlite(db, [step(1), step(2), step(5)])).toBe(5);
    expect(migrateSqlite(db, [step(1), step(2), step(3), step(5)])).toBe(5);
    const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
    expect(versions.map((row) => row.version)).toEqual([1, 2, 3, 5]);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'step_3'").get()).toBeDefined();
    db.close();
  });

  it('apply a step numbered below the newest applied one (a gap filled by a later merge), keeping the rest', () => {
    const db = new Database(tempFile());
    const withoutTwo = SQLITE_MIGRATIONS.filter((migration) => migration.version !== 2 && migration.version <= 2).concat({
      version: 5,
      name: 'a later step that touches nothing',
      sql: 'CREATE TABLE later_step (id INTEGER)',
    });
    expect(migrateSqlite(db, withoutTwo)).toBe(5);
    // A newer build knows version 2 as well: it is applied although 5 already is.
    const all = [...SQLITE_MIGRATIONS.filter((migration) => migration.version <= 2), withoutTwo.at(-1)!];
    expect(migrateSqlite(db, all)).toBe(5);
    const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
    expect(versions.map((row) => row.version)).toEqual([1, 2, 5]);
    expect(() => db.prepare('SELECT input_tokens FROM messages').all()).not.toThrow();
    db.close();
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

  it('upgrade a schema from version 2 (before the chunk-number mark, conversation order and owners) with its data intact', async () => {
    const name = schema();
    const old = await openPostgresStore({ connectionString: TEST_DATABASE_URL, schema: name, migrateTo: PG_PREVIOUS });
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
      expect(loaded?.seqReserved).toBe(5 + 1_000_000);
      expect(loaded!.messages[0]!.order).toBeLessThan(loaded!.messages[1]!.order);
      await store.save({
        sessionId: V1_SESSION,
        lastSeq: 6,
        seqReserved: 2_000_000,
        lastActiveAt: 3,
        stopped: false,
        messages: [{ id: 'r2', order: loaded!.messages[1]!.order + 2, role: 'assistant', content: 'x', status: 'streaming', createdAt: 3, updatedAt: 3 }],
        chunks: [{ type: 'chunk', sessionId: V1_SESSION, messageId: 'r2', seq: 6, chunk: 'x', is_last: false }],
      });
      expect((await store.chunksAfter(V1_SESSION, 0)).map((chunk) => chunk.seq)).toEqual([6]);
      expect(loaded?.owner).toBeUndefined();
      expect((await store.listSessions({ limit: 10, owner: 'key_any' })).sessions).toEqual([]);
      expect(await store.keys?.hasActive()).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('upgrade a schema made with version 4 before version 3 (a build of the identity work alone, 1, 2 and 4): 3 is applied, owners and keys kept', async () => {
    const name = schema();
    const pool = createPostgresPool({ connectionString: TEST_DATABASE_URL, schema: name });
    try {
      expect(await migratePostgres(pool, name, POSTGRES_MIGRATIONS.filter((migration) => migration.version !== 3 && migration.version <= 4))).toBe(4);
      await pool.query("INSERT INTO sessions (id, created_at, last_active_at, last_seq, stopped, owner_key_id) VALUES ($1, 1, 2, 5, false, 'key_one')", [V1_SESSION]);
      await pool.query(
        `INSERT INTO messages (session_id, id, role, content, status, created_at, updated_at) VALUES
         ($1, 'u1', 'user', 'hello', 'complete', 1, 1), ($1, 'r1', 'assistant', 'hi there', 'complete', 1, 2)`,
        [V1_SESSION],
      );
      await pool.query("INSERT INTO api_keys (id, name, key_hash, created_at) VALUES ('key_one', 'one', $1, 1)", ['a'.repeat(64)]);
    } finally {
      await pool.end();
    }
    const store = await openPostgresStore({ connectionString: TEST_DATABASE_URL, schema: name });
    try {
      const loaded = await store.load(V1_SESSION);
      expect(loaded?.owner).toBe('key_one');
      expect(loaded?.seqReserved).toBe(5 + 1_000_000);
      expect(loaded!.messages.map((message) => message.id)).toEqual(['u1', 'r1']);
      expect(loaded!.messages[0]!.order).toBeLessThan(loaded!.messages[1]!.order);
      expect((await store.listSessions({ limit: 10, owner: 'key_one' })).sessions.map((session) => session.sessionId)).toEqual([V1_SESSION]);
      expect((await store.keys?.findByHash('a'.repeat(64)))?.name).toBe('one');
    } finally {
      await store.close();
    }
    const check = createPostgresPool({ connectionString: TEST_DATABASE_URL, schema: name });
    try {
      expect((await check.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).rows.map((row) => row.version)).toEqual(POSTGRES_MIGRATIONS.map((migration) => migration.version));
    } finally {
      await check.end();
    }
  });

  it('fail to open with an error, promptly, when the server cannot be reached', async () => {
    await expect(openPostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/none', timeoutMs: 500 })).rejects.toThrow();
  });
});
