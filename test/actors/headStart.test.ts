import { afterEach, describe, expect, it } from 'vitest';
import { createSessionRegistry } from '../../src/actors/sessionRegistry.ts';
import type { SessionRegistry } from '../../src/actors/sessionRegistry.ts';
import { ChatError } from '../../src/domain/errors.ts';
import type { ChatEvent } from '../../src/domain/events.ts';
import type { EventBus, SessionStore, SessionUpdate } from '../../src/domain/ports.ts';
import { createInProcessBus } from '../../src/infra/inProcessBus.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { createSimulatedProvider } from '../../src/infra/simulatedProvider.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { ManualClock, settle } from '../support/manualClock.ts';
import { failingOn } from '../support/scriptedProvider.ts';
import { sequentialIds } from '../support/sequentialIds.ts';

const INTERVAL = 100;
const CHUNKS = 3;

/** A store whose writes wait, while `held`, until the test lets them through or fails them. */
interface GatedStore extends SessionStore {
  held: boolean;
  readonly waiting: number;
  release(): void;
  fail(): void;
}

function gated(inner: SessionStore): GatedStore {
  const queue: { update: SessionUpdate; resolve: () => void; reject: (error: unknown) => void }[] = [];
  const store = Object.create(inner) as GatedStore;
  let held = false;
  Object.defineProperties(store, {
    // Letting go of the gate lets what waits at it through, in order.
    held: {
      get: () => held,
      set: (value: boolean) => {
        held = value;
        if (!value) store.release();
      },
    },
    // It stands in for a database: the acceptance waits for its commit.
    durable: { value: true },
    waiting: { get: () => queue.length },
  });
  store.release = () => {
    for (const { update, resolve, reject } of queue.splice(0)) inner.save(update).then(resolve, reject);
  };
  store.fail = () => {
    for (const { reject } of queue.splice(0)) reject(new ChatError('store_unavailable', undefined, { cause: new Error('disk gone (test)') }));
  };
  // Writes keep their order: one behind a held write waits with it.
  store.save = (update) => (held || queue.length > 0 ? new Promise<void>((resolve, reject) => queue.push({ update, resolve, reject })) : inner.save(update));
  return store;
}

const registries: SessionRegistry[] = [];
afterEach(async () => {
  for (const registry of registries.splice(0)) await registry.close();
});

/** A registry over a gated store and a recording model, and one session whose events are collected. */
async function setup(trigger = '\u0001never') {
  const clock = new ManualClock();
  const inner = createInProcessBus();
  // A switch for a failure halfway through a send: after the commit, as `accepted` is published.
  const faults = { acceptedThrows: false };
  const bus: EventBus = Object.create(inner) as EventBus;
  bus.publish = (event) => {
    if (faults.acceptedThrows && event.type === 'message.accepted') throw new Error('bus refused the event (test)');
    inner.publish(event);
  };
  const store = gated(createMemoryStore());
  const provider = failingOn(createSimulatedProvider({ chunks: CHUNKS, intervalMs: INTERVAL, clock }), trigger, 0);
  const registry = createSessionRegistry({ bus, store, provider, clock, logger: silentLogger, ids: sequentialIds(), sessionTtlMs: 60_000 });
  registries.push(registry);
  const session = await registry.create();
  const events: ChatEvent[] = [];
  bus.subscribe(session.sessionId, (event) => events.push(event));
  return { clock, store, provider, registry, session, events, faults };
}

const kinds = (events: readonly ChatEvent[]) => events.map((event) => (event.type === 'chunk' ? `chunk ${event.seq}${event.is_last ? ' last' : ''}` : event.type));

describe('a reply’s head start (the model asked while its message is stored)', () => {
  it('asks the model before the commit answers, publishes nothing until it has, then streams what the model already sent', async () => {
    const { clock, store, provider, events, session } = await setup();
        store.held = true;
    const sending = session.send('hi');
    await settle();
    expect(store.waiting).toBe(1);
    // The model was asked while the message is not stored yet…
    expect(provider.started.map((request) => request.prompt)).toEqual(['hi']);
    // …and its first chunk, due at 100 ms, is held: nothing goes out before `accepted`.
    await clock.advance(150);
    expect(events).toEqual([]);

    store.held = false;
    const accepted = await sending;
    await settle();
    // The chunk the model sent meanwhile goes out at once, right after `accepted`, without another interval.
    expect(kinds(events)).toEqual(['message.accepted', 'chunk 1']);
    await clock.advance(INTERVAL * CHUNKS);
    expect(kinds(events)).toEqual(['message.accepted', 'chunk 1', 'chunk 2', 'chunk 3 last', 'message.completed']);
    expect(events.every((event) => !('messageId' in event) || event.messageId === accepted.replyId)).toBe(true);
    // One request for the reply: the head start was its stream, not an extra one.
    expect(provider.started).toHaveLength(1);
    expect(provider.aborted).toEqual([]);
    // The reply's last write goes out within the writer's lifecycle delay.
    await clock.advance(1_000);
    const stored = await store.load(session.sessionId);
    expect(stored?.messages.map((message) => [message.role, message.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
  });

  it('aborts the model’s request when the store refuses the message, and the next message is answered as usual', async () => {
    const { clock, store, provider, events, session } = await setup();
        store.held = true;
    const sending = session.send('lost');
    await settle();
    expect(provider.started).toHaveLength(1);
    store.fail();
    await expect(sending).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(provider.aborted).toEqual([provider.started[0]!.messageId]);
    await clock.advance(INTERVAL * (CHUNKS + 1));
    expect(events).toEqual([]);
    expect(session.status()).toBe('idle');

    store.held = false;
    const accepted = await session.send('kept');
    await clock.advance(INTERVAL * (CHUNKS + 1));
    expect(kinds(events)).toEqual(['message.accepted', 'chunk 1', 'chunk 2', 'chunk 3 last', 'message.completed']);
    await clock.advance(1_000);
    expect(provider.started.map((request) => [request.prompt, request.messageId])).toEqual([
      ['lost', provider.started[0]!.messageId],
      ['kept', accepted.replyId],
    ]);
    expect((await store.load(session.sessionId))?.messages.map((message) => message.content)).toEqual(['kept', expect.stringContaining('chunk 3: kept')]);
  });

  it('leaves no rejection unheard when the model fails at once and the store refuses the message', async () => {
    const { store, provider, events, session } = await setup('boom');
        store.held = true;
    const sending = session.send('boom');
    await settle();
    expect(provider.started).toHaveLength(1);
    store.fail();
    await expect(sending).rejects.toMatchObject({ code: 'store_unavailable' });
    store.held = false;
    await settle();
    expect(events).toEqual([]);
    // vitest fails the run on an unhandled rejection: the head start's failure was heard and dropped.
  });

  it('hands a model that fails at once to the supervisor as before: the reply fails after `accepted`, the actor restarts', async () => {
    const { clock, provider, events, session } = await setup('boom');
        await session.send('boom');
    await clock.advance(5_000);
    // Let it crash: the reply fails, the supervisor restarts the session actor, the session stays up.
    expect(kinds(events)).toEqual(['message.accepted', 'message.failed', 'session.restarted']);
    expect(provider.started).toHaveLength(1);
    expect(session.status()).toBe('idle');
  });

  it('makes no head start for a message queued behind a reply: its request goes out when its turn comes', async () => {
    const { clock, provider, events, session } = await setup();
        await session.send('first');
    await clock.advance(INTERVAL);
    await session.send('second');
    await settle();
    expect(provider.started.map((request) => request.prompt)).toEqual(['first']);
    await clock.advance(INTERVAL * (CHUNKS - 1));
    await settle();
    expect(provider.started.map((request) => request.prompt)).toEqual(['first', 'second']);
    await clock.advance(INTERVAL * (CHUNKS + 1));
    expect(kinds(events).filter((kind) => kind === 'message.completed')).toHaveLength(2);
  });

  it('aborts the head-started request at once on a cancel', async () => {
    const { clock, provider, events, session } = await setup();
        const accepted = await session.send('stop me');
    expect(session.cancel()).toEqual([accepted.replyId]);
    expect(provider.aborted).toEqual([accepted.replyId]);
    await clock.advance(INTERVAL * (CHUNKS + 1));
    expect(events.some((event) => event.type === 'chunk')).toBe(false);
  });

  it('aborts the request when the session is removed while its message is being stored', async () => {
    const { clock, store, provider, registry, events, session } = await setup();
        store.held = true;
    const sending = session.send('gone');
    await settle();
    const removing = registry.remove(session.sessionId);
    store.held = false;
    await expect(sending).rejects.toBeInstanceOf(ChatError);
    await removing;
    expect(provider.aborted).toEqual([provider.started[0]!.messageId]);
    await clock.advance(INTERVAL * (CHUNKS + 1));
    expect(events.some((event) => event.type === 'chunk' || event.type === 'message.accepted')).toBe(false);
  });

  it('aborts the request when the send fails halfway, after the commit (the event bus throwing as `accepted` is published)', async () => {
    const { clock, provider, events, session, faults } = await setup();
    faults.acceptedThrows = true;
    await expect(session.send('halfway')).rejects.toThrow('bus refused the event (test)');
    expect(provider.started).toHaveLength(1);
    expect(provider.aborted).toEqual([provider.started[0]!.messageId]);
    await clock.advance(INTERVAL * (CHUNKS + 1));
    expect(events.some((event) => event.type === 'chunk')).toBe(false);
  });
});
