import { describe, expect, it } from 'vitest';
import { fitHistory, requestTokens, settledTurnTokens, turnTokens, TOKENS_PER_MEDIA_PART, TOKENS_PER_MESSAGE, TOKENS_PER_REPLY } from '../../src/domain/historyBudget.ts';
import type { Turn } from '../../src/domain/message.ts';

// One token per character: budgets below are easy to reason about.
const count = (text: string) => text.length;
const turns = (...contents: string[]): Turn[] =>
  contents.map((content, index) => ({ role: index % 2 === 0 ? 'user' : 'assistant', content }));
const cost = (content: string) => content.length + TOKENS_PER_MESSAGE;

describe('history budget (with an injected counter)', () => {
  it('keeps everything that fits', () => {
    const history = turns('q1', 'a1', 'q2', 'a2');
    expect(fitHistory(history, 1_000, 0, count)).toEqual(history);
  });

  it('drops the oldest turns first', () => {
    const history = turns('x'.repeat(400), 'y'.repeat(400), 'q2', 'a2');
    expect(fitHistory(history, cost('q2') + cost('a2'), 0, count)).toEqual(turns('q2', 'a2'));
  });

  it('never starts with an answer whose question was dropped', () => {
    const history = turns('x'.repeat(400), 'a1', 'q2', 'a2');
    expect(fitHistory(history, cost('a1') + cost('q2') + cost('a2'), 0, count)).toEqual(turns('q2', 'a2'));
  });

  it('subtracts what is always sent (system prompt and prompt) from the budget', () => {
    const history = turns('q1', 'a1');
    expect(fitHistory(history, cost('q1') + cost('a1'), 0, count)).toHaveLength(2);
    expect(fitHistory(history, cost('q1') + cost('a1'), 1, count)).toEqual([]);
  });

  it('never separates a tool result from the call it answers, whatever the budget', () => {
    const call = { id: 'call_1', type: 'function' as const, function: { name: 'weather', arguments: '{"city":"Paris"}' } };
    const history: Turn[] = [
      { role: 'user', content: 'old question' },
      { role: 'assistant', content: 'old answer' },
      { role: 'user', content: 'weather in Paris?' },
      { role: 'assistant', content: '', toolCalls: [call] },
    ];
    const prompt: Turn = { role: 'tool', content: '{"temp":21}', toolCallId: 'call_1' };
    // Far too small a budget: the call stays, and nothing before it starts the history with an answer.
    expect(fitHistory(history, 1, 0, count, prompt)).toEqual([history[3]]);
    // Enough for the question too: it is kept, the older exchange is not.
    const enough = turnTokens(history[2]!, count) + turnTokens(history[3]!, count);
    expect(fitHistory(history, enough, 0, count, prompt)).toEqual(history.slice(2));
  });

  it('drops a leading tool result whose call fell out of the budget', () => {
    const call = { id: 'c', type: 'function' as const, function: { name: 'f', arguments: '{}' } };
    const history: Turn[] = [
      { role: 'user', content: 'x'.repeat(100) },
      { role: 'assistant', content: '', toolCalls: [call] },
      { role: 'tool', content: 'r', toolCallId: 'c' },
      { role: 'assistant', content: 'done' },
      { role: 'user', content: 'next' },
      { role: 'assistant', content: 'ok' },
    ];
    const budget = turnTokens(history[2]!, count) + turnTokens(history[3]!, count) + cost('next') + cost('ok');
    expect(fitHistory(history, budget, 0, count)).toEqual(history.slice(4));
  });
});

describe('history budget on long messages', () => {
  it('does not count a message too long to fit, whatever its tokens', () => {
    const counted: number[] = [];
    const spy = (text: string) => {
      counted.push(text.length);
      return text.length;
    };
    const history = turns('x'.repeat(1_000_000), 'a1', 'q2', 'a2');
    expect(fitHistory(history, 100, 0, spy)).toEqual(turns('q2', 'a2'));
    expect(Math.max(...counted)).toBeLessThan(1_000);
  });

  it('asks the given cost function (a cache) rather than counting again', () => {
    const history = turns('q1', 'a1');
    let asked = 0;
    const costOf = () => {
      asked += 1;
      return 1;
    };
    expect(fitHistory(history, 10, 0, () => Number.NaN, undefined, costOf)).toEqual(history);
    expect(asked).toBe(2);
  });
});

describe('request token counts', () => {
  it('frames each message and the reply as OpenAI counts them', () => {
    expect(requestTokens([{ role: 'user', content: 'abcd' }], count)).toBe(TOKENS_PER_REPLY + TOKENS_PER_MESSAGE + 4);
    expect(requestTokens([{ role: 'user', content: 'abcd' }], count, 'sys')).toBe(TOKENS_PER_REPLY + 2 * TOKENS_PER_MESSAGE + 4 + 3);
  });

  it('counts text parts as text and every other part at a flat figure', () => {
    const turn: Turn = {
      role: 'user',
      content: 'look',
      parts: [
        { type: 'text', text: 'look' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
      ],
    };
    expect(turnTokens(turn, count)).toBe(TOKENS_PER_MESSAGE + 4 + TOKENS_PER_MEDIA_PART);
  });

  it('counts tool calls by their name and arguments', () => {
    const turn: Turn = { role: 'assistant', content: '', toolCalls: [{ id: 'x', type: 'function', function: { name: 'ab', arguments: '{}' } }] };
    expect(turnTokens(turn, count)).toBe(TOKENS_PER_MESSAGE + 2 + 2 + TOKENS_PER_MESSAGE);
  });

  it('counts a settled turn once per counter, and a reply by the usage its model reported', () => {
    const texts: string[] = [];
    const counting = (text: string) => (texts.push(text), text.length);
    const prompt: Turn = { role: 'user', content: 'hello' };
    expect(settledTurnTokens(prompt, counting)).toBe(cost('hello'));
    expect(settledTurnTokens(prompt, counting)).toBe(cost('hello'));
    expect(texts).toEqual(['hello']);
    // Another counter counts for itself.
    expect(settledTurnTokens(prompt, (text) => 2 * text.length)).toBe(10 + TOKENS_PER_MESSAGE);
    const reply = { role: 'assistant' as const, content: 'a long answer', usage: { inputTokens: 9, outputTokens: 4 } };
    expect(settledTurnTokens(reply, counting)).toBe(4 + TOKENS_PER_MESSAGE);
    expect(texts).toEqual(['hello']);
  });
});
