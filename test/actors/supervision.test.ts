import { afterEach, describe, expect, it } from 'vitest';
import { createSessionRegistry } from '../../src/actors/sessionRegistry.ts';
import type { SessionRegistry, SessionRegistryOptions } from '../../src/actors/sessionRegistry.ts';
import type { ChatEvent } from '../../src/domain/events.ts';
import { createInProcessBus } from '../../src/infra/inProcessBus.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { createSimulatedProvider } from '../../src/infra/simulatedProvider.ts';
import { ManualClock, settle } from '../support/manualClock.ts';
import { failingOn } from '../support/scriptedProvider.ts';
import { sequentialIds } from '../support/sequentialIds.ts';

const INTERVAL = 100;

function setup(overrides: Partial<SessionRegistryOptions> = {}) {
  const clock = new ManualClock();
  const bus = createInProcessBus();
  const store = createMemoryStore();
  const provider = failingOn(createSimulatedProvider({ chunks: 5, intervalMs: INTERVAL, clock }), 'explode', 2);
  const registry = createSessionRegistry({
    bus,
    store,
    provider,
    clock,
    logger: silentLogger,
    ids: sequentialIds(),
    queueLimit: 2,
    sessionTtlMs: 60_000,
    ...overrides,
  });
  const events: ChatEvent[] = [];
  bus.subscribeAll((event) => events.push(event));
  registries.push(registry);
  return { clock, bus, store, provider, registry, events };
}

const registries: SessionRegistry[] = [];
afterEach(async () => {
  for (const registry of registries.splice(0)) await registry.close();
});

const chunksOf = (events: ChatEvent[], messageId: string) =>
  events.flatMap((event) => (event.type === 'chunk' && event.messageId === messageId ? [event.chunk] : []));

describe('session actor', () => {
  it('streams one reply at a time and takes queued messages in order', async () => {
    const { clock, registry, events } = setup();
    const session = await registry.create();
    const first = await session.send('one');
    const second = await session.send('two');
    expect(second.position).toBe(1);
    expect(session.status()).toBe('generating');
    await clock.advance(5 * INTERVAL);
    expect(chunksOf(events, first.replyId)).toEqual(['chunk 1: one', 'chunk 2: one', 'chunk 3: one', 'chunk 4: one', 'chunk 5: one']);
    expect(chunksOf(events, second.replyId)).toEqual([]);
    await clock.advance(5 * INTERVAL);
    expect(chunksOf(events, second.replyId)).toHaveLength(5);
    expect(session.status()).toBe('idle');
    const seqs = events.flatMap((event) => (event.type === 'chunk' ? [event.seq] : []));
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('refuses a message beyond the queue limit with busy', async () => {
    const { registry } = setup();
    const session = await registry.create();
    await session.send('a');
    await session.send('b');
    await session.send('c');
    await expect(session.send('d')).rejects.toMatchObject({ code: 'busy' });
  });

  it('cancel stops the provider at once, keeps the partial reply as cancelled and drops the queue', async () => {
    const { clock, registry, events, provider } = setup();
    const session = await registry.create();
    const first = await session.send('one');
    const queued = await session.send('two');
    await clock.advance(2 * INTERVAL);
    expect(session.cancel()).toEqual([first.replyId, queued.replyId]);
    await settle();
    expect(provider.aborted).toEqual([first.replyId]);
    // Only the registry's sweep, the store-health probe and the cancelled reply's pending write are left.
    expect(clock.pendingTimers).toBe(3);
    await clock.advance(10 * INTERVAL);
    expect(chunksOf(events, first.replyId)).toHaveLength(2);
    const cancelled = events.filter((event) => event.type === 'message.cancelled').map((event) => event.messageId);
    expect(cancelled).toEqual([first.replyId, queued.replyId]);
    const reply = (await session.view()).messages.find((message) => message.id === first.replyId);
    expect(reply).toMatchObject({ status: 'cancelled', content: 'chunk 1: onechunk 2: one' });
    expect(session.status()).toBe('idle');
  });
  it('answers queued messages with the one session actor it spawned for the busy period', async () => {
    const actors: string[] = [];
    const { clock, registry, events } = setup({
      inspect: (event) => {
        const ref = event.actorRef as { id?: unknown; sessionId: string };
        if (event.type === '@xstate.actor' && ref.id === 'session') actors.push(ref.sessionId);
      },
    });
    const session = await registry.create();
    const replies = [await session.send('one'), await session.send('two'), await session.send('three')];
    await clock.advance(15 * INTERVAL);
    for (const reply of replies) expect(chunksOf(events, reply.replyId)).toHaveLength(5);
    expect(session.status()).toBe('idle');
    // One actor for the three replies, none left once the queue is empty.
    expect(actors).toHaveLength(1);
    expect(session.actor.getSnapshot().children['session']).toBeUndefined();
    await session.send('four');
    expect(actors).toHaveLength(2);
  });

  it('a stop mid-reply (delete, shutdown) aborts the provider at once', async () => {
    const { clock, registry, provider } = setup();
    const deleted = await registry.create();
    const shut = await registry.create();
    const first = await deleted.send('one');
    const second = await shut.send('two');
    await clock.advance(2 * INTERVAL);
    expect(await registry.remove(deleted.sessionId)).toBe(true);
    await settle();
    expect(provider.aborted).toEqual([first.replyId]);
    await registry.close();
    expect(provider.aborted).toEqual([first.replyId, second.replyId]);
  });
});

describe('supervisor', () => {
  it('restarts a failed session with its history intact and answers the next message', async () => {
    const { clock, registry, events } = setup();
    const session = await registry.create();
    const good = await session.send('hello');
    await clock.advance(5 * INTERVAL);
    const bad = await session.send('explode now');
    await clock.advance(3 * INTERVAL);
    const failed = events.find((event) => event.type === 'message.failed');
    expect(failed).toMatchObject({ messageId: bad.replyId, code: 'provider_error' });
    expect(events.some((event) => event.type === 'session.restarted')).toBe(true);
    await clock.advance(1_000); // past the backoff
    const next = await session.send('again');
    await clock.advance(5 * INTERVAL);
    expect(chunksOf(events, next.replyId)).toHaveLength(5);
    const history = (await session.view()).messages.map((message) => [message.id, message.status]);
    expect(history).toEqual([
      ['m1', 'complete'],
      [good.replyId, 'complete'],
      ['m3', 'complete'],
      [bad.replyId, 'failed'],
      ['m5', 'complete'],
      [next.replyId, 'complete'],
    ]);
  });

  it('keeps messages sent during the backoff and answers them after the restart', async () => {
    const { clock, registry, events } = setup();
    const session = await registry.create();
    await session.send('explode');
    await clock.advance(3 * INTERVAL);
    expect(session.status()).toBe('restarting');
    const waiting = await session.send('patient');
    await clock.advance(2_000);
    await clock.advance(5 * INTERVAL);
    expect(chunksOf(events, waiting.replyId)).toHaveLength(5);
  });

  it('stops the session for good past the restart intensity, and tells its watchers', async () => {
    const { clock, registry, events } = setup({ restartPolicy: { intensity: 2, periodMs: 60_000, backoffBaseMs: 10 } });
    const session = await registry.create();
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await session.send(`explode ${attempt}`);
      await clock.advance(3 * INTERVAL + 100);
    }
    expect(events.filter((event) => event.type === 'message.failed')).toHaveLength(3);
    expect(events.filter((event) => event.type === 'session.restarted')).toHaveLength(2);
    expect(events.at(-1)).toEqual({ type: 'session.stopped', sessionId: session.sessionId, reason: 'restart_limit' });
    expect(session.status()).toBe('stopped');
    await expect(session.send('more')).rejects.toMatchObject({ code: 'session_stopped' });
    // Coming back from the store, it is still stopped.
    const again = await registry.find(session.sessionId);
    expect(again?.status()).toBe('stopped');
  });

  it('counts only restarts inside the period', async () => {
    const { clock, registry, events } = setup({ restartPolicy: { intensity: 1, periodMs: 1_000, backoffBaseMs: 10 } });
    const session = await registry.create();
    await session.send('explode a');
    await clock.advance(3 * INTERVAL + 50);
    await clock.advance(2_000); // the first restart leaves the period
    await session.send('explode b');
    await clock.advance(3 * INTERVAL + 50);
    expect(events.filter((event) => event.type === 'session.restarted')).toHaveLength(2);
    expect(session.status()).not.toBe('stopped');
  });

  it('a failing session leaves its neighbour untouched', async () => {
    const { clock, registry, events } = setup();
    const victim = await registry.create();
    const neighbour = await registry.create();
    const calm = await neighbour.send('calm');
    await victim.send('explode');
    await clock.advance(5 * INTERVAL);
    expect(chunksOf(events, calm.replyId)).toHaveLength(5);
    expect(events.filter((event) => event.sessionId === neighbour.sessionId && event.type.startsWith('session.'))).toHaveLength(1);
  });
});

describe('registry', () => {
  it('passivates idle sessions past the TTL and re-activates them with their history', async () => {
    const { clock, registry } = setup({ sessionTtlMs: 10_000, sweepIntervalMs: 1_000 });
    const session = await registry.create();
    const reply = await session.send('remember me');
    await clock.advance(5 * INTERVAL);
    expect(registry.activeCount).toBe(1);
    await clock.advance(12_000);
    expect(registry.activeCount).toBe(0);
    expect(session.actor.getSnapshot().status).toBe('stopped');
    const back = await registry.find(session.sessionId);
    expect(back).not.toBe(session);
    expect(registry.activeCount).toBe(1);
    expect((await back!.view()).messages.find((message) => message.id === reply.replyId)?.content).toContain('chunk 5: remember me');
    expect((await back!.view()).lastSeq).toBe(5);
  });

  it('never passivates a session while it is generating', async () => {
    const { clock, registry } = setup({ sessionTtlMs: 50, sweepIntervalMs: 10 });
    const session = await registry.create();
    await session.send('slow');
    await clock.advance(3 * INTERVAL);
    expect(registry.activeCount).toBe(1);
    expect(session.status()).toBe('generating');
  });

  it('finds nothing for unknown or malformed ids', async () => {
    const { registry } = setup();
    expect(await registry.find('nope')).toBeUndefined();
    expect(await registry.find('A'.repeat(22))).toBeUndefined();
  });

  it('activates one actor for concurrent lookups of the same stored session', async () => {
    const { clock, registry } = setup({ sessionTtlMs: 100, sweepIntervalMs: 50 });
    const session = await registry.create();
    await clock.advance(500);
    expect(registry.activeCount).toBe(0);
    const [a, b] = await Promise.all([registry.find(session.sessionId), registry.find(session.sessionId)]);
    expect(a).toBe(b);
    expect(registry.activeCount).toBe(1);
  });

  it('removes a session: watchers are told, the store forgets it', async () => {
    const { registry, events, store } = setup();
    const session = await registry.create();
    expect(await registry.remove(session.sessionId)).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'session.stopped', reason: 'deleted' });
    expect(await store.load(session.sessionId)).toBeUndefined();
    expect(await registry.find(session.sessionId)).toBeUndefined();
    expect(await registry.remove(session.sessionId)).toBe(false);
  });
});
