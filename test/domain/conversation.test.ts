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

describe('structured input: content parts and tool results', () => {
  const ids = (n: number) => ({ user: `u${n}`, reply: `r${n}`, toolResults: [`t${n}a`, `t${n}b`] });
  const call = (id: string) => ({ id, type: 'function' as const, function: { name: 'f', arguments: '{}' } });

  it('takes tool results for the last reply’s calls as tool messages, and answers the last of them', () => {
    const conversation = Conversation.start('s'.repeat(22), 0, 8);
    conversation.accept('q', ids(1), 1);
    conversation.startNextReply(2);
    conversation.appendToolCalls([{ index: 0, id: 'a', name: 'f', arguments: '{}' }, { index: 1, id: 'b', name: 'f', arguments: '{}' }], 3);
    conversation.recordFinishReason('tool_calls');
    conversation.finishReply('complete', 4);
    const accepted = conversation.accept({ text: '', toolResults: [{ toolCallId: 'a', content: '1' }, { toolCallId: 'b', content: '2' }] }, ids(2), 5);
    expect(accepted.inputs.map((message) => [message.id, message.role, message.toolCallId, message.status])).toEqual([
      ['t2a', 'tool', 'a', 'queued'],
      ['t2b', 'tool', 'b', 'queued'],
    ]);
    const current = conversation.startNextReply(6)!;
    expect(current.prompt.id).toBe('t2b');
    expect(current.reply.replyTo).toBe('t2b');
    // The first result is part of the context, the last is the prompt.
    expect(conversation.context().map((message) => message.id)).toEqual(['u1', 'r1', 't2a']);
    expect(conversation.history().find((message) => message.id === 'r1')).toMatchObject({ toolCalls: [call('a'), call('b')], finishReason: 'tool_calls' });
  });

  it('refuses results without calls to answer, for another call, twice, or leaving one out', () => {
    const conversation = Conversation.start('s'.repeat(22), 0, 8);
    expect(() => conversation.accept({ text: '', toolResults: [{ toolCallId: 'a', content: '1' }] }, ids(1), 1)).toThrow(/made none/);
    conversation.accept('q', ids(2), 1);
    conversation.startNextReply(2);
    conversation.appendToolCalls([{ index: 0, id: 'a', name: 'f' }, { index: 1, id: 'b', name: 'f' }], 3);
    conversation.finishReply('complete', 4);
    expect(() => conversation.accept({ text: '', toolResults: [{ toolCallId: 'x', content: '1' }] }, ids(3), 5)).toThrow(/"x" answers no tool call/);
    expect(() => conversation.accept({ text: '', toolResults: [{ toolCallId: 'a', content: '1' }] }, ids(4), 5)).toThrow(/missing: b/);
    expect(() => conversation.accept({ text: '', toolResults: [{ toolCallId: 'a', content: '1' }, { toolCallId: 'a', content: '1' }] }, ids(5), 5)).toThrow(/already has a result/);
    expect(() => conversation.accept({ text: '  ' }, ids(6), 5)).toThrow(/must not be empty/);
  });

  it('keeps content parts; an image alone is a message', () => {
    const conversation = Conversation.start('s'.repeat(22), 0, 8);
    const parts = [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }];
    const accepted = conversation.accept({ text: '', parts }, ids(1), 1);
    expect(accepted.user).toMatchObject({ role: 'user', content: '', parts });
  });
});
