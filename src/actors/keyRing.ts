import type { KeyLimits, KeyStore, KeyView, LimitsPatch, StoredKey } from '../domain/apiKeys.ts';
import { patchLimits, viewOf } from '../domain/apiKeys.ts';
import type { Clock, Logger, Unsubscribe } from '../domain/ports.ts';
import { hashApiKey, looksLikeApiKey, newApiKey, newKeyId } from '../infra/apiKeyCodec.ts';

/** A key that authenticated: what the edge needs to decide. */
export interface AuthenticatedKey {
  readonly id: string;
  readonly name: string;
  readonly limits: KeyLimits;
}

export interface KeyRingOptions {
  store: KeyStore;
  clock: Clock;
  logger: Logger;
  /**
   * How long a key that authenticated is trusted without asking the store
   * again (default 1 s). A revocation on this node takes effect at once; one
   * made by another node sharing the database, within this long.
   */
  cacheMs?: number;
  /** Keys held in the cache at most (default 10,000). */
  cacheSize?: number;
  /** `last used` is written at most this often per key (default 60 s). */
  touchEveryMs?: number;
}

export interface KeyRing {
  /** The key behind a presented secret; undefined when unknown or revoked. Throws `store_unavailable`. */
  authenticate(presented: string): Promise<AuthenticatedKey | undefined>;
  /** Makes a key; the secret is returned here and never again. */
  create(input: { name: string; limits?: KeyLimits }): Promise<{ key: string; view: KeyView }>;
  /** Keys not revoked, oldest first, never with their secret. */
  list(): Promise<KeyView[]>;
  update(id: string, change: { name?: string; limits?: LimitsPatch }): Promise<KeyView | undefined>;
  /** Revokes a key: every later request with it is refused, and `onRevoked` listeners close what it holds open. */
  revoke(id: string): Promise<boolean>;
  /** Told of every revocation made on this node (and of those found by `revokedAmong`). */
  onRevoked(listener: (keyId: string) => void): Unsubscribe;
  /** Of these key ids, the ones revoked meanwhile (by any node); their listeners are told. */
  checkRevoked(ids: readonly string[]): Promise<string[]>;
  /** Names of these key ids (revoked ones too), for the inspector. */
  names(ids: readonly string[]): Promise<Map<string, string>>;
  hasActive(): Promise<boolean>;
}

interface Cached {
  key: AuthenticatedKey;
  checkedAt: number;
}

const toAuthenticated = (stored: StoredKey): AuthenticatedKey => ({ id: stored.id, name: stored.name, limits: stored.limits });

/**
 * API keys behind a cache: an authentication check is a SHA-256 and a map
 * lookup while the key is cached, one indexed query otherwise.
 */
export function createKeyRing(options: KeyRingOptions): KeyRing {
  const { store, clock, logger } = options;
  const cacheMs = options.cacheMs ?? 1000;
  const cacheSize = options.cacheSize ?? 10_000;
  const touchEveryMs = options.touchEveryMs ?? 60_000;
  const byHash = new Map<string, Cached>();
  const lookups = new Map<string, Promise<StoredKey | undefined>>();
  const lastUse = new Map<string, number>();
  const lastWritten = new Map<string, number>();
  const knownNames = new Map<string, string>();
  const listeners = new Set<(keyId: string) => void>();

  const forget = (keyId: string) => {
    for (const [hash, cached] of byHash) if (cached.key.id === keyId) byHash.delete(hash);
  };

  const revoked = (keyId: string) => {
    forget(keyId);
    lastUse.delete(keyId);
    lastWritten.delete(keyId);
    for (const listener of [...listeners]) {
      try {
        listener(keyId);
      } catch (error) {
        logger.error({ keyId, err: String(error) }, 'revocation listener failed');
      }
    }
  };

  const recordUse = (keyId: string, now: number) => {
    lastUse.set(keyId, now);
    if (now - (lastWritten.get(keyId) ?? Number.NEGATIVE_INFINITY) < touchEveryMs) return;
    lastWritten.set(keyId, now);
    store.touch(keyId, now).catch((error: unknown) => logger.warn({ keyId, err: String(error) }, 'could not record the use of a key'));
  };

  const lookUp = (hash: string): Promise<StoredKey | undefined> => {
    const pending = lookups.get(hash);
    if (pending) return pending;
    const lookup = store.findByHash(hash).finally(() => lookups.delete(hash));
    lookups.set(hash, lookup);
    return lookup;
  };

  const withLastUse = (view: KeyView): KeyView => {
    const seen = lastUse.get(view.id);
    return seen !== undefined && (view.lastUsedAt === null || seen > view.lastUsedAt) ? { ...view, lastUsedAt: seen } : view;
  };

  return {
    async authenticate(presented) {
      if (!looksLikeApiKey(presented)) return undefined;
      const hash = hashApiKey(presented);
      const now = clock.now();
      const cached = byHash.get(hash);
      if (cached && now - cached.checkedAt < cacheMs) {
        recordUse(cached.key.id, now);
        return cached.key;
      }
      const stored = await lookUp(hash);
      if (!stored || stored.revokedAt !== null) {
        byHash.delete(hash);
        return undefined;
      }
      const key = toAuthenticated(stored);
      byHash.delete(hash); // re-inserted last: the Map's order is the eviction order
      byHash.set(hash, { key, checkedAt: now });
      if (byHash.size > cacheSize) byHash.delete(byHash.keys().next().value!);
      knownNames.set(key.id, key.name);
      recordUse(key.id, now);
      return key;
    },

    async create({ name, limits = {} }) {
      const key = newApiKey();
      const stored: StoredKey = { id: newKeyId(), name, hash: hashApiKey(key), limits, createdAt: clock.now(), lastUsedAt: null, revokedAt: null };
      await store.create(stored);
      knownNames.set(stored.id, name);
      return { key, view: viewOf(stored) };
    },

    async list() {
      return (await store.listActive()).map((stored) => withLastUse(viewOf(stored)));
    },

    async update(id, change) {
      const next: { name?: string; limits?: KeyLimits } = {};
      if (change.name !== undefined) next.name = change.name;
      if (change.limits !== undefined) {
        const [current] = await store.findByIds([id]);
        if (!current || current.revokedAt !== null) return undefined;
        next.limits = patchLimits(current.limits, change.limits);
      }
      const updated = await store.update(id, next);
      if (!updated) return undefined;
      forget(id); // the next request sees the new limits
      knownNames.set(id, updated.name);
      return withLastUse(viewOf(updated));
    },

    async revoke(id) {
      const done = await store.revoke(id, clock.now());
      if (done) revoked(id);
      return done;
    },

    onRevoked(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async checkRevoked(ids) {
      if (ids.length === 0) return [];
      const found = new Map((await store.findByIds(ids)).map((stored) => [stored.id, stored]));
      const gone = ids.filter((id) => {
        const stored = found.get(id);
        return !stored || stored.revokedAt !== null;
      });
      for (const id of gone) revoked(id);
      return gone;
    },

    async names(ids) {
      const missing = [...new Set(ids)].filter((id) => !knownNames.has(id));
      if (missing.length > 0) for (const stored of await store.findByIds(missing)) knownNames.set(stored.id, stored.name);
      return new Map(ids.flatMap((id) => (knownNames.has(id) ? [[id, knownNames.get(id)!] as const] : [])));
    },

    hasActive: () => store.hasActive(),
  };
}
