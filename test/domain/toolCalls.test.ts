import { describe, expect, it } from 'vitest';
import type { Turn } from '../../src/domain/message.ts';
import { answeredToolCalls, applyToolCallDeltas, joinToolCallDeltas } from '../../src/domain/toolCalls.ts';

const call = (id: string, name = 'f', args = '{}') => ({ id, type: 'function' as const, function: { name, arguments: args } });

describe('tool calls as they stream', () => {
  it('joins fragments by index into whole calls, parallel ones interleaved', () => {
    const calls = applyToolCallDeltas([], [
      { index: 0, id: 'a', name: 'weather', arguments: '{"ci' },
      { index: 1, id: 'b', name: 'time' },
      { index: 0, arguments: 'ty":"Paris"}' },
      { index: 1, arguments: '{}' },
    ]);
    expect(calls).toEqual([call('a', 'weather', '{"city":"Paris"}'), call('b', 'time', '{}')]);
    // A server that repeats the name on every fragment does not double it.
    expect(applyToolCallDeltas(calls.slice(0, 1), [{ index: 0, name: 'weather', arguments: '' }])[0]?.function.name).toBe('weather');
  });

  it('coalesces consecutive fragments of one call, never across calls', () => {
    expect(
      joinToolCallDeltas([
        { index: 0, id: 'a', name: 'f', arguments: '{' },
        { index: 0, arguments: '"x"' },
        { index: 0, arguments: ':1}' },
        { index: 1, id: 'b', name: 'g' },
        { index: 1, arguments: '{}' },
      ]),
    ).toEqual([
      { index: 0, id: 'a', name: 'f', arguments: '{"x":1}' },
      { index: 1, id: 'b', name: 'g', arguments: '{}' },
    ]);
  });
});

describe('a history the API accepts', () => {
  const user = (content: string): Turn => ({ role: 'user', content });
  const result = (id: string): Turn => ({ role: 'tool', content: `r-${id}`, toolCallId: id });

  it('keeps answered calls with their results', () => {
    const turns: Turn[] = [user('q'), { role: 'assistant', content: '', toolCalls: [call('a'), call('b')] }, result('a'), result('b'), user('next')];
    expect(answeredToolCalls(turns)).toEqual(turns);
  });

  it('drops calls a client abandoned (and an empty turn with them), and stray results', () => {
    const turns: Turn[] = [
      user('q'),
      { role: 'assistant', content: 'checking', toolCalls: [call('a'), call('b')] },
      result('a'),
      user('never mind'),
      { role: 'assistant', content: '', toolCalls: [call('c')] },
      user('again'),
      result('zzz'),
      user('last'),
    ];
    expect(answeredToolCalls(turns)).toEqual([user('q'), { role: 'assistant', content: 'checking' }, user('never mind'), user('again'), user('last')]);
  });

  it('always keeps the last turn, the one being answered', () => {
    const turns: Turn[] = [user('q'), { role: 'assistant', content: '', toolCalls: [call('a')] }, result('a')];
    expect(answeredToolCalls(turns)).toEqual(turns);
  });
});
