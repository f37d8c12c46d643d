import { beforeEach, expect, it } from 'vitest';
import type { SessionStore } from '../../src/domain/ports.ts';
import { chunk, message, record, sid, T0, update } from './storeContractFixtures.ts';

/**
 * The writing part of the SessionStore contract: upserts and counters, writes
 * for a missing session, deletes, and the chunk log of a streaming reply.
 * Called inside describeStoreContract's suite: its hooks open a fresh store
 * before each test (`current` gives it) and close it after.
 */
export function describeStoreContractWrites(current: () => SessionStore): void {
  let store: SessionStore;
  beforeEach(() => {
    store = current();
  });

  it('upserts messages by id, keeps them in the order first written, and never moves counters back', async () => {
    await store.create(record(2, { seqReserved: 1000 }));
    await store.save(update(sid(2), [message('u1', { status: 'queued' })], { lastSeq: 0, seqReserved: 2000, lastActiveAt: T0 + 5 }));
    await store.save(
      update(sid(2), [message('u1'), message('r1', { role: 'assistant', content: 'part', status: 'streaming', replyTo: 'u1' })], {
        lastSeq: 3,
        lastActiveAt: T0 + 10,
      }),
    );
    const failedReply = message('r1', {
      role: 'assistant',
      content: 'partial answer',
      status: 'failed',
      replyTo: 'u1',
      errorCode: 'provider_error',
      usage: { inputTokens: 12, outputTokens: 34 },
      updatedAt: T0 + 20,
    });
    await store.save(
      update(
        sid(2),
        [
          failedReply,
        ],
        { lastSeq: 7, lastActiveAt: T0 + 20, stopped: true },
      ),
    );
    // A late, older counter value must not win.
    await store.save(update(sid(2), [], { lastSeq: 2, seqReserved: 1500, lastActiveAt: T0 + 1, stopped: true }));
    const loaded = await store.load(sid(2));
    expect(loaded?.lastSeq).toBe(7);
    expect(loaded?.seqReserved).toBe(2000);
    expect(loaded?.lastActiveAt).toBe(T0 + 20);
    expect(loaded?.stopped).toBe(true);
    expect(loaded?.messages).toEqual([
      message('u1'),
      failedReply,
    ]);
  });

  it('keeps text and numbers a later write carries exactly as given (SQLite: through its writer thread)', async () => {
    // What JSON or a clone could bend: quotes, backslashes, control and line
    // separators, markup, non-ASCII and non-BMP text; integers past 2^32 (token counts up to 2^31).
    const text = 'say "hi" \\ C:\\path\n\ttab \r\u2028\u2029 </script> <!-- é 中文 😀 \u{10FFFF} \u007f';
    await store.create(record(44));
    const written = message('x1', {
      role: 'assistant',
      content: text,
      status: 'complete',
      usage: { inputTokens: 2 ** 31 - 1, outputTokens: 2 ** 31 - 2 }, // PostgreSQL's columns are integer
      createdAt: T0 + 2 ** 33,
      updatedAt: T0 + 2 ** 33 + 1,
      toolCalls: [{ id: 'call "1"', type: 'function', function: { name: 'f', arguments: '{"q":"a\\"b"}' } }],
    });
    await store.save(update(sid(44), [written], { lastSeq: 2 ** 40, seqReserved: 2 ** 41, lastActiveAt: T0 + 2 ** 33 }));
    const loaded = await store.load(sid(44));
    expect(loaded?.messages).toEqual([written]);
    expect(loaded?.messages[0]?.content).toBe(text);
    expect([loaded?.lastSeq, loaded?.seqReserved, loaded?.lastActiveAt]).toEqual([2 ** 40, 2 ** 41, T0 + 2 ** 33]);
  });

  it('refuses writes for a session that does not exist (deleted meanwhile) with session_not_found, keeping nothing', async () => {
    await expect(store.save(update(sid(3), [message('ghost')], { chunks: [chunk(sid(3), 'ghost', 1)] }))).rejects.toMatchObject({
      code: 'session_not_found',
    });
    expect(await store.load(sid(3))).toBeUndefined();
    expect(await store.chunksAfter(sid(3), 0)).toEqual([]);
  });

  it('deletes a session with its messages and chunks', async () => {
    await store.create(record(4));
    await store.save(
      update(sid(4), [message('r', { role: 'assistant', status: 'streaming' })], { lastSeq: 1, chunks: [chunk(sid(4), 'r', 1)] }),
    );
    expect(await store.delete(sid(4))).toBe(true);
    expect(await store.load(sid(4))).toBeUndefined();
    expect(await store.listMessages(sid(4), { limit: 10 })).toBeUndefined();
    expect(await store.chunksAfter(sid(4), 0)).toEqual([]);
    expect(await store.delete(sid(4))).toBe(false);
    // The same message ids may be used again by another session.
    await store.create(record(5, { messages: [message('r')] }));
    expect((await store.load(sid(5)))?.messages).toEqual([message('r')]);
  });

  it('deletes with an owner only a session of that owner (a node deleting on behalf of a key before asking the owner node)', async () => {
    await store.create(record(6, { owner: 'key-a', messages: [message('mine')] }));
    await store.create(record(7, { messages: [message('nobody')] }));
    expect(await store.delete(sid(6), 'key-b')).toBe(false);
    expect(await store.delete(sid(7), 'key-b')).toBe(false);
    expect((await store.load(sid(6)))?.messages).toEqual([message('mine')]);
    expect((await store.load(sid(7)))?.messages).toEqual([message('nobody')]);
    expect(await store.delete(sid(6), 'key-a')).toBe(true);
    expect(await store.load(sid(6))).toBeUndefined();
    expect(await store.delete(sid(7))).toBe(true);
  });

  it('keeps the chunks of a reply while it streams, drops them when it finishes', async () => {
    const s = sid(6);
    await store.create(record(6));
    const streaming = message('r1', { role: 'assistant', content: 'c1c2', status: 'streaming' });
    await store.save(update(s, [streaming], { lastSeq: 2, chunks: [chunk(s, 'r1', 1), chunk(s, 'r1', 2)] }));
    await store.save(update(s, [{ ...streaming, content: 'c1c2c3' }], { lastSeq: 3, chunks: [chunk(s, 'r1', 3)] }));
    expect((await store.chunksAfter(s, 0)).map((c) => c.seq)).toEqual([1, 2, 3]);
    expect(await store.chunksAfter(s, 1)).toEqual([chunk(s, 'r1', 2), chunk(s, 'r1', 3)]);
    await store.save(
      update(s, [{ ...streaming, content: 'c1c2c3c4', status: 'complete' }], { lastSeq: 4, chunks: [chunk(s, 'r1', 4, 'c4', true)] }),
    );
    expect(await store.chunksAfter(s, 0)).toEqual([]);
    // Each write kept the reply's latest text and status with its log step.
    expect((await store.load(s))?.messages.map((m) => [m.id, m.content, m.status])).toEqual([['r1', 'c1c2c3c4', 'complete']]);
  });

  it("keeps an interrupted reply's chunks until the next reply streams", async () => {
    const s = sid(7);
    await store.create(record(7));
    await store.save(
      update(s, [message('r1', { role: 'assistant', content: 'c1c2', status: 'streaming' })], {
        lastSeq: 2,
        chunks: [chunk(s, 'r1', 1), chunk(s, 'r1', 2)],
      }),
    );
    await store.save(update(s, [message('r1', { role: 'assistant', content: 'c1c2', status: 'interrupted' })], { lastSeq: 1_000 }));
    expect(await store.chunksAfter(s, 0)).toEqual([chunk(s, 'r1', 1), chunk(s, 'r1', 2)]);
    await store.save(
      update(s, [message('r2', { role: 'assistant', content: 'c1001', status: 'streaming' })], {
        lastSeq: 1_001,
        chunks: [chunk(s, 'r2', 1_001)],
      }),
    );
    expect(await store.chunksAfter(s, 0)).toEqual([chunk(s, 'r2', 1_001)]);
  });

  it('serves chunks as slices of the stored text, ignores a repeated append, and never invents text', async () => {
    const s = sid(8);
    await store.create(record(8));
    const reply = (content: string) => message('r', { role: 'assistant', content, status: 'streaming' });
    await store.save(update(s, [reply('héllo, ')], { lastSeq: 2, chunks: [chunk(s, 'r', 1, 'hé'), chunk(s, 'r', 2, 'llo, ')] }));
    // The same write again (a retry after a lost acknowledgement) changes nothing.
    await store.save(update(s, [reply('héllo, ')], { lastSeq: 2, chunks: [chunk(s, 'r', 1, 'hé'), chunk(s, 'r', 2, 'llo, ')] }));
    await store.save(update(s, [reply('héllo, wörld ✓')], { lastSeq: 3, chunks: [chunk(s, 'r', 3, 'wörld ✓')] }));
    expect((await store.chunksAfter(s, 0)).map((c) => [c.seq, c.chunk])).toEqual([
      [1, 'hé'],
      [2, 'llo, '],
      [3, 'wörld ✓'],
    ]);
    // A gap (chunks 4–5 never written) is not papered over: nothing after it is served.
    await store.save(update(s, [reply('héllo, wörld ✓!?')], { lastSeq: 6, chunks: [chunk(s, 'r', 6, '?')] }));
    expect((await store.chunksAfter(s, 2)).map((c) => c.seq)).toEqual([3]);
    // The append refused for its gap does not hold back the text written with it.
    expect((await store.load(s))?.messages.map((m) => m.content)).toEqual(['héllo, wörld ✓!?']);
  });
}
