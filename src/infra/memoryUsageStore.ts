import { compareUsage, sumUsage } from '../domain/tokenUsage.ts';
import type { UsageEntry, UsageStore } from '../domain/tokenUsage.ts';

/** Spent tokens held in process memory (the memory store's, and the fallback for a store that keeps none). */
export function createMemoryUsageStore(): UsageStore {
  let rows: UsageEntry[] = [];
  return {
    async add(entries) {
      rows = sumUsage([...rows, ...entries]);
    },
    async list({ keyId, fromDay, toDay }) {
      return rows
        .filter((row) => (keyId === undefined || row.keyId === keyId) && row.day >= fromDay && row.day <= toDay)
        .map((row) => ({ ...row }))
        .sort(compareUsage);
    },
  };
}
