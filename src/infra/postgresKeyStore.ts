import type { Pool } from 'pg';
import type { KeyStore } from '../domain/apiKeys.ts';
import { toStoredKey } from './sql/keyRows.ts';
import type { KeyRow } from './sql/keyRows.ts';
import { guarded } from './storeErrors.ts';

/** The `api_keys` table of the PostgreSQL store (same pool), shared by every node. */
export function createPostgresKeyStore(pool: Pool): KeyStore {
  return {
    create: (key) =>
      guarded(async () => {
        await pool.query(
          `INSERT INTO api_keys (id, name, key_hash, limits, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [key.id, key.name, key.hash, JSON.stringify(key.limits), key.createdAt, key.lastUsedAt, key.revokedAt],
        );
      }),
    findByHash: (hash) =>
      guarded(async () => {
        const { rows } = await pool.query<KeyRow>('SELECT * FROM api_keys WHERE key_hash = $1', [hash]);
        return rows[0] ? toStoredKey(rows[0]) : undefined;
      }),
    findByIds: (ids) =>
      guarded(async () => {
        if (ids.length === 0) return [];
        const { rows } = await pool.query<KeyRow>('SELECT * FROM api_keys WHERE id = ANY($1::text[])', [ids]);
        return rows.map(toStoredKey);
      }),
    listActive: () =>
      guarded(async () => (await pool.query<KeyRow>('SELECT * FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id')).rows.map(toStoredKey)),
    update: (id, change) =>
      guarded(async () => {
        // One statement: a concurrent revoke either wins (no row) or comes after.
        const { rows } = await pool.query<KeyRow>(
          `UPDATE api_keys SET name = COALESCE($2, name), limits = COALESCE($3::jsonb, limits)
           WHERE id = $1 AND revoked_at IS NULL RETURNING *`,
          [id, change.name ?? null, change.limits === undefined ? null : JSON.stringify(change.limits)],
        );
        return rows[0] ? toStoredKey(rows[0]) : undefined;
      }),
    revoke: (id, at) =>
      guarded(async () => ((await pool.query('UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [id, at])).rowCount ?? 0) > 0),
    touch: (id, at) =>
      guarded(async () => {
        await pool.query('UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)', [id, at]);
      }),
    hasActive: () => guarded(async () => ((await pool.query('SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1')).rowCount ?? 0) > 0),
  };
}
