import type Database from 'better-sqlite3';
import { sumUsage } from '../domain/tokenUsage.ts';
import type { UsageEntry, UsageStore } from '../domain/tokenUsage.ts';
import { guarded } from './storeErrors.ts';

interface UsageRow {
  key_id: string;
  day: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
}

const toEntry = (row: UsageRow): UsageEntry => ({
  keyId: row.key_id,
  day: row.day,
  model: row.model,
  inputTokens: Number(row.input_tokens),
  outputTokens: Number(row.output_tokens),
});

/** Spent tokens in the SQLite file (table `token_usage`, migration 5); increments add up in one transaction. */
export function createSqliteUsageStore(db: Database.Database): UsageStore {
  const add = db.prepare(
    `INSERT INTO token_usage (key_id, day, model, input_tokens, output_tokens) VALUES (@keyId, @day, @model, @inputTokens, @outputTokens)
     ON CONFLICT (key_id, day, model) DO UPDATE SET input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens`,
  );
  const ofKey = db.prepare('SELECT * FROM token_usage WHERE key_id = ? AND day BETWEEN ? AND ? ORDER BY day, key_id, model');
  const ofAll = db.prepare('SELECT * FROM token_usage WHERE day BETWEEN ? AND ? ORDER BY day, key_id, model');
  const addAll = db.transaction((entries: readonly UsageEntry[]) => {
    for (const entry of entries) add.run(entry);
  });
  return {
    add: (entries) => guarded(() => addAll(sumUsage(entries))),
    list: ({ keyId, fromDay, toDay }) =>
      guarded(() => ((keyId === undefined ? ofAll.all(fromDay, toDay) : ofKey.all(keyId, fromDay, toDay)) as UsageRow[]).map(toEntry)),
  };
}
