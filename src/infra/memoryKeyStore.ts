import type { KeyStore, StoredKey } from '../domain/apiKeys.ts';

/** Keys in process memory: kept for the run (`--store memory`, tests). */
export function createMemoryKeyStore(): KeyStore {
  const keys = new Map<string, StoredKey>();
  const byHash = new Map<string, string>();
  const copy = (key: StoredKey): StoredKey => ({ ...key, limits: { ...key.limits } });

  return {
    async create(key) {
      if (keys.has(key.id) || byHash.has(key.hash)) throw new Error('duplicate key');
      keys.set(key.id, copy(key));
      byHash.set(key.hash, key.id);
    },
    async findByHash(hash) {
      const id = byHash.get(hash);
      const key = id === undefined ? undefined : keys.get(id);
      return key ? copy(key) : undefined;
    },
    async findByIds(ids) {
      return ids.flatMap((id) => {
        const key = keys.get(id);
        return key ? [copy(key)] : [];
      });
    },
    async listActive() {
      return [...keys.values()].filter((key) => key.revokedAt === null).map(copy);
    },
    async update(id, change) {
      const key = keys.get(id);
      if (!key || key.revokedAt !== null) return undefined;
      const next: StoredKey = { ...key, ...(change.name !== undefined ? { name: change.name } : {}), ...(change.limits ? { limits: { ...change.limits } } : {}) };
      keys.set(id, next);
      return copy(next);
    },
    async revoke(id, at) {
      const key = keys.get(id);
      if (!key || key.revokedAt !== null) return false;
      keys.set(id, { ...key, revokedAt: at });
      return true;
    },
    async touch(id, at) {
      const key = keys.get(id);
      if (key && (key.lastUsedAt === null || key.lastUsedAt < at)) keys.set(id, { ...key, lastUsedAt: at });
    },
    async hasActive() {
      for (const key of keys.values()) if (key.revokedAt === null) return true;
      return false;
    },
  };
}
