import { describe, expect, it } from 'vitest';
import { createStoreWriter } from '../../src/actors/storeWriter.ts';
import { Conversation } from '../../src/domain/conversation.ts';
import type { ChunkEvent } from '../../src/domain/events.ts';
import type { Message } from '../../src/domain/message.ts';
import type { SessionStore, SessionUpdate } from '../../src/domain/ports.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { systemClock } from '../../src/infra/systemClock.ts';
import { ManualClock } from '../support/manualClock.ts';

/** A store whose writes answer only when the test says so, in the order they came. */
function heldStore() {
  const writes: { update: SessionUpdate; chunksWhenSaved: number; answer: () => void; fail: (error: Error) => void }[] = [];
  let arrived: (() => void) | undefined;
  const store = {
    save(update: SessionUpdate): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        writes.push({ update, chunksWhenSaved: update.chunks?.length ?? 0, answer: resolve, fail: reject });
        arrived?.();
      });
    },
  } as unknown as SessionStore;
  const nextWrite = async (count: number) => {
    while (writes.length < count) await new Promise<void>((resolve) => (arrived = resolve));
    return writes[count - 1]!;
  };
  return { store, writes, nextWrite };
}

const settledYet = async (promise: Promise<unknown>) => {
  let settled = false;
  void promise.then(() => (settled = true));
  // Several turns: a wrongly shared waiter would be resolved by the first write's answer within them.
  for (let turn = 0; turn < 5; turn += 1) await new Promise<void>((resolve) => setImmediate(resolve));
  return settled;
};

const chunk = (seq: number): ChunkEvent => ({ type: 'chunk', sessionId: 's', messageId: 'm', seq, chunk: `c${seq}`, is_last: false });

describe('store writer: a write in flight keeps only what it took', () => {
  it('a commit asked while an unawaited write is in flight resolves on its own write, not on the earlier one', async () => {
    const { store, writes, nextWrite } = heldStore();
    const writer = createStoreWriter({ store, clock: systemClock, logger: silentLogger, lifecycleDelayMs: 0 });
    const conversation = Conversation.start('s', 1, { queueLimit: 8 });

    writer.save(conversation, []);
    const background = await nextWrite(1);
    const committed = writer.commit(conversation, []);
    background.answer();
    expect(await settledYet(committed)).toBe(false);

    const own = await nextWrite(2);
    expect(writes).toHaveLength(2);
    own.answer();
    await committed;
    await writer.close(1000);
  });

  it('chunks noted while a write without chunks is in flight go in the next write, never into the one in flight', async () => {
    const { store, nextWrite } = heldStore();
    const writer = createStoreWriter({ store, clock: systemClock, logger: silentLogger, lifecycleDelayMs: 0, flushIntervalMs: 5 });
    const conversation = Conversation.start('s', 1, { queueLimit: 8 });

    writer.save(conversation, []);
    const first = await nextWrite(1);
    writer.chunk(conversation, chunk(1));
    writer.chunk(conversation, chunk(2));
    expect(first.update.chunks ?? []).toHaveLength(0);
    first.answer();

    const second = await nextWrite(2);
    expect(first.update.chunks ?? []).toHaveLength(0);
    expect(second.update.chunks?.map((event) => event.seq)).toEqual([1, 2]);
    second.answer();
    await writer.close(1000);
  });

  it('a failed write goes again in front of what came meanwhile: newer versions win, first places kept, the taken array untouched', async () => {
    const { store, writes, nextWrite } = heldStore();
    // The retry's backoff on a clock the test moves: no real timer decides when the write goes again.
    const clock = new ManualClock();
    const writer = createStoreWriter({ store, clock, logger: silentLogger, lifecycleDelayMs: 0, retryBaseMs: 100 });
    const conversation = Conversation.start('s', 1, { queueLimit: 8 });
    const message = (id: string, content: string, order: number): Message => ({ id, order, role: 'user', content, status: 'complete', createdAt: 1, updatedAt: 1 });
    const versions = (update: SessionUpdate) => update.messages.map((queued) => `${queued.id}:${queued.content}`);

    writer.save(conversation, [message('a', 'a1', 2), message('b', 'b1', 4)]);
    await clock.advance(0);
    const first = await nextWrite(1);
    writer.save(conversation, [message('c', 'c1', 6), message('a', 'a2', 2)]);
    // What came meanwhile collects apart: the write in flight keeps what it took.
    expect(versions(first.update)).toEqual(['a:a1', 'b:b1']);
    first.fail(new Error('connection lost'));
    await clock.advance(99);
    expect(writes).toHaveLength(1); // still backing off
    await clock.advance(1);

    const retried = await nextWrite(2);
    expect(versions(first.update)).toEqual(['a:a1', 'b:b1']);
    expect(versions(retried.update)).toEqual(['a:a2', 'b:b1', 'c:c1']);
    retried.answer();
    await writer.close(1000);
  });
});
