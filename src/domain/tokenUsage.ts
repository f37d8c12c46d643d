/**
 * Tokens spent, by API key, day (UTC) and model: what per-key budgets
 * (`limits.tokensPerDay`) are checked against, and what `GET /api/usage`
 * and `GET /admin/usage` report.
 */
export interface UsageEntry {
  /** The key's id; `''` for requests without a key (`--auth none`). */
  readonly keyId: string;
  /** `YYYY-MM-DD`, UTC. */
  readonly day: string;
  /** The configured name of the model that answered. */
  readonly model: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/**
 * Port: where spent tokens are kept (each session store has one, in the same
 * database). `add` adds to what is there (never overwrites), so several
 * nodes may write the same row. Failures reject with `store_unavailable`.
 */
export interface UsageStore {
  add(entries: readonly UsageEntry[]): Promise<void>;
  /** Rows with `fromDay <= day <= toDay`, for one key or (no `keyId`) every key; by day, then key, then model. */
  list(query: { readonly keyId?: string; readonly fromDay: string; readonly toDay: string }): Promise<UsageEntry[]>;
}

const DAY_MS = 86_400_000;

// The day last asked for, and the span of times it covers: every reply's
// usage is recorded under its day, and formatting a Date for each was 0.8%
// of the server's CPU in the streamed /v1 bench (bench/gateway.ts, --cpu-prof).
let lastDay = '';
let lastDayStart = 0;
let lastDayEnd = 0;

/** The UTC day of a time, `YYYY-MM-DD`. */
export function dayOf(ms: number): string {
  // Whole milliseconds, as Date takes them (toward zero: -0.5 is 1970's first millisecond).
  const time = Math.trunc(ms);
  if (time >= lastDayStart && time < lastDayEnd) return lastDay;
  const day = new Date(time).toISOString().slice(0, 10);
  // A time Date cannot hold (NaN, beyond ±8.64e15) threw above: the span kept only covers valid times.
  lastDay = day;
  lastDayStart = Math.floor(time / DAY_MS) * DAY_MS;
  lastDayEnd = lastDayStart + DAY_MS;
  return day;
}

/** When the UTC day of `ms` ends (the next midnight), ms since the epoch: when a daily budget resets. */
export function nextDayStart(ms: number): number {
  return (Math.floor(ms / DAY_MS) + 1) * DAY_MS;
}

/** The day `days` before `day`. */
export function daysBefore(day: string, days: number): string {
  return dayOf(Date.parse(`${day}T00:00:00Z`) - days * DAY_MS);
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
export function isDay(value: string): boolean {
  return DAY.test(value) && !Number.isNaN(Date.parse(`${value}T00:00:00Z`)) && dayOf(Date.parse(`${value}T00:00:00Z`)) === value;
}

/** Rows for the same key, day and model added up (what a batch of increments, or a store, holds). */
export function sumUsage(entries: readonly UsageEntry[]): UsageEntry[] {
  const sums = new Map<string, UsageEntry>();
  for (const entry of entries) {
    const key = `${entry.keyId}\u0000${entry.day}\u0000${entry.model}`;
    const current = sums.get(key);
    sums.set(key, current ? { ...current, inputTokens: current.inputTokens + entry.inputTokens, outputTokens: current.outputTokens + entry.outputTokens } : { ...entry });
  }
  return [...sums.values()];
}

export function compareUsage(a: UsageEntry, b: UsageEntry): number {
  return a.day.localeCompare(b.day) || a.keyId.localeCompare(b.keyId) || a.model.localeCompare(b.model);
}
