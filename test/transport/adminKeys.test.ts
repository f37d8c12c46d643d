import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../src/infra/postgresStore.ts';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { api, startServer } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';
import { ADMIN_TOKEN, admin } from '../support/keys.ts';
import { dropSchemas, postgresReachable, TEST_DATABASE_URL, uniqueSchema } from '../support/postgres.ts';

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-keys-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const reachable = await postgresReachable();
const schemas: string[] = [];
afterAll(() => (reachable ? dropSchemas(schemas) : undefined));

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('the admin API /admin/keys', () => {
  it('creates (the only answer with the key), lists without key material, renames, changes and resets limits, revokes', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    const created = await api(running.url, 'POST', '/admin/keys', { name: 'alice', limits: { messagesPerMinute: 5, connections: 0 } }, admin());
    expect(created.status).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(['id', 'key', 'name']);
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^key_[\w-]{12}$/), name: 'alice', key: expect.stringMatching(/^llmc_[\w-]{43}$/) });
    expect(created.headers.get('location')).toBe(`/admin/keys/${String(created.body['id'])}`);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const key = String(created.body['key']);
    const id = String(created.body['id']);

    const before = await api(running.url, 'GET', '/admin/keys', undefined, admin());
    expect(before.status).toBe(200);
    expect(before.body).toEqual({ keys: [{ id, name: 'alice', limits: { messagesPerMinute: 5, connections: 0 }, createdAt: expect.any(Number), lastUsedAt: null }] });
    expect(JSON.stringify(before.body)).not.toContain(key.slice(5));

    // A use shows as "last used".
    expect((await api(running.url, 'GET', '/api/sessions', undefined, { authorization: `Bearer ${key}` })).status).toBe(200);
    const used = (await api(running.url, 'GET', '/admin/keys', undefined, admin())).body['keys'] as Json[];
    expect(used[0]?.['lastUsedAt']).toEqual(expect.any(Number));

    const patched = await api(running.url, 'PATCH', `/admin/keys/${id}`, { name: 'alice (laptop)', limits: { liveSessions: 3, connections: null } }, admin());
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id, name: 'alice (laptop)', limits: { messagesPerMinute: 5, liveSessions: 3 } });
    expect(patched.body['limits']).not.toHaveProperty('connections');
    expect(patched.body).not.toHaveProperty('key');

    expect((await api(running.url, 'DELETE', `/admin/keys/${id}`, undefined, admin())).status).toBe(204);
    expect((await api(running.url, 'GET', '/admin/keys', undefined, admin())).body).toEqual({ keys: [] });
    expect((await api(running.url, 'GET', '/api/sessions', undefined, { authorization: `Bearer ${key}` })).status).toBe(401);
    expect((await api(running.url, 'DELETE', `/admin/keys/${id}`, undefined, admin())).status).toBe(404);
    expect((await api(running.url, 'PATCH', `/admin/keys/${id}`, { name: 'back?' }, admin())).status).toBe(404);
  });

  it('refuses bad input with 400 bad_request and a message that says what is expected', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    for (const body of [{}, { name: '' }, { name: 'x'.repeat(101) }, { name: 'a', limits: { messagesPerMinute: -1 } }, { name: 'a', limits: { tokensPerDay: 5 } }, { name: 'a', limits: { connections: 1.5 } }, { name: 'a', extra: 1 }, '{"name":']) {
      const response = await api(running.url, 'POST', '/admin/keys', body, admin());
      expect([JSON.stringify(body), response.status, (response.body['error'] as Json)['code']]).toEqual([JSON.stringify(body), 400, 'bad_request']);
    }
    const withHint = await api(running.url, 'POST', '/admin/keys', { name: 'a', limits: { nope: 1 } }, admin());
    expect(String((withHint.body['error'] as Json)['message'])).toContain('messagesPerMinute, liveSessions, connections and sessionsPerMinute');
    expect((await api(running.url, 'PATCH', '/admin/keys/not-a-key-id', { name: 'x' }, admin())).status).toBe(404);
    const id = String((await api(running.url, 'POST', '/admin/keys', { name: 'ok' }, admin())).body['id']);
    expect((await api(running.url, 'PATCH', `/admin/keys/${id}`, { limits: { liveSessions: 'many' } }, admin())).status).toBe(400);
  });

  it('answers only to the admin token: 401 without it, with a wrong one, or with an API key', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    const key = String((await api(running.url, 'POST', '/admin/keys', { name: 'k' }, admin())).body['key']);
    const offered: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: `Bearer ${key}` }, { cookie: `llm_chat_key=${key}` }];
    for (const headers of offered) {
      for (const [method, path, body] of [
        ['GET', '/admin/keys', undefined],
        ['POST', '/admin/keys', { name: 'sneaky' }],
        ['DELETE', '/admin/keys/key_aaaaaaaaaaaa', undefined],
      ] as const) {
        const response = await api(running.url, method, path, body, headers);
        expect([method, response.status, response.body]).toEqual([method, 401, { error: { code: 'unauthorized', message: 'A valid admin token is required.' } }]);
      }
    }
    expect(((await api(running.url, 'GET', '/admin/keys', undefined, admin())).body['keys'] as Json[]).map((k) => k['name'])).toEqual(['k']);
  });

  it('is not served without an admin token, nor under --auth none', async () => {
    running = await startServer({ auth: { mode: 'keys' } });
    expect((await api(running.url, 'GET', '/admin/keys', undefined, admin())).status).toBe(404);
    await running.close();
    running = await startServer({ auth: { mode: 'none', adminToken: ADMIN_TOKEN } });
    expect((await api(running.url, 'GET', '/admin/keys', undefined, admin())).status).toBe(404);
  });
});

describe('keys are stored hashed (the table, read directly)', () => {
  it('SQLite: api_keys holds the SHA-256 of the key, never the key', async () => {
    const path = join(directory, 'keys.sqlite');
    running = await startServer({ store: openSqliteStore({ path }), auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    const created = await api(running.url, 'POST', '/admin/keys', { name: 'stored' }, admin());
    const key = String(created.body['key']);
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare('SELECT * FROM api_keys').all() as Record<string, unknown>[];
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ id: created.body['id'], name: 'stored', key_hash: sha256(key), revoked_at: null });
      const everything = JSON.stringify(rows);
      expect(everything).not.toContain(key);
      expect(everything).not.toContain(key.slice(5, 25));
    } finally {
      db.close();
    }
    // The sessions it makes carry its id.
    const sessionId = String((await api(running.url, 'POST', '/api/sessions', {}, { authorization: `Bearer ${key}` })).body['sessionId']);
    const check = new Database(path, { readonly: true });
    try {
      expect(check.prepare('SELECT owner_key_id FROM sessions WHERE id = ?').get(sessionId)).toEqual({ owner_key_id: created.body['id'] });
    } finally {
      check.close();
    }
  });

  it.skipIf(!reachable)('PostgreSQL: api_keys holds the SHA-256 of the key, never the key; revoked keys stay marked', async () => {
    const schema = uniqueSchema('llm_chat_keys');
    schemas.push(schema);
    running = await startServer({ store: await openPostgresStore({ connectionString: TEST_DATABASE_URL, schema }), auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    const created = await api(running.url, 'POST', '/admin/keys', { name: 'pg', limits: { sessionsPerMinute: 7 } }, admin());
    const key = String(created.body['key']);
    expect((await api(running.url, 'DELETE', `/admin/keys/${String(created.body['id'])}`, undefined, admin())).status).toBe(204);
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT * FROM "${schema}".api_keys`);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ name: 'pg', key_hash: sha256(key), limits: { sessionsPerMinute: 7 } });
      expect(rows[0].revoked_at).not.toBeNull();
      expect(JSON.stringify(rows)).not.toContain(key);
    } finally {
      await client.end();
    }
  });
});
