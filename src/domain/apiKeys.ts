/**
 * API keys: who may use the gateway, and how much. A key is a random bearer
 * secret shown once at creation; stores keep only its hash. Sessions belong
 * to the key that created them (see SessionDetails.owner).
 */

/** What a key may do per minute / at once; each field 0 = no limit, absent = the node's default (flags). */
export interface KeyLimits {
  /** User messages per minute, across every session of the key. */
  readonly messagesPerMinute?: number;
  /** Sessions of the key active (not passivated) at once on this node. */
  readonly liveSessions?: number;
  /** Open WebSocket, SSE and streamed `/v1` connections of the key on this node. */
  readonly connections?: number;
  /** New sessions per minute. */
  readonly sessionsPerMinute?: number;
  // Later issues add more (tokensPerDay, models): stores keep limits as JSON, so no migration is needed.
}

/** Every limit decided: a key's own value, else the node's default. */
export type ResolvedLimits = { readonly [Name in keyof Required<KeyLimits>]: number };

export const LIMIT_NAMES = ['messagesPerMinute', 'liveSessions', 'connections', 'sessionsPerMinute'] as const satisfies readonly (keyof KeyLimits)[];

/** A key's own values over the defaults. */
export function resolveLimits(own: KeyLimits, defaults: ResolvedLimits): ResolvedLimits {
  return {
    messagesPerMinute: own.messagesPerMinute ?? defaults.messagesPerMinute,
    liveSessions: own.liveSessions ?? defaults.liveSessions,
    connections: own.connections ?? defaults.connections,
    sessionsPerMinute: own.sessionsPerMinute ?? defaults.sessionsPerMinute,
  };
}

/**
 * A change of limits: a number sets the key's own value, `null` drops it (the
 * default applies again), an absent field stays as it was.
 */
export type LimitsPatch = { readonly [Name in keyof KeyLimits]?: number | null };

export function patchLimits(own: KeyLimits, patch: LimitsPatch): KeyLimits {
  const next: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    const value = name in patch ? patch[name] : own[name];
    if (typeof value === 'number') next[name] = value;
  }
  return next;
}

/** A key as stores keep it: never the key itself, only its hash. */
export interface StoredKey {
  readonly id: string;
  readonly name: string;
  /** SHA-256 of the key, hex. */
  readonly hash: string;
  readonly limits: KeyLimits;
  readonly createdAt: number;
  /** Last request made with it (written at most once a minute); null when never used. */
  readonly lastUsedAt: number | null;
  /** When it was revoked; a revoked key is kept so its sessions still show whose they were. */
  readonly revokedAt: number | null;
}

/** A key with what the admin API may show of it. */
export interface KeyView {
  readonly id: string;
  readonly name: string;
  readonly limits: KeyLimits;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}

export function viewOf(key: StoredKey): KeyView {
  return { id: key.id, name: key.name, limits: key.limits, createdAt: key.createdAt, lastUsedAt: key.lastUsedAt };
}

/**
 * Port: where keys live (each session store has one, in the same database).
 * Failures reject with ChatError `store_unavailable`.
 */
export interface KeyStore {
  create(key: StoredKey): Promise<void>;
  /** The key, revoked or not, with this hash. */
  findByHash(hash: string): Promise<StoredKey | undefined>;
  /** Keys with these ids (revoked ones included); missing ids are left out. */
  findByIds(ids: readonly string[]): Promise<StoredKey[]>;
  /** Keys not revoked, oldest first. */
  listActive(): Promise<StoredKey[]>;
  /** Changes the name and/or limits of a key not revoked; undefined when there is none. */
  update(id: string, change: { name?: string; limits?: KeyLimits }): Promise<StoredKey | undefined>;
  /** Revokes a key; false when there was no such key not yet revoked. */
  revoke(id: string, at: number): Promise<boolean>;
  /** Records a use (never moves back in time). */
  touch(id: string, at: number): Promise<void>;
  /** True when at least one key not revoked exists (start-up creates one otherwise). */
  hasActive(): Promise<boolean>;
}
