import { afterEach, describe, expect, it } from 'vitest';
import { createTokenLedger } from '../../src/actors/tokenLedger.ts';
import type { TokenLedger } from '../../src/actors/tokenLedger.ts';
import { ChatError } from '../../src/domain/errors.ts';
import type { UsageEntry, UsageStore } from '../../src/domain/tokenUsage.ts';
import { createMemoryUsageStore } from '../../src/infra/memoryUsageStore.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { ManualClock, settle } from '../support/manualClock.ts';

// 2026-03-10T23:59:00Z: a minute before a UTC midnight.
const LATE = Date.UTC(2026, 2, 10, 23, 59, 0);
const ledgers: TokenLedger[] = [];
afterEach(async () => {
  for (const ledger of ledgers.splice(0)) await ledger.close(100);
});

/** A store that fails while `down` is set, and counts its writes. */
function flaky(inner: UsageStore) {
  const state = { down: false, writes: 0 };
  const store: UsageStore = {
    async add(entries) {
      if (state.down) throw new ChatError('store_unavailable');
      state.writes += 1;
      await inner.add(entries);
    },
    async list(query) {
      if (state.down) throw new ChatError('store_unavailable');
      return inner.list(query);
    },
  };
  return { store, state };
}

function setup(start = LATE, store: UsageStore = createMemoryUsageStore()) {
  const clock = new ManualClock(start);
  const ledger = createTokenLedger({ store, clock, logger: silentLogger, flushMs: 1000, refreshMs: 10_000 });
  ledgers.push(ledger);
  return { clock, ledger, store };
}

describe('token ledger: spent tokens by key, day and model', () => {
  it('counts a key’s tokens for today at once, and writes them in one batch per flush interval', async () => {
    const backing = createMemoryUsageStore();
    const { store, state } = flaky(backing);
    const { clock, ledger } = setup(LATE - 60_000, store);
    ledger.record('k1', 'fast', { inputTokens: 10, outputTokens: 5 });
    ledger.record('k1', 'backup', { inputTokens: 1, outputTokens: 1 });
    ledger.record('k2', 'fast', { inputTokens: 100, outputTokens: 0 });
    expect(await ledger.spentToday('k1')).toBe(17);
    expect(state.writes).toBe(0);
    await clock.advance(1000);
    await settle();
    expect(state.writes).toBe(1);
    expect(await backing.list({ fromDay: '2026-03-10', toDay: '2026-03-10' })).toEqual([
      { keyId: 'k1', day: '2026-03-10', model: 'backup', inputTokens: 1, outputTokens: 1 },
      { keyId: 'k1', day: '2026-03-10', model: 'fast', inputTokens: 10, outputTokens: 5 },
      { keyId: 'k2', day: '2026-03-10', model: 'fast', inputTokens: 100, outputTokens: 0 },
    ]);
    // Written once: the count does not double after the write.
    expect(await ledger.spentToday('k1')).toBe(17);
  });

  it('refuses past the budget with budget_exceeded and the reset time; a new UTC day starts afresh', async () => {
    const { clock, ledger } = setup();
    await ledger.checkBudget('k1', 100);
    ledger.record('k1', 'fast', { inputTokens: 60, outputTokens: 40 });
    const refused = await ledger.checkBudget('k1', 100).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ChatError);
    expect(refused).toMatchObject({ code: 'budget_exceeded', retryAfterMs: 60_000, resetsAt: Date.UTC(2026, 2, 11) });
    expect((refused as ChatError).message).toContain('2026-03-11T00:00:00.000Z');
    await ledger.checkBudget('k2', 100); // another key is not affected
    await ledger.checkBudget('k1', 0); // 0: no budget
    await clock.advance(60_000); // midnight UTC
    await ledger.checkBudget('k1', 100);
    expect(await ledger.spentToday('k1')).toBe(0);
    const days = await ledger.list({ keyId: 'k1', fromDay: '2026-03-10', toDay: '2026-03-11' });
    expect(days).toEqual([{ keyId: 'k1', day: '2026-03-10', model: 'fast', inputTokens: 60, outputTokens: 40 }]);
  });

  it('sees what other nodes spent, at most refreshMs late', async () => {
    const shared = createMemoryUsageStore();
    const { clock, ledger } = setup(LATE - 3_600_000, shared);
    expect(await ledger.spentToday('k1')).toBe(0);
    await shared.add([{ keyId: 'k1', day: '2026-03-10', model: 'fast', inputTokens: 500, outputTokens: 0 }]); // another node
    expect(await ledger.spentToday('k1')).toBe(0);
    await clock.advance(10_000);
    expect(await ledger.spentToday('k1')).toBe(500);
  });

  it('keeps and retries writes while the store is down: nothing is lost, the count stays right', async () => {
    const backing = createMemoryUsageStore();
    const { store, state } = flaky(backing);
    const { clock, ledger } = setup(LATE - 3_600_000, store);
    expect(await ledger.spentToday('k1')).toBe(0);
    state.down = true;
    ledger.record('k1', 'fast', { inputTokens: 3, outputTokens: 4 });
    await clock.advance(1000);
    await settle();
    ledger.record('k1', 'fast', { inputTokens: 1, outputTokens: 1 });
    // The last count is used while the store cannot be read.
    await clock.advance(10_000);
    await settle();
    expect(await ledger.spentToday('k1')).toBe(9);
    state.down = false;
    await clock.advance(60_000);
    await settle();
    expect(await backing.list({ keyId: 'k1', fromDay: '2026-03-10', toDay: '2026-03-10' })).toEqual([
      { keyId: 'k1', day: '2026-03-10', model: 'fast', inputTokens: 4, outputTokens: 5 },
    ] satisfies UsageEntry[]);
    expect(await ledger.spentToday('k1')).toBe(9);
  });

  it('refuses a budget check it cannot make at all (no count yet and the store down)', async () => {
    const { store, state } = flaky(createMemoryUsageStore());
    const { ledger } = setup(LATE, store);
    state.down = true;
    await expect(ledger.checkBudget('k1', 100)).rejects.toMatchObject({ code: 'store_unavailable' });
  });

  it('writes what is pending when closed', async () => {
    const backing = createMemoryUsageStore();
    const { ledger } = setup(LATE, backing);
    ledger.record('k1', 'sim', { inputTokens: 2, outputTokens: 3 });
    await ledger.close();
    expect(await backing.list({ fromDay: '2026-03-10', toDay: '2026-03-10' })).toHaveLength(1);
  });
});
