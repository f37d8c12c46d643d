import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createSessionRegistry } from '../../src/actors/sessionRegistry.ts';
import type { SessionRegistry, SessionRegistryOptions } from '../../src/actors/sessionRegistry.ts';
import type { ChatEvent } from '../../src/domain/events.ts';
import type { Message } from '../../src/domain/message.ts';
import type { LoadWindow, Logger, SessionStore } from '../../src/domain/ports.ts';
import { createInProcessBus } from '../../src/infra/inProcessBus.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { createSimulatedProvider } from '../../src/infra/simulatedProvider.ts';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { systemClock } from '../../src/infra/systemClock.ts';
import { failingOn } from '../support/scriptedProvider.ts';
import { sequentialIds } from '../support/sequentialIds.ts';
import { api, startServer } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

const directory = mkdtempSync(join(tmpdir(), 'llm-chat-bounded-'));
let files = 0;
const registries: SessionRegistry[] = [];
afterEach(async () => {
  for (const registry of registries.splice(0)) await registry.close();
});
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const BUDGET = 1000; // tokens: about 4,000 characters of history in memory

function setup(overrides: Partial<SessionRegistryOptions> = {}) {
  const inner = openSqliteStore({ path: join(directory, `db-${++files}.sqlite`) });
  const loads: { window: LoadWindow | undefined; messages: number }[] = [];
  // The real store, watched: what each activation asked for and got.
  const store: SessionStore = {
    ...inner,
    load: async (sessionId, window) => {
      const record = await inner.load(sessionId, window);
      loads.push({ window, messages: record?.messages.length ?? 0 });
      return record;
    },
  };
  const bus = createInProcessBus();
  const registry = createSessionRegistry({
    bus,
    store,
    provider: failingOn(createSimulatedProvider({ chunks: 3, intervalMs: 0, clock: systemClock }), 'explode', 1),
    clock: systemClock,
    logger: silentLogger,
    ids: sequentialIds(),
    contextBudgetTokens: BUDGET,
    ...overrides,
  });
  registries.push(registry);
  return { store, inner, bus, registry, loads };
}

const SESSION = 'longhistory00000000001';
const longHistory = (count: number): Message[] =>
  Array.from({ length: count }, (_, i) => ({
    id: `h${i}`,
    order: 2 * (i + 1),
    role: i % 2 === 0 ? 'user' : 'assistant',
    content: `message ${i} ${'x'.repeat(1000)}`,
    status: 'complete',
    createdAt: i,
    updatedAt: i,
  }));

function ended(bus: ReturnType<typeof createInProcessBus>, sessionId: string, count = 1): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const off = bus.subscribe(sessionId, (event: ChatEvent) => {
      if (event.type !== 'message.completed' && event.type !== 'message.failed') return;
      seen += 1;
      if (seen < count) return;
      off();
      resolve();
    });
  });
}

describe('memory per session is bounded by the context budget, not by the length of history', () => {
  it('activates a long history with a bounded window; the model still gets its newest turns', async () => {
    const { inner, registry, loads, bus } = setup();
    await inner.create({ sessionId: SESSION, createdAt: 0, lastActiveAt: 0, lastSeq: 0, seqReserved: 0, stopped: false, messages: longHistory(400) });
    const session = (await registry.find(SESSION))!;
    expect(loads).toHaveLength(1);
    expect(loads[0]!.window).toBeDefined();
    expect(loads[0]!.messages).toBeLessThanOrEqual(6); // ~4,000 characters of 1 KB messages, not 400 of them
    const held = session.liveMessages();
    expect(held.length).toBeLessThanOrEqual(5);
    expect(held.reduce((chars, message) => chars + message.content.length, 0)).toBeLessThanOrEqual(BUDGET * 4 + 1100);
    expect(held.at(-1)?.id).toBe('h399');
    // Talking more never grows it past the budget.
    for (let n = 0; n < 20; n += 1) {
      const done = ended(bus, SESSION);
      await session.send(`more ${n} ${'y'.repeat(500)}`);
      await done;
    }
    expect(session.liveMessages().reduce((chars, message) => chars + message.content.length, 0)).toBeLessThanOrEqual(BUDGET * 4 + 1100);
    expect(session.summary().messageCount).toBeLessThan(20);
  });

  it('holds on a real server too: the store as the server wraps it (metrics, shutdown flush, health) still loads only the window', async () => {
    const inner = openSqliteStore({ path: join(directory, `db-${++files}.sqlite`) });
    const loads: { window: LoadWindow | undefined; messages: number }[] = [];
    const store: SessionStore = {
      ...inner,
      load: async (sessionId, window) => {
        const record = await inner.load(sessionId, window);
        loads.push({ window, messages: record?.messages.length ?? 0 });
        return record;
      },
    };
    await inner.create({ sessionId: SESSION, createdAt: 0, lastActiveAt: 0, lastSeq: 0, seqReserved: 0, stopped: false, messages: longHistory(400) });
    const running = await startServer({ store, historyBudgetTokens: BUDGET });
    servers.push(running);
    const view = await api(running.url, 'GET', `/api/sessions/${SESSION}?limit=2`);
    expect(view.status).toBe(200);
    expect(loads).toHaveLength(1);
    expect(loads[0]!.window).toBeDefined();
    expect(loads[0]!.messages).toBeLessThanOrEqual(6);
    expect(running.server.registry.peek(SESSION)!.liveMessages().length).toBeLessThanOrEqual(5);
  });

  it('GET /api/sessions/:id shape: the latest page with a cursor to older ones; paging crosses the window boundary without gap or repeat', async () => {
    const { inner, registry, bus } = setup();
    await inner.create({ sessionId: SESSION, createdAt: 0, lastActiveAt: 0, lastSeq: 0, seqReserved: 0, stopped: false, messages: longHistory(120) });
    const session = (await registry.find(SESSION))!;
    const done = ended(bus, SESSION);
    await session.send('newest question');
    await done;
    // Right away the reply may not be written yet: the page still shows it, one over the limit.
    const early = await session.view(50);
    expect(early.messages.at(-1)).toMatchObject({ role: 'assistant', status: 'complete' });
    expect(early.messages.length).toBeGreaterThanOrEqual(50);
    expect(early.messages.length).toBeLessThanOrEqual(51);
    // So does the page of …/messages that ends the history, either way.
    expect((await registry.listMessages(SESSION, { limit: 2, order: 'desc' }))?.messages[0]).toMatchObject({ role: 'assistant', status: 'complete' });
    let last = await registry.listMessages(SESSION, { limit: 200 });
    expect(last?.nextCursor).toBeNull();
    expect(last?.messages.at(-1)).toMatchObject({ role: 'assistant', status: 'complete' });
    last = undefined;
    const deadline = Date.now() + 2000;
    while ((await inner.load(SESSION, { maxMessages: 1, maxChars: 1 }))?.messages[0]?.status !== 'complete' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const view = await session.view(50);
    expect(view.messages).toHaveLength(50);
    expect(view.messages.at(-2)?.content).toBe('newest question');
    expect(view.messages.at(-1)).toMatchObject({ role: 'assistant', status: 'complete', content: 'chunk 1: newest questionchunk 2: newest questionchunk 3: newest question' });
    expect(view.olderCursor).not.toBeNull();
    const seen = view.messages.map((message) => message.id);
    let cursor = view.olderCursor;
    while (cursor) {
      const page = await registry.listMessages(SESSION, { limit: 30, order: 'desc', cursor });
      seen.unshift(...page!.messages.map((message) => message.id).reverse());
      cursor = page!.nextCursor;
    }
    expect(seen).toEqual([...longHistory(120).map((message) => message.id), 'm1', 'm2']);
    // Each page is a page: the whole history is never copied to answer one.
    const oldest = await registry.listMessages(SESSION, { limit: 1 });
    expect(oldest?.messages.map((message) => message.id)).toEqual(['h0']);
  });
});

describe('replay logs of stopped sessions are dropped, whatever stopped them', () => {
  const streamed = async (registry: SessionRegistry, bus: ReturnType<typeof createInProcessBus>) => {
    const session = await registry.create();
    const done = ended(bus, session.sessionId);
    await session.send('hello');
    await done;
    expect((await bus.replay(session.sessionId, 0)).length).toBe(3);
    return session;
  };

  it('deleted, passivated, shut down', async () => {
    const { registry, bus } = setup({ sessionTtlMs: 1 });
    const deleted = await streamed(registry, bus);
    await registry.remove(deleted.sessionId);
    expect(await bus.replay(deleted.sessionId, 0)).toEqual([]);
    const idle = await streamed(registry, bus);
    // Passivated once idle and written (its last write may still be landing).
    const deadline = Date.now() + 2000;
    while (registry.peek(idle.sessionId) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      registry.passivateIdle();
    }
    expect(registry.peek(idle.sessionId)).toBeUndefined();
    expect(await bus.replay(idle.sessionId, 0)).toEqual([]);
    const running = await streamed(registry, bus);
    await registry.close();
    expect(await bus.replay(running.sessionId, 0)).toEqual([]);
  });

  it('stopped for good by its restart limit', async () => {
    const { registry, bus } = setup({ restartPolicy: { intensity: 0 } });
    const session = await registry.create();
    let chunks = 0;
    bus.subscribe(session.sessionId, (event) => {
      if (event.type === 'chunk') chunks += 1;
    });
    const done = ended(bus, session.sessionId);
    await session.send('explode please');
    await done;
    expect(chunks).toBe(1); // one went into the log before the failure
    await new Promise((resolve) => setImmediate(resolve));
    expect(session.status()).toBe('stopped');
    expect(await bus.replay(session.sessionId, 0)).toEqual([]);
  });

  it('stopped because its supervisor itself failed (crashed)', async () => {
    // A supervisor fails only through a bug; here its logger throws while it handles a failed reply.
    const throwing: Logger = {
      ...silentLogger,
      warn(_fields, message) {
        if (message === 'session actor failed') throw new Error('logger broke (test)');
      },
    };
    const { registry, bus } = setup({ logger: throwing });
    const session = await registry.create();
    const events: ChatEvent[] = [];
    bus.subscribe(session.sessionId, (event) => events.push(event));
    await session.send('explode please');
    const deadline = Date.now() + 2000;
    while (!events.some((event) => event.type === 'session.stopped') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(events.filter((event) => event.type === 'chunk')).toHaveLength(1); // one went into the log before the failure
    expect(events.find((event) => event.type === 'session.stopped')).toMatchObject({ reason: 'crashed' });
    expect(registry.peek(session.sessionId)).toBeUndefined();
    expect(await bus.replay(session.sessionId, 0)).toEqual([]);
  });
});

describe('an idle session costs one supervisor, not an actor system of its own', () => {
  it("every session's supervisor is in the registry's one actor system; passivated, it stops and its session comes back on the next use", async () => {
    const { registry, bus } = setup({ sessionTtlMs: 1 });
    const first = await registry.create();
    const second = await registry.create();
    expect(first.actor.system).toBe(second.actor.system);
    // Passivation stops the supervisor through its parent (a non-root actor cannot be stopped directly).
    const deadline = Date.now() + 2000;
    while (registry.peek(first.sessionId) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      registry.passivateIdle();
    }
    expect(registry.peek(first.sessionId)).toBeUndefined();
    expect(first.actor.getSnapshot().status).toBe('stopped');
    const again = await registry.find(first.sessionId);
    expect(again).toBeDefined();
    expect(again!.actor.system).toBe(second.actor.system);
    const done = ended(bus, first.sessionId);
    await again!.send('hello again');
    await done;
    expect(again!.liveMessages().map((message) => message.status)).toEqual(['complete', 'complete']);
  });
});
