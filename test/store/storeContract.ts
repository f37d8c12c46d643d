import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ContentPart, Message } from '../../src/domain/message.ts';
import type { SessionStore } from '../../src/domain/ports.ts';
import { chunk, message, record, resetMessagePlaces, sid, T0, update } from './storeContractFixtures.ts';
import { describeStoreContractWrites } from './storeContractWrites.ts';

export interface StoreTraits {
  /** The store refuses a second message at the same place in a session (the SQL stores' unique index). */
  refusesDuplicateOrder: boolean;
}

/**
 * The behaviour every SessionStore must have. Run against memory, SQLite and
 * PostgreSQL (test/store/*.test.ts); `open` gives a fresh, empty store.
 */
export function describeStoreContract(name: string, open: () => Promise<SessionStore>, traits: StoreTraits): void {
  describe(`SessionStore contract: ${name}`, () => {
    let store: SessionStore;
    beforeEach(async () => {
      resetMessagePlaces();
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('creates and loads a session with its title, metadata, messages and chunk-number mark', async () => {
      const created = record(1, {
        seqReserved: 1000,
        title: 'Trip to Lisbon',
        metadata: { tags: ['travel'], priority: 2, pinned: true, note: null },
        messages: [message('m1', { content: 'héllo ✓' })],
      });
      await store.create(created);
      expect(await store.load(sid(1))).toEqual(created);
      expect(await store.load(sid(99))).toBeUndefined();
    });

    it('keeps every field of a message in its own column, written at creation and by a later write', async () => {
      // Every field set, and no two columns given the same value: a value bound to the wrong column shows.
      const full = (id: string, at: number, text: string): Message =>
        message(id, {
          role: 'assistant',
          content: `${text} content`,
          status: 'failed',
          createdAt: T0 + at,
          updatedAt: T0 + at + 1,
          replyTo: `${text}-question`,
          errorCode: 'provider_error',
          usage: { inputTokens: at + 2, outputTokens: at + 3 },
          parts: [{ type: 'text', text: `${text} part` }],
          toolCalls: [{ id: `${text}-call`, type: 'function', function: { name: `${text}_fn`, arguments: '{}' } }],
          toolCallId: `${text}-answered`,
          finishReason: 'length',
          model: `${text}-model`,
        });
      const created = full('m1', 10, 'first');
      await store.create(record(41, { messages: [created] }));
      const saved = full('m2', 20, 'second');
      await store.save(update(sid(41), [saved]));
      expect((await store.load(sid(41)))?.messages).toEqual([created, saved]);
    });

    it('keeps structured messages: content parts, tool calls, tool results, finish reason, model (and the session model)', async () => {
      const parts: ContentPart[] = [
        { type: 'text', text: 'What is in this image?' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' } },
        { type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } },
      ];
      const calls = [
        { id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        { id: 'call_2', type: 'function' as const, function: { name: 'get_time', arguments: '{"tz":"CET"}' } },
      ];
      const messages = [
        message('u1', { content: 'What is in this image?', parts }),
        message('r1', { role: 'assistant', content: '', replyTo: 'u1', toolCalls: calls, finishReason: 'tool_calls', model: 'fast' }),
        message('t1', { role: 'tool', content: '{"temp":21}', toolCallId: 'call_1' }),
        message('t2', { role: 'tool', content: '12:00', toolCallId: 'call_2' }),
      ];
      await store.create(record(40, { model: 'fast', messages: messages.slice(0, 1) }));
      await store.save(update(sid(40), messages.slice(1)));
      // A reply's tool calls, finish reason and model change as it streams and ends.
      await store.save(update(sid(40), [message('r2', { role: 'assistant', content: 'It', status: 'streaming', replyTo: 't2', toolCalls: [calls[0]!] })]));
      const final = message('r2', {
        role: 'assistant',
        content: 'It is sunny.',
        replyTo: 't2',
        toolCalls: calls,
        finishReason: 'length',
        model: 'backup',
        usage: { inputTokens: 5, outputTokens: 6 },
        updatedAt: T0 + 9,
      });
      await store.save(update(sid(40), [final]));
      const loaded = await store.load(sid(40));
      expect(loaded?.model).toBe('fast');
      expect(loaded?.messages).toEqual([...messages, final]);
      expect((await store.listSessions({ limit: 50 })).sessions.find((summary) => summary.sessionId === sid(40))?.model).toBe('fast');
      expect((await store.listMessages(sid(40), { limit: 2 }))?.messages).toEqual(messages.slice(0, 2));
    });

    it('keeps tokens spent per key, day and model: increments add up, from every writer', async () => {
      const usage = store.usage!;
      expect(usage).toBeDefined();
      const day1 = '2026-03-10';
      const day2 = '2026-03-11';
      await usage.add([
        { keyId: 'k1', day: day1, model: 'fast', inputTokens: 10, outputTokens: 5 },
        { keyId: 'k1', day: day1, model: 'fast', inputTokens: 1, outputTokens: 1 },
        { keyId: 'k2', day: day1, model: 'sim', inputTokens: 7, outputTokens: 0 },
      ]);
      // Two writers at once (two nodes): nothing lost.
      await Promise.all([
        usage.add([{ keyId: 'k1', day: day2, model: 'fast', inputTokens: 100, outputTokens: 50 }]),
        usage.add([{ keyId: 'k1', day: day2, model: 'fast', inputTokens: 1, outputTokens: 2 }]),
      ]);
      expect(await usage.list({ keyId: 'k1', fromDay: day1, toDay: day2 })).toEqual([
        { keyId: 'k1', day: day1, model: 'fast', inputTokens: 11, outputTokens: 6 },
        { keyId: 'k1', day: day2, model: 'fast', inputTokens: 101, outputTokens: 52 },
      ]);
      expect(await usage.list({ fromDay: day1, toDay: day1 })).toEqual([
        { keyId: 'k1', day: day1, model: 'fast', inputTokens: 11, outputTokens: 6 },
        { keyId: 'k2', day: day1, model: 'sim', inputTokens: 7, outputTokens: 0 },
      ]);
      expect(await usage.list({ keyId: 'k3', fromDay: day1, toDay: day2 })).toEqual([]);
    });

    describeStoreContractWrites(() => store);

    it('lists sessions newest first, page by page, with no gap and no repeat', async () => {
      for (let n = 10; n < 17; n += 1) await store.create(record(n, n === 12 ? { title: 'twelve', metadata: { a: 1 } } : {}));
      // Two sessions created in the same millisecond are ordered by id.
      await store.create(record(17, { createdAt: T0 + 16 }));
      await store.save(update(sid(12), [message('x'), message('y')]));
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listSessions({ limit: 3, ...(cursor ? { cursor } : {}) });
        seen.push(...page.sessions.map((s) => s.sessionId));
        cursor = page.nextCursor ?? undefined;
        pages += 1;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual([sid(17), sid(16), sid(15), sid(14), sid(13), sid(12), sid(11), sid(10)]);
      const first = await store.listSessions({ limit: 100 });
      const twelve = first.sessions.find((s) => s.sessionId === sid(12));
      expect(twelve).toEqual({
        sessionId: sid(12),
        createdAt: T0 + 12,
        lastActiveAt: T0 + 12,
        stopped: false,
        messageCount: 2,
        title: 'twelve',
        metadata: { a: 1 },
        preview: 'x',
      });
      expect(first.nextCursor).toBeNull();
    });

    it('pages through messages oldest or newest first', async () => {
      await store.create(record(20));
      const ids = Array.from({ length: 7 }, (_, i) => `m${i + 1}`);
      for (const id of ids) await store.save(update(sid(20), [message(id)]));
      const collect = async (order: 'asc' | 'desc') => {
        const all: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.listMessages(sid(20), { limit: 3, order, ...(cursor ? { cursor } : {}) });
          all.push(...(page?.messages ?? []).map((m) => m.id));
          cursor = page?.nextCursor ?? undefined;
        } while (cursor);
        return all;
      };
      expect(await collect('asc')).toEqual(ids);
      expect(await collect('desc')).toEqual([...ids].reverse());
      expect(await store.listMessages(sid(99), { limit: 3 })).toBeUndefined();
      await expect(store.listMessages(sid(20), { limit: 3, cursor: 'bogus' })).rejects.toMatchObject({ code: 'bad_request' });
      await expect(store.listSessions({ limit: 3, cursor: 'bogus' })).rejects.toMatchObject({ code: 'bad_request' });
    });

    it('commits many concurrent writes, in order, without losing one', async () => {
      const sessions = [30, 31, 32, 33];
      for (const n of sessions) await store.create(record(n));
      const writes: Promise<void>[] = [];
      for (let step = 1; step <= 50; step += 1) {
        for (const n of sessions) {
          writes.push(
            store.save(
              update(sid(n), [message('r', { role: 'assistant', content: 'x'.repeat(step), status: step === 50 ? 'complete' : 'streaming' })], {
                lastSeq: step,
                chunks: [chunk(sid(n), 'r', step)],
              }),
            ),
          );
        }
      }
      await Promise.all(writes);
      for (const n of sessions) {
        const loaded = await store.load(sid(n));
        expect(loaded?.lastSeq).toBe(50);
        expect(loaded?.messages.map((m) => [m.content.length, m.status])).toEqual([[50, 'complete']]);
      }
    });

    it('pages and loads in conversation order, not the order of writing', async () => {
      await store.create(record(40));
      const s = sid(40);
      // q1 answered by r1; q2 and q3 stored while r1 streamed; r2 and r3 written later, each right after its question.
      const at = (id: string, order: number, extra: Partial<Message> = {}) => message(id, { order, ...extra });
      await store.save(update(s, [at('q1', 2), at('r1', 3, { role: 'assistant', status: 'streaming' })]));
      await store.save(update(s, [at('q2', 4, { status: 'queued' })]));
      await store.save(update(s, [at('q3', 6, { status: 'queued' })]));
      await store.save(update(s, [at('r1', 3, { role: 'assistant' }), at('q2', 4), at('r2', 5, { role: 'assistant' })]));
      await store.save(update(s, [at('q3', 6), at('r3', 7, { role: 'assistant' })]));
      const expected = ['q1', 'r1', 'q2', 'r2', 'q3', 'r3'];
      expect((await store.load(s))?.messages.map((m) => m.id)).toEqual(expected);
      const asc: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listMessages(s, { limit: 4, ...(cursor ? { cursor } : {}) });
        asc.push(...page!.messages.map((m) => m.id));
        cursor = page!.nextCursor ?? undefined;
      } while (cursor);
      expect(asc).toEqual(expected);
      const newest = await store.listMessages(s, { limit: 2, order: 'desc' });
      expect(newest?.messages.map((m) => m.id)).toEqual(['r3', 'q3']);
      const older = await store.listMessages(s, { limit: 10, order: 'desc', cursor: newest!.nextCursor! });
      expect(older?.messages.map((m) => m.id)).toEqual(['r2', 'q2', 'r1', 'q1']);
      expect(older?.nextCursor).toBeNull();
    });

    it('loads a window of the newest messages, and every unfinished one however old', async () => {
      const s = sid(41);
      const old = [
        message('u-old', { order: 2, status: 'queued', content: 'left waiting by a crash' }),
        message('r-old', { order: 3, role: 'assistant', status: 'streaming', content: 'cut off' }),
      ];
      const recent = Array.from({ length: 30 }, (_, i) => message(`m${i}`, { order: 10 + 2 * i, content: 'x'.repeat(100) }));
      await store.create(record(41, { messages: [...old, ...recent] }));
      const byCount = await store.load(s, { maxMessages: 5, maxChars: 1_000_000 });
      expect(byCount?.messages.map((m) => m.id)).toEqual(['u-old', 'r-old', 'm25', 'm26', 'm27', 'm28', 'm29']);
      const byChars = await store.load(s, { maxMessages: 1000, maxChars: 250 });
      expect(byChars?.messages.map((m) => m.id)).toEqual(['u-old', 'r-old', 'm27', 'm28', 'm29']);
      // The newest always comes, however large.
      const tiny = await store.load(s, { maxMessages: 1000, maxChars: 1 });
      expect(tiny?.messages.map((m) => m.id)).toEqual(['u-old', 'r-old', 'm29']);
      expect((await store.load(s))?.messages).toHaveLength(32);
    });

    it.skipIf(!traits.refusesDuplicateOrder)('fails only the update it refuses for its content; the rest of the batch commits', async () => {
      for (const n of [50, 51, 52]) await store.create(record(n, { messages: [message(`first-${n}`, { order: 2 })] }));
      // Sent in the same tick, so they are group-committed together; 51's clashes with a message already at its place.
      const results = await Promise.allSettled([
        store.save(update(sid(50), [message('ok-50', { order: 4 })], { lastSeq: 5 })),
        store.save(update(sid(51), [message('clash-51', { order: 2 })], { lastSeq: 5 })),
        store.save(update(sid(52), [message('ok-52', { order: 4 })], { lastSeq: 5 })),
      ]);
      expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'store_rejected' });
      expect((await store.load(sid(50)))?.messages.map((m) => m.id)).toEqual(['first-50', 'ok-50']);
      expect((await store.load(sid(52)))?.messages.map((m) => m.id)).toEqual(['first-52', 'ok-52']);
      const refused = await store.load(sid(51));
      expect(refused?.messages.map((m) => m.id)).toEqual(['first-51']);
      expect(refused?.lastSeq).toBe(0);
    });

    it('answers ping while open and reports store_unavailable once closed', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
      const other = await open();
      await other.close();
      if (name !== 'memory') await expect(other.ping()).rejects.toMatchObject({ code: 'store_unavailable' });
    });
  });
}
