import type { KeyLimits, StoredKey } from '../../domain/apiKeys.ts';
import { LIMIT_NAMES } from '../../domain/apiKeys.ts';

/** A row of `api_keys` as both SQL stores read it (BIGINT may arrive as a string, JSONB parsed). */
export interface KeyRow {
  id: string;
  name: string;
  key_hash: string;
  limits: string | Record<string, unknown>;
  created_at: number | string;
  last_used_at: number | string | null;
  revoked_at: number | string | null;
}

/** Only known, numeric limits are read back: a row written by a newer build keeps its other fields to itself. */
function limitsOf(raw: string | Record<string, unknown>): KeyLimits {
  const parsed = typeof raw === 'string' ? (JSON.parse(raw) as Record<string, unknown>) : raw;
  const limits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    const value = parsed[name];
    if (typeof value === 'number' && Number.isFinite(value)) limits[name] = value;
  }
  return limits;
}

export function toStoredKey(row: KeyRow): StoredKey {
  return {
    id: row.id,
    name: row.name,
    hash: row.key_hash,
    limits: limitsOf(row.limits),
    createdAt: Number(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}
