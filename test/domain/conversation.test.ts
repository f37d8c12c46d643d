import { describe, expect, it } from 'vitest';
import { Conversation } from '../../src/domain/conversation.ts';
import type { Accepted } from '../../src/domain/conversation.ts';
import { SEQ_BLOCK } from '../../src/domain/chunkNumbers.ts';
import { ChatError } from '../../src/domain/errors.ts';

const NOW = 1_000;
const policy = (queueLimit = 8, extra: { contextBudgetTokens?: number; reserveSeqs?: boolean } = {}) => ({ queueLimit, ...extra });

function ids(n: number) {
  return { user: `u${n}`, reply: `r${n}` };
}

/** Takes a message in and, as the store would once it committed, admits it. */
function send(conversation: Conversation, text: string, n: number): Accepted {
  const taken = conversation.accept(text, ids(n), NOW);
  return conversation.admit(taken.user.id)!;
}

function answer(conversation: Conversation, text: string): void {
  conversation.startNextReply(NOW);
  conversation.appendChunk(text, NOW);
  conversation.finishReply('complete', NOW);
}

describe('Conversation', () => {
  it('queues messages up to the limit, counting those still being stored, then refuses with busy', () => {
    const conversation = Conversation.start('s', NOW, policy(2));
    expect(send(conversation, 'first', 1).position).toBe(0);
    conversation.startNextReply(NOW);
    expect(send(conversation, 'second', 2).position).toBe(1);
    conversation.accept('third', ids(3), NOW); // taken in, not stored yet: it already holds a place
    expect(() => conversation.accept('fourth', ids(4), NOW)).toThrow(expect.objectContaining({ code: 'busy' }));
    expect(conversation.admit('u3')?.position).toBe(2);
    expect(conversation.history().map((message) => message.content)).toEqual(['first', '', 'second', 'third']);
  });

  it('keeps a message out of the queue until it is admitted, and forgets one withdrawn', () => {
    const conversation = Conversation.start('s', NOW, policy());
    conversation.accept('not stored yet', ids(1), NOW);
    expect(conversation.hasQueued).toBe(false);
    expect(conversation.startNextReply(NOW)).toBeUndefined();
    expect(conversation.withdraw('u1')).toBe(true);
    expect(conversation.admit('u1')).toBeUndefined();
    expect(conversation.history()).toEqual([]);
    expect(send(conversation, 'stored', 2).position).toBe(0);
    expect(conversation.startNextReply(NOW)?.prompt.content).toBe('stored');
  });

  it('refuses empty text with bad_request and a stopped session with session_stopped', () => {
    const conversation = Conversation.start('s', NOW, policy());
    expect(() => conversation.accept('   ', ids(1), NOW)).toThrow(expect.objectContaining({ code: 'bad_request' }));
    conversation.stop(NOW);
    const refusal = (() => {
      try {
        conversation.accept('hi', ids(2), NOW);
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(ChatError);
    expect((refusal as ChatError).code).toBe('session_stopped');
  });

  it('numbers chunks across the whole session and keeps the text of every reply (U+0000 replaced)', () => {
    const conversation = Conversation.start('s', NOW, policy());
    send(conversation, 'a', 1);
    conversation.startNextReply(NOW);
    expect(conversation.appendChunk('x', NOW)).toEqual({ messageId: 'r1', seq: 1, text: 'x' });
    expect(conversation.appendChunk('y\0', NOW)).toEqual({ messageId: 'r1', seq: 2, text: 'y\uFFFD' });
    expect(conversation.finishReply('complete', NOW)?.content).toBe('xy\uFFFD');
    send(conversation, 'b', 2);
    conversation.startNextReply(NOW);
    expect(conversation.appendChunk('z', NOW)).toEqual({ messageId: 'r2', seq: 3, text: 'z' });
    expect(conversation.finishReply('cancelled', NOW)).toMatchObject({ content: 'z', status: 'cancelled' });
  });

  it('keeps each reply right after its question, whatever was queued meanwhile, and gives the model every earlier turn in that order', () => {
    const conversation = Conversation.start('s', NOW, policy());
    send(conversation, 'q1', 1);
    conversation.startNextReply(NOW);
    send(conversation, 'q2', 2);
    send(conversation, 'q3', 3);
    conversation.appendChunk('a1', NOW);
    conversation.finishReply('complete', NOW);
    conversation.startNextReply(NOW);
    expect(conversation.context().map((message) => message.content)).toEqual(['q1', 'a1']);
    conversation.appendChunk('a2', NOW);
    conversation.finishReply('complete', NOW);
    conversation.startNextReply(NOW);
    expect(conversation.inProgress()?.prompt.content).toBe('q3');
    expect(conversation.context().map((message) => message.content)).toEqual(['q1', 'a1', 'q2', 'a2']);
    conversation.appendChunk('a3', NOW);
    conversation.finishReply('complete', NOW);
    const history = conversation.history();
    expect(history.map((message) => message.content)).toEqual(['q1', 'a1', 'q2', 'a2', 'q3', 'a3']);
    // The stores page by this key: it is the conversation order, fixed when each message was taken in.
    expect(history.map((message) => message.order)).toEqual([2, 3, 4, 5, 6, 7]);
  });

  it('gives the model only complete turns before the prompt', () => {
    const conversation = Conversation.start('s', NOW, policy());
    send(conversation, 'one', 1);
    answer(conversation, 'answer one');
    send(conversation, 'two', 2);
    conversation.startNextReply(NOW);
    conversation.appendChunk('half', NOW);
    conversation.finishReply('cancelled', NOW);
    send(conversation, 'three', 3);
    send(conversation, 'four', 4);
    conversation.startNextReply(NOW);
    expect(conversation.context().map((message) => message.content)).toEqual(['one', 'answer one', 'two']);
    expect(conversation.inProgress()?.prompt.content).toBe('three');
  });

  it('holds only a window of history within the context budget; the newest turns stay', () => {
    const conversation = Conversation.start('s', NOW, policy(8, { contextBudgetTokens: 100 }));
    for (let n = 1; n <= 20; n += 1) {
      send(conversation, `question ${n} ${'x'.repeat(40)}`, n);
      answer(conversation, `answer ${n} ${'y'.repeat(40)}`);
    }
    const held = conversation.history();
    expect(held.length).toBeLessThan(10);
    expect(held.at(-1)?.content).toMatch(/^answer 20/);
    expect(conversation.messageCount).toBe(held.length);
    // Whatever is held, the model gets its newest part, in order.
    send(conversation, 'next', 21);
    conversation.startNextReply(NOW);
    expect(conversation.context().at(-1)?.content).toMatch(/^answer 20/);
  });

  it('restores a record without resurrecting unfinished work, and goes on above the stored chunk-number mark', () => {
    const conversation = Conversation.start('s', NOW, policy(8, { reserveSeqs: true }));
    send(conversation, 'a', 1);
    conversation.startNextReply(NOW);
    conversation.appendChunk('part', NOW);
    send(conversation, 'b', 2);
    const record = conversation.toRecord();
    expect(record.seqReserved).toBe(SEQ_BLOCK);
    const restored = Conversation.restore(record, policy(8, { reserveSeqs: true }));
    expect(restored.generating).toBe(false);
    expect(restored.hasQueued).toBe(false);
    // Any number up to the mark may have reached a client before the crash.
    expect(restored.lastSeq).toBe(SEQ_BLOCK);
    expect(restored.history().map((message) => [message.content, message.status])).toEqual([
      ['a', 'complete'],
      ['part', 'interrupted'],
      ['b', 'cancelled'],
    ]);
    expect(restored.takeRecovered().map((message) => [message.content, message.status])).toEqual([
      ['part', 'interrupted'],
      ['b', 'cancelled'],
    ]);
    expect(restored.takeRecovered()).toEqual([]);
  });

  it('never numbers a chunk above the reserved mark; the mark is raised a block ahead and confirmed by the store', () => {
    const conversation = Conversation.restore(
      { sessionId: 's', createdAt: NOW, lastActiveAt: NOW, lastSeq: 7, seqReserved: 40, stopped: false, messages: [] },
      policy(8, { reserveSeqs: true }),
    );
    expect(conversation.lastSeq).toBe(40);
    send(conversation, 'a', 1);
    conversation.startNextReply(NOW);
    expect(conversation.mustReserveSeq).toBe(true);
    expect(() => conversation.appendChunk('x', NOW)).toThrow(expect.objectContaining({ code: 'internal_error' }));
    expect(conversation.seqReservation).toBe(40 + SEQ_BLOCK);
    conversation.confirmSeqReserved(conversation.seqReservation);
    expect(conversation.appendChunk('x', NOW).seq).toBe(41);
    // Half a block used: the next write carries a mark a block ahead, before the stream gets there.
    for (let n = 0; n < SEQ_BLOCK / 2; n += 1) conversation.appendChunk('x', NOW);
    expect(conversation.seqReservation).toBe(conversation.lastSeq + SEQ_BLOCK);
    expect(conversation.mustReserveSeq).toBe(false);
  });

  it('without a durable store nothing is reserved: a restored session goes on from its last chunk', () => {
    const conversation = Conversation.start('s', NOW, policy());
    send(conversation, 'a', 1);
    answer(conversation, 'done');
    const record = conversation.toRecord();
    expect(record.seqReserved).toBe(1);
    const restored = Conversation.restore(record, policy());
    expect(restored.lastSeq).toBe(1);
    expect(restored.mustReserveSeq).toBe(false);
    expect(restored.takeRecovered()).toEqual([]);
  });

  it('restores title and metadata', () => {
    const conversation = Conversation.start('s', NOW, policy(), { title: 'Trip', metadata: { tags: ['x'] } });
    const restored = Conversation.restore(conversation.toRecord(), policy());
    expect(restored.title).toBe('Trip');
    expect(restored.toRecord().metadata).toEqual({ tags: ['x'] });
  });

  it('hands out copies: changing them changes nothing inside', () => {
    const conversation = Conversation.start('s', NOW, policy());
    send(conversation, 'a', 1);
    const [message] = conversation.history();
    message!.content = 'tampered';
    expect(conversation.history()[0]!.content).toBe('a');
  });
});
