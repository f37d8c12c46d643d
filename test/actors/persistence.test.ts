import { afterEach, describe, expect, it } from 'vitest';
import { createSessionRegistry } from '../../src/actors/sessionRegistry.ts';
import type { SessionRegistry, SessionRegistryOptions } from '../../src/actors/sessionRegistry.ts';
import { SEQ_BLOCK } from '../../src/domain/chunkNumbers.ts';
import { ChatError } from '../../src/domain/errors.ts';
import type { ModelProvider } from '../../src/domain/ports.ts';
import type { ChatEvent } from '../../src/domain/events.ts';
import { createInProcessBus } from '../../src/infra/inProcessBus.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { createSimulatedProvider } from '../../src/infra/simulatedProvider.ts';
import { flaky } from '../support/flakyStore.ts';
import { ManualClock } from '../support/manualClock.ts';
import { sequentialIds } from '../support/sequentialIds.ts';

const INTERVAL = 100;
const CHUNKS = 10;
const FLUSH = 500;

function setup(overrides: Partial<SessionRegistryOptions> = {}, model = { chunks: CHUNKS, intervalMs: INTERVAL }) {
  const clock = new ManualClock();
  const bus = createInProcessBus();
  const store = flaky(createMemoryStore());
  const registry = createSessionRegistry({
    bus,
    store,
    provider: createSimulatedProvider({ ...model, clock }),
    clock,
    logger: silentLogger,
    ids: sequentialIds(),
    sessionTtlMs: 60_000,
    flushIntervalMs: FLUSH,
    ...overrides,
  });
  registries.push(registry);
  return { clock, bus, store, registry };
}

const registries: SessionRegistry[] = [];
afterEach(async () => {
  for (const registry of registries.splice(0)) await registry.close();
});

describe('persistence through the store writer', () => {
  it('writes at accept and start, flushes the streaming reply on the interval (not per chunk), and once at the end', async () => {
    const { clock, store, registry } = setup();
    const session = await registry.create();
    const accepted = await session.send('hi');
    // Stored when accepted (the send waited for it), then the start within the lifecycle delay (10 ms).
    expect((await store.load(session.sessionId))?.messages.map((m) => [m.role, m.status])).toEqual([['user', 'queued']]);
    await clock.advance(10);
    // Accepted and started: the prompt is answered and the reply exists, empty, as streaming.
    let stored = await store.load(session.sessionId);
    expect(stored?.messages.map((m) => [m.role, m.status, m.content])).toEqual([
      ['user', 'complete', 'hi'],
      ['assistant', 'streaming', ''],
    ]);
    const writesAtStart = store.saved.length;
    expect(writesAtStart).toBeLessThanOrEqual(2);

    // Chunks at 100, 200, …; the first schedules a flush 500 ms later (at 600, just before chunk 6).
    await clock.advance(540);
    stored = await store.load(session.sessionId);
    expect(stored?.messages[1]?.content).toBe('');
    await clock.advance(100);
    stored = await store.load(session.sessionId);
    expect(stored?.messages[1]).toMatchObject({ status: 'streaming', content: Array.from({ length: 5 }, (_, i) => `chunk ${i + 1}: hi`).join('') });
    expect(stored?.lastSeq).toBe(5);
    expect((await store.chunksAfter(session.sessionId, 3)).map((chunk) => chunk.seq)).toEqual([4, 5]);

    await clock.advance(CHUNKS * INTERVAL);
    stored = await store.load(session.sessionId);
    expect(stored?.messages[1]).toMatchObject({ id: accepted.replyId, status: 'complete' });
    expect(stored?.messages[1]?.content).toContain(`chunk ${CHUNKS}: hi`);
    expect(stored?.lastSeq).toBe(CHUNKS);
    // The finished reply's chunks are no longer kept for resume.
    expect(await store.chunksAfter(session.sessionId, 0)).toEqual([]);
    // Ten chunks cost one flush plus the final write.
    expect(store.saved.length - writesAtStart).toBe(2);
  });

  it('a reply’s end rides on the next write: a flush already planned, or the next message’s commit', async () => {
    const { clock, store, registry } = setup({}, { chunks: 2, intervalMs: INTERVAL });
    const session = await registry.create();
    const first = await session.send('one');
    await clock.advance(10); // the start is written
    const afterStart = store.saved.length;
    // Chunks at 100 and 200; the first plans a flush for 600, and the end (at 200) goes with it.
    await clock.advance(2 * INTERVAL + 10);
    expect(session.liveMessages()[1]?.status).toBe('complete');
    expect((await store.load(session.sessionId))?.messages[1]?.status).toBe('streaming');
    await clock.advance(400); // past 600
    expect((await store.load(session.sessionId))?.messages[1]).toMatchObject({ id: first.replyId, status: 'complete', content: 'chunk 1: onechunk 2: one' });
    expect(store.saved.length - afterStart).toBe(1);

    // The next reply ends before its planned flush: the next message's commit carries it, in one write.
    await session.send('two');
    await clock.advance(10 + 2 * INTERVAL + 10);
    const written = store.saved.length;
    expect((await store.load(session.sessionId))?.messages.map((m) => m.status)).toEqual(['complete', 'complete', 'complete', 'streaming']);
    const third = await session.send('three');
    expect(store.saved.length).toBe(written + 1);
    expect((await store.load(session.sessionId))?.messages.map((m) => m.status)).toEqual(['complete', 'complete', 'complete', 'complete', 'queued']);
    await session.cancel();
    await clock.advance(FLUSH + 10);
    expect((await store.load(session.sessionId))?.messages.find((m) => m.id === third.replyId)).toMatchObject({ status: 'cancelled' });
  });

  it('a reply’s end with no write of the session planned is written one flush interval later', async () => {
    const clock = new ManualClock();
    // The model's server fails 50 ms in, before any chunk: the reply ends failed, with nothing else to write.
    const down: ModelProvider = {
      name: 'down',
      async *stream() {
        await new Promise<void>((resolve) => clock.setTimeout(() => resolve(), 50));
        throw new ChatError('upstream_unavailable');
      },
    };
    const { store, registry } = setup({ clock, provider: down });
    const session = await registry.create();
    const accepted = await session.send('one');
    await clock.advance(10); // the start is written
    const afterStart = store.saved.length;
    await clock.advance(50); // failed at 50
    expect(session.liveMessages()[1]?.status).toBe('failed');
    await clock.advance(FLUSH - 20); // 540: not yet
    expect((await store.load(session.sessionId))?.messages[1]?.status).toBe('streaming');
    expect(store.saved.length).toBe(afterStart);
    await clock.advance(20); // 560: past 50 + the interval
    expect((await store.load(session.sessionId))?.messages[1]).toMatchObject({ id: accepted.replyId, status: 'failed', errorCode: 'upstream_unavailable' });
    expect(store.saved.length).toBe(afterStart + 1);
  });

  it('writes nothing on passivation and re-activation brings the whole history back', async () => {
    const { clock, store, registry } = setup();
    const session = await registry.create();
    await session.send('one');
    await session.send('two');
    // Both replies streamed, and the last one's end written (within a flush interval).
    await clock.advance(2 * CHUNKS * INTERVAL + FLUSH + 10);
    const before = (await session.view()).messages;
    const writes = store.saved.length;
    await clock.advance(61_000); // past the TTL: the sweeper passivates it
    registry.passivateIdle();
    expect(registry.activeCount).toBe(0);
    expect(store.saved.length).toBe(writes);
    const again = await registry.find(session.sessionId);
    expect(again).not.toBe(session);
    expect((await again!.view()).messages).toEqual(before);
    expect(before.map((m) => m.status)).toEqual(['complete', 'complete', 'complete', 'complete']);
    expect(store.saved.length).toBe(writes);
  });

  it('on a failing store refuses new messages with store_unavailable, retries what it acknowledged, and keeps the session active', async () => {
    const { clock, store, registry } = setup();
    const session = await registry.create();
    const accepted = await session.send('keep me');
    await clock.advance(2 * INTERVAL);
    store.down = true;
    await clock.advance(CHUNKS * INTERVAL);
    // The reply finished on the screen; its final write failed and waits for a retry.
    expect(session.liveMessages()[1]?.status).toBe('complete');
    await expect(session.send('more')).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(session.liveMessages().map((m) => m.content)).not.toContain('more');
    await expect(registry.create()).rejects.toMatchObject({ code: 'store_unavailable' });
    await clock.advance(61_000);
    registry.passivateIdle();
    expect(registry.activeCount).toBe(1);

    store.down = false;
    await clock.advance(5_000);
    const stored = await store.load(session.sessionId);
    expect(stored?.messages.map((m) => [m.id, m.status])).toEqual([
      [accepted.user.id, 'complete'],
      [accepted.replyId, 'complete'],
    ]);
    expect(stored?.messages[1]?.content).toContain(`chunk ${CHUNKS}: keep me`);
    expect((await session.send('again')).position).toBe(0);
  });

  it('acknowledges nothing the store did not commit: a failed commit leaves the conversation as if the message never came', async () => {
    const { clock, store, registry, bus } = setup();
    const session = await registry.create();
    const accepted: string[] = [];
    bus.subscribe(session.sessionId, (event) => {
      if (event.type === 'message.accepted') accepted.push(event.text);
    });
    store.down = true; // not known yet: the commit itself fails
    await expect(session.send('lost')).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(session.liveMessages()).toEqual([]);
    expect(session.status()).toBe('idle');
    expect(accepted).toEqual([]);
    store.down = false;
    await clock.advance(300); // the health probe finds the store answering again
    const next = await session.send('kept');
    expect(next.position).toBe(0);
    await clock.advance(CHUNKS * INTERVAL);
    expect(accepted).toEqual(['kept']);
    expect((await store.load(session.sessionId))?.messages.map((m) => m.content)).toEqual(['kept', expect.stringContaining('chunk 1: kept')]);
  });

  it('goes by the store\'s answers, not by a flag: after an outage with a write in flight and a refused delete, every session serves', async () => {
    const { clock, store, registry } = setup();
    const session = await registry.create();
    const other = await registry.create();
    await session.send('streaming when the store goes');
    await clock.advance(2 * INTERVAL);
    store.down = true;
    await clock.advance(CHUNKS * INTERVAL); // the reply's last write fails: one is left to retry
    // A delete the store cannot do answers an error and changes nothing.
    await expect(registry.remove(session.sessionId)).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(registry.peek(session.sessionId)).toBe(session);
    expect(session.status()).toBe('idle');
    await expect(other.send('refused while down')).rejects.toMatchObject({ code: 'store_unavailable' });
    store.down = false;
    await clock.advance(300);
    expect((await other.send('fine')).position).toBe(0);
    expect(await registry.remove(session.sessionId)).toBe(true);
    expect(registry.peek(session.sessionId)).toBeUndefined();
    expect(await store.load(session.sessionId)).toBeUndefined();
  });

  it('re-activates a session left mid-reply by a crash: the reply is interrupted with its flushed text, numbering goes on above the mark', async () => {
    const { clock, store, registry, bus } = setup();
    const sessionId = 'crashed000000000000000';
    await store.create({
      sessionId,
      createdAt: 1,
      lastActiveAt: 2,
      // The start write never landed past seq 3, but chunks up to the mark may have gone out.
      lastSeq: 3,
      seqReserved: 1000,
      stopped: false,
      messages: [
        { id: 'u1', order: 2, role: 'user', content: 'hi', status: 'complete', createdAt: 1, updatedAt: 1 },
        { id: 'r1', order: 3, role: 'assistant', content: 'half an ans', status: 'streaming', createdAt: 1, updatedAt: 2, replyTo: 'u1' },
        { id: 'u2', order: 4, role: 'user', content: 'waiting', status: 'queued', createdAt: 2, updatedAt: 2 },
      ],
    });
    const session = await registry.find(sessionId);
    expect(session!.liveMessages().map((m) => [m.id, m.status, m.content])).toEqual([
      ['u1', 'complete', 'hi'],
      ['r1', 'interrupted', 'half an ans'],
      ['u2', 'cancelled', 'waiting'],
    ]);
    expect(session!.summary().lastSeq).toBe(1000);
    await clock.advance(10);
    const stored = await store.load(sessionId);
    expect(stored?.messages.map((m) => m.status)).toEqual(['complete', 'interrupted', 'cancelled']);
    expect(stored?.seqReserved).toBe(1000 + SEQ_BLOCK);
    const seqs: number[] = [];
    bus.subscribe(sessionId, (event) => {
      if (event.type === 'chunk') seqs.push(event.seq);
    });
    await session!.send('again');
    await clock.advance(CHUNKS * INTERVAL);
    expect(seqs).toEqual(Array.from({ length: CHUNKS }, (_, i) => 1001 + i));
  });

  it('a reply that reaches its stored chunk-number mark while the store is down ends failed (store_unavailable), never past the mark', async () => {
    const { clock, store, registry, bus } = setup({}, { chunks: SEQ_BLOCK + 10, intervalMs: 1 });
    const session = await registry.create(); // stored with the first block reserved
    const events: ChatEvent[] = [];
    bus.subscribe(session.sessionId, (event) => events.push(event));
    const accepted = await session.send('a very long reply');
    store.down = true; // its flushes fail from here on, so the mark is never raised
    await clock.advance(SEQ_BLOCK + 50);
    const seqs = events.flatMap((event) => (event.type === 'chunk' ? [event.seq] : []));
    expect(Math.max(...seqs)).toBe(SEQ_BLOCK);
    expect(events.find((event) => event.type === 'message.failed')).toMatchObject({ messageId: accepted.replyId, code: 'store_unavailable' });
    expect(session.status()).toBe('idle'); // the session goes on: no restart was spent on it
    store.down = false;
    await clock.advance(300);
    expect((await session.send('next')).position).toBe(0);
    await clock.advance(SEQ_BLOCK + 50);
    const after = events.flatMap((event) => (event.type === 'chunk' ? [event.seq] : []));
    expect(after.slice(seqs.length)[0]).toBe(SEQ_BLOCK + 1);
    expect(after.at(-1)).toBe(SEQ_BLOCK + 1 + SEQ_BLOCK + 9);
  });
});
