import { ChatError } from '../domain/errors.ts';
import type { Usage } from '../domain/message.ts';
import type { Clock, Logger } from '../domain/ports.ts';
import { compareUsage, dayOf, nextDayStart, sumUsage } from '../domain/tokenUsage.ts';
import type { UsageEntry, UsageStore } from '../domain/tokenUsage.ts';

export interface TokenLedgerOptions {
  store: UsageStore;
  clock: Clock;
  logger: Logger;
  /** Spent tokens are written this often, in one batch (default 1 s). */
  flushMs?: number;
  /** A key's total for today is re-read from the store (what other nodes spent) at most this often (default 10 s). */
  refreshMs?: number;
  /** Told of every reply's tokens (Prometheus). */
  onRecord?: (keyId: string, model: string, usage: Usage) => void;
}

export interface TokenLedger {
  /** Adds a finished reply's tokens for the key (written behind, in batches). */
  record(keyId: string, model: string, usage: Usage): void;
  /** Tokens (in + out) the key spent today, UTC: the store's count as of its last read, and everything this node added since. */
  spentToday(keyId: string): Promise<number>;
  /** Throws `budget_exceeded` (with the reset time) once the key has spent `tokensPerDay` today; 0 = no budget. */
  checkBudget(keyId: string, tokensPerDay: number): Promise<void>;
  /** Rows from the store and what is not written yet, for one key or every key. */
  list(query: { keyId?: string; fromDay: string; toDay: string }): Promise<UsageEntry[]>;
  /** Writes what is pending (bounded wait); later records are dropped. */
  close(timeoutMs?: number): Promise<void>;
}

interface Today {
  day: string;
  /** The store's total when last read. */
  base: number;
  /** Tokens this node wrote after that read (the read did not see them). */
  sinceBase: number;
  readAt: number;
}

/**
 * Tokens spent per key and day, for budgets and usage reports. Records are
 * summed in memory and written as one batch per `flushMs`; a failed write is
 * kept and retried (with backoff), so a database hiccup loses nothing while
 * the process lives. Budgets read a per-key total for today that is exact
 * for this node and refreshed from the store every `refreshMs` (the other
 * nodes' spending). A reply in progress is not known until it finishes: a
 * budget can be overrun by the replies that were already running.
 */
export function createTokenLedger(options: TokenLedgerOptions): TokenLedger {
  const { store, clock, logger } = options;
  const flushMs = options.flushMs ?? 1000;
  const refreshMs = options.refreshMs ?? 10_000;
  let pending: UsageEntry[] = [];
  let inFlight: UsageEntry[] = [];
  const today = new Map<string, Today>();
  let flushing: Promise<void> | undefined;
  let timer: unknown;
  let failures = 0;
  let closed = false;

  // Not yet in the store: queued, and the batch being written.
  const pendingFor = (keyId: string, day: string) =>
    [...pending, ...inFlight].reduce((sum, entry) => (entry.keyId === keyId && entry.day === day ? sum + entry.inputTokens + entry.outputTokens : sum), 0);

  const schedule = (delayMs: number) => {
    if (timer !== undefined || closed) return;
    timer = clock.setTimeout(() => {
      timer = undefined;
      void flush();
    }, delayMs);
  };

  const flush = (): Promise<void> => {
    if (flushing) return flushing;
    if (pending.length === 0) return Promise.resolve();
    const batch = pending;
    pending = [];
    inFlight = batch;
    flushing = store.add(batch).then(
      () => {
        failures = 0;
        for (const entry of batch) {
          const known = today.get(entry.keyId);
          if (known && known.day === entry.day) known.sinceBase += entry.inputTokens + entry.outputTokens;
        }
      },
      (error: unknown) => {
        failures += 1;
        pending = sumUsage([...batch, ...pending]);
        logger.warn({ err: String(error), rows: batch.length, failures }, 'could not write token usage; retrying');
      },
    ).finally(() => {
      inFlight = [];
      flushing = undefined;
      if (pending.length > 0) schedule(failures === 0 ? flushMs : Math.min(30_000, flushMs * 2 ** failures));
    });
    return flushing;
  };

  const refresh = async (keyId: string, day: string): Promise<Today> => {
    const rows = await store.list({ keyId, fromDay: day, toDay: day });
    const entry = { day, base: rows.reduce((sum, row) => sum + row.inputTokens + row.outputTokens, 0), sinceBase: 0, readAt: clock.now() };
    today.set(keyId, entry);
    return entry;
  };

  const spentToday = async (keyId: string): Promise<number> => {
    const day = dayOf(clock.now());
    let known = today.get(keyId);
    if (!known || known.day !== day || clock.now() - known.readAt >= refreshMs) {
      try {
        // A write in flight would be counted twice (in the read and in sinceBase): wait for it.
        await flushing;
        known = await refresh(keyId, day);
      } catch (error) {
        // A stale count for today beats refusing every message while the database is away.
        if (!known || known.day !== day) throw error;
        logger.warn({ err: String(error) }, 'could not re-read token usage; using the last count');
      }
    }
    return known.base + known.sinceBase + pendingFor(keyId, day);
  };

  return {
    record(keyId, model, usage) {
      options.onRecord?.(keyId, model, usage);
      if (closed || usage.inputTokens + usage.outputTokens === 0) return;
      // Added to its row in place of re-summing every pending row (a copy of all of them per reply).
      const day = dayOf(clock.now());
      const at = pending.findIndex((entry) => entry.keyId === keyId && entry.day === day && entry.model === model);
      const known = pending[at];
      if (known) pending[at] = { ...known, inputTokens: known.inputTokens + usage.inputTokens, outputTokens: known.outputTokens + usage.outputTokens };
      else pending.push({ keyId, day, model, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens });
      schedule(flushMs);
    },
    spentToday,
    async checkBudget(keyId, tokensPerDay) {
      if (tokensPerDay <= 0) return;
      const spent = await spentToday(keyId);
      if (spent < tokensPerDay) return;
      const resetsAt = nextDayStart(clock.now());
      throw new ChatError('budget_exceeded', `This key has used its ${tokensPerDay} tokens for today (${spent} spent); the budget resets at ${new Date(resetsAt).toISOString()}.`, {
        retryAfterMs: resetsAt - clock.now(),
        resetsAt,
      });
    },
    async list(query) {
      const stored = await store.list(query);
      const unwritten = pending.filter((entry) => (query.keyId === undefined || entry.keyId === query.keyId) && entry.day >= query.fromDay && entry.day <= query.toDay);
      return sumUsage([...stored, ...unwritten]).sort(compareUsage);
    },
    async close(timeoutMs = 5000) {
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      let waited: unknown;
      const deadline = new Promise<void>((resolve) => {
        waited = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([(async () => {
        await flushing;
        await flush();
      })(), deadline]);
      clearTimeout(waited as NodeJS.Timeout);
      if (pending.length > 0) logger.error({ rows: pending.length }, 'token usage not written at shutdown');
    },
  };
}
