import { describe, expect, it } from 'vitest';
import { Conversation, SEQ_GAP_AFTER_CRASH } from '../../src/domain/conversation.ts';
import { ChatError } from '../../src/domain/errors.ts';

const NOW = 1_000;

function ids(n: number) {
  return { user: `u${n}`, reply: `r${n}` };
}

describe('Conversation', () => {
  it('queues messages up to the limit while a reply is in progress, then refuses with busy', () => {
    const conversation = Conversation.start('s', NOW, 2);
    expect(conversation.accept('first', ids(1), NOW).position).toBe(0);
    conversation.startNextReply(NOW);
    expect(conversation.accept('second', ids(2), NOW).position).toBe(1);
    expect(conversation.accept('third', ids(3), NOW).position).toBe(2);
    const refusal = (() => {
      try {
        conversation.accept('fourth', ids(4), NOW);
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(ChatError);
    expect((refusal as ChatError).code).toBe('busy');
    expect(conversation.history().map((message) => message.content)).toEqual(['first', '', 'second', 'third']);
  });

  it('refuses empty text with bad_request and a stopped session with session_stopped', () => {
    const conversation = Conversation.start('s', NOW, 8);
    expect(() => conversation.accept('   ', ids(1), NOW)).toThrow(expect.objectContaining({ code: 'bad_request' }));
    conversation.stop(NOW);
    expect(() => conversation.accept('hi', ids(2), NOW)).toThrow(expect.objectContaining({ code: 'session_stopped' }));
  });

  it('numbers chunks across the whole session and keeps the text of every reply', () => {
    const conversation = Conversation.start('s', NOW, 8);
    conversation.accept('a', ids(1), NOW);
    conversation.startNextReply(NOW);
    expect(conversation.appendChunk('x', NOW)).toEqual({ messageId: 'r1', seq: 1 });
    expect(conversation.appendChunk('y', NOW)).toEqual({ messageId: 'r1', seq: 2 });
    expect(conversation.finishReply('complete', NOW)?.content).toBe('xy');
    conversation.accept('b', ids(2), NOW);
    conversation.startNextReply(NOW);
    expect(conversation.appendChunk('z', NOW)).toEqual({ messageId: 'r2', seq: 3 });
    expect(conversation.finishReply('cancelled', NOW)).toMatchObject({ content: 'z', status: 'cancelled' });
  });

  it('gives the model only complete turns before the prompt', () => {
    const conversation = Conversation.start('s', NOW, 8);
    conversation.accept('one', ids(1), NOW);
    conversation.startNextReply(NOW);
    conversation.appendChunk('answer one', NOW);
    conversation.finishReply('complete', NOW);
    conversation.accept('two', ids(2), NOW);
    conversation.startNextReply(NOW);
    conversation.appendChunk('half', NOW);
    conversation.finishReply('cancelled', NOW);
    conversation.accept('three', ids(3), NOW);
    conversation.accept('four', ids(4), NOW);
    conversation.startNextReply(NOW);
    expect(conversation.context().map((message) => message.content)).toEqual(['one', 'answer one', 'two']);
    expect(conversation.inProgress()?.prompt.content).toBe('three');
  });

  it('restores a record without resurrecting unfinished work: the half reply is interrupted', () => {
    const conversation = Conversation.start('s', NOW, 8);
    conversation.accept('a', ids(1), NOW);
    conversation.startNextReply(NOW);
    conversation.appendChunk('part', NOW);
    conversation.accept('b', ids(2), NOW);
    const restored = Conversation.restore(conversation.toRecord(), 8);
    expect(restored.generating).toBe(false);
    expect(restored.hasQueued).toBe(false);
    // The sequence jumps past any chunk a client may have seen after the last flush.
    expect(restored.lastSeq).toBe(1 + SEQ_GAP_AFTER_CRASH);
    expect(restored.history().map((message) => [message.content, message.status, message.errorCode])).toEqual([
      ['a', 'complete', undefined],
      ['part', 'interrupted', undefined],
      ['b', 'cancelled', undefined],
    ]);
    expect(restored.takeRecovered().map((message) => [message.content, message.status])).toEqual([
      ['part', 'interrupted'],
      ['b', 'cancelled'],
    ]);
    expect(restored.takeRecovered()).toEqual([]);
  });

  it('restores a clean record as it was, with nothing recovered and no sequence jump', () => {
    const conversation = Conversation.start('s', NOW, 8, { title: 'Trip', metadata: { tags: ['x'] } });
    conversation.accept('a', ids(1), NOW);
    conversation.startNextReply(NOW);
    conversation.appendChunk('done', NOW);
    conversation.finishReply('complete', NOW);
    const restored = Conversation.restore(conversation.toRecord(), 8);
    expect(restored.lastSeq).toBe(1);
    expect(restored.takeRecovered()).toEqual([]);
    expect(restored.title).toBe('Trip');
    expect(restored.toRecord().metadata).toEqual({ tags: ['x'] });
  });

  it('hands out copies: changing them changes nothing inside', () => {
    const conversation = Conversation.start('s', NOW, 8);
    conversation.accept('a', ids(1), NOW);
    const [message] = conversation.history();
    message!.content = 'tampered';
    expect(conversation.history()[0]!.content).toBe('a');
  });
});
