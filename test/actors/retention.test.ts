import { afterEach, describe, expect, it } from 'vitest';
import { startRetentionSweeper } from '../../src/actors/retentionSweeper.ts';
import type { ChatEvent } from '../../src/domain/events.ts';
import type { ModelProvider, SessionStore } from '../../src/domain/ports.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { createChatServer } from '../../src/server.ts';
import type { ChatServer } from '../../src/server.ts';
import { ManualClock, settle } from '../support/manualClock.ts';

const DAY = 24 * 60 * 60 * 1000;
let server: ChatServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A model that answers only when told to, so a reply can be held in flight. */
function heldModel(): ModelProvider & { release(): void } {
  let release = () => {};
  return {
    name: 'held',
    release: () => release(),
    async *stream() {
      await new Promise<void>((resolve) => (release = resolve));
      yield { text: 'done', last: true };
    },
  };
}

/** Counts the batches a sweep asks the store for. */
function counted(store: SessionStore): SessionStore & { batches: number[] } {
  const batches: number[] = [];
  return Object.assign(Object.create(null) as object, store, {
    batches,
    idleSessions: async (before: number, limit: number) => {
      const ids = await store.idleSessions(before, limit);
      batches.push(ids.length);
      return ids;
    },
  }) as SessionStore & { batches: number[] };
}

describe('retention', () => {
  it('deletes sessions idle longer than N days, in bounded batches, telling their watchers; recent and busy ones stay', async () => {
    const clock = new ManualClock();
    const store = createMemoryStore();
    const model = heldModel();
    server = createChatServer({ store, clock, provider: model, firstTokenTimeoutMs: 10 * DAY, auth: { mode: 'none' }, logger: silentLogger, sessionTtlMs: 3 * DAY, shedLagMs: 0 });
    const { registry, bus } = server;
    const old = await Promise.all(Array.from({ length: 450 }, () => registry.create()));
    const watched = old[0]!.sessionId;
    const seen: ChatEvent[] = [];
    bus.subscribe(watched, (event) => seen.push(event));
    // Its reply starts now and is still in flight two days later: as idle in the store as the others, but busy.
    const busy = await registry.create();
    await busy.send('a long reply');
    await clock.advance(2 * DAY);
    const recent = await registry.create();
    expect((await store.idleSessions(clock.now() - DAY, 1000)).includes(busy.sessionId)).toBe(true);

    const spied = counted(store);
    const sweeper = startRetentionSweeper({ store: spied, registry, clock, logger: silentLogger, retentionDays: 1, batchSize: 200, pauseMs: 10, firstSweepMs: 60_000 });
    const deleting = sweeper.sweep();
    for (let i = 0; i < 10; i += 1) await clock.advance(10);
    expect(await deleting).toBe(450);
    sweeper.stop();

    expect(spied.batches.every((size) => size <= 201)).toBe(true);
    expect(spied.batches.length).toBeGreaterThanOrEqual(3);
    for (const session of old.slice(0, 5)) expect(await store.load(session.sessionId)).toBeUndefined();
    expect(seen).toContainEqual({ type: 'session.stopped', sessionId: watched, reason: 'deleted' });
    expect(await store.load(recent.sessionId)).toBeDefined();
    expect(await store.load(busy.sessionId)).toBeDefined();
    model.release();
  });

  it('--retention-days runs by itself, soon after start and then every hour; 0 keeps everything', async () => {
    const clock = new ManualClock();
    const store = createMemoryStore();
    server = createChatServer({ store, clock, retentionDays: 3, auth: { mode: 'none' }, logger: silentLogger, sessionTtlMs: 10 * DAY, shedLagMs: 0 });
    const early = await server.registry.create();
    await clock.advance(2 * DAY);
    const later = await server.registry.create();
    await clock.advance(1 * DAY + 2 * 60 * 60 * 1000); // early: 3 days and 2 hours idle; later: 1 day
    await settle(20);
    expect(await store.load(early.sessionId)).toBeUndefined();
    expect(await store.load(later.sessionId)).toBeDefined();
    await server.close();

    const keepStore = createMemoryStore();
    server = createChatServer({ store: keepStore, clock, auth: { mode: 'none' }, logger: silentLogger, sessionTtlMs: 10 * DAY, shedLagMs: 0 });
    const kept = await server.registry.create();
    await clock.advance(2 * DAY);
    expect(await keepStore.load(kept.sessionId)).toBeDefined();
  });

  it('a store that fails is tried again at the next sweep, and nothing is lost meanwhile', async () => {
    const clock = new ManualClock();
    const store = createMemoryStore();
    server = createChatServer({ store, clock, auth: { mode: 'none' }, logger: silentLogger, sessionTtlMs: 10 * DAY, shedLagMs: 0 });
    const session = await server.registry.create();
    await clock.advance(5 * DAY);
    let failing = true;
    const flaky = { ...store, idleSessions: (before: number, limit: number) => (failing ? Promise.reject(new Error('disk on fire')) : store.idleSessions(before, limit)) };
    const swept: number[] = [];
    const sweeper = startRetentionSweeper({ store: flaky, registry: server.registry, clock, logger: silentLogger, retentionDays: 1, firstSweepMs: 1000, intervalMs: 60_000, onSwept: (count) => swept.push(count) });
    await clock.advance(1000);
    expect(await store.load(session.sessionId)).toBeDefined();
    failing = false;
    await clock.advance(60_000);
    await settle(20);
    expect(swept).toEqual([1]);
    expect(await store.load(session.sessionId)).toBeUndefined();
    sweeper.stop();
  });
});
