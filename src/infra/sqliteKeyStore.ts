import type Database from 'better-sqlite3';
import type { KeyStore } from '../domain/apiKeys.ts';
import { toStoredKey } from './sql/keyRows.ts';
import type { KeyRow } from './sql/keyRows.ts';
import { guarded } from './storeErrors.ts';

/** The `api_keys` table of the SQLite store (same file, same connection). */
export function createSqliteKeyStore(db: Database.Database): KeyStore {
  const statements = {
    insert: db.prepare(
      `INSERT INTO api_keys (id, name, key_hash, limits, created_at, last_used_at, revoked_at)
       VALUES (@id, @name, @key_hash, @limits, @created_at, @last_used_at, @revoked_at)`,
    ),
    byHash: db.prepare('SELECT * FROM api_keys WHERE key_hash = ?'),
    byId: db.prepare('SELECT * FROM api_keys WHERE id = ?'),
    active: db.prepare('SELECT * FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id'),
    rename: db.prepare('UPDATE api_keys SET name = ? WHERE id = ? AND revoked_at IS NULL'),
    setLimits: db.prepare('UPDATE api_keys SET limits = ? WHERE id = ? AND revoked_at IS NULL'),
    revoke: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
    touch: db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)'),
    anyActive: db.prepare('SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1'),
  };
  const update = db.transaction((id: string, change: { name?: string; limits?: object }) => {
    if (change.name !== undefined) statements.rename.run(change.name, id);
    if (change.limits !== undefined) statements.setLimits.run(JSON.stringify(change.limits), id);
    const row = statements.byId.get(id) as KeyRow | undefined;
    return row && row.revoked_at === null ? toStoredKey(row) : undefined;
  });

  return {
    create: (key) =>
      guarded(() => {
        statements.insert.run({
          id: key.id,
          name: key.name,
          key_hash: key.hash,
          limits: JSON.stringify(key.limits),
          created_at: key.createdAt,
          last_used_at: key.lastUsedAt,
          revoked_at: key.revokedAt,
        });
      }),
    findByHash: (hash) =>
      guarded(() => {
        const row = statements.byHash.get(hash) as KeyRow | undefined;
        return row ? toStoredKey(row) : undefined;
      }),
    findByIds: (ids) =>
      guarded(() => ids.flatMap((id) => {
        const row = statements.byId.get(id) as KeyRow | undefined;
        return row ? [toStoredKey(row)] : [];
      })),
    listActive: () => guarded(() => (statements.active.all() as KeyRow[]).map(toStoredKey)),
    update: (id, change) => guarded(() => update(id, change)),
    revoke: (id, at) => guarded(() => statements.revoke.run(at, id).changes > 0),
    touch: (id, at) =>
      guarded(() => {
        statements.touch.run(at, id, at);
      }),
    hasActive: () => guarded(() => statements.anyActive.get() !== undefined),
  };
}
