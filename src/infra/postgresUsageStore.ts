import type { Pool } from 'pg';
import { sumUsage } from '../domain/tokenUsage.ts';
import type { UsageStore } from '../domain/tokenUsage.ts';
import { guarded } from './storeErrors.ts';

interface UsageRow {
  key_id: string;
  day: string;
  model: string;
  input_tokens: string | number;
  output_tokens: string | number;
}

/**
 * Spent tokens in PostgreSQL (table `token_usage`, migration 5). One
 * statement adds a whole batch (`unnest`), and each row is an atomic
 * increment, so nodes sharing the database never lose each other's counts.
 */
export function createPostgresUsageStore(pool: Pool): UsageStore {
  return {
    add: (entries) =>
      guarded(async () => {
        const rows = sumUsage(entries);
        if (rows.length === 0) return;
        await pool.query(
          `INSERT INTO token_usage AS t (key_id, day, model, input_tokens, output_tokens)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
           ON CONFLICT (key_id, day, model) DO UPDATE SET input_tokens = t.input_tokens + EXCLUDED.input_tokens,
             output_tokens = t.output_tokens + EXCLUDED.output_tokens`,
          [rows.map((r) => r.keyId), rows.map((r) => r.day), rows.map((r) => r.model), rows.map((r) => r.inputTokens), rows.map((r) => r.outputTokens)],
        );
      }),
    list: ({ keyId, fromDay, toDay }) =>
      guarded(async () => {
        const { rows } =
          keyId === undefined
            ? await pool.query<UsageRow>('SELECT * FROM token_usage WHERE day BETWEEN $1 AND $2 ORDER BY day, key_id, model', [fromDay, toDay])
            : await pool.query<UsageRow>('SELECT * FROM token_usage WHERE key_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day, key_id, model', [keyId, fromDay, toDay]);
        return rows.map((row) => ({ keyId: row.key_id, day: row.day, model: row.model, inputTokens: Number(row.input_tokens), outputTokens: Number(row.output_tokens) }));
      }),
  };
}
