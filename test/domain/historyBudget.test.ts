import { describe, expect, it } from 'vitest';
import { estimateTokens, fitHistory } from '../../src/domain/historyBudget.ts';
import type { Turn } from '../../src/domain/message.ts';

const turns = (...contents: string[]): Turn[] =>
  contents.map((content, index) => ({ role: index % 2 === 0 ? 'user' : 'assistant', content }));

describe('history budget', () => {
  it('keeps everything that fits', () => {
    const history = turns('q1', 'a1', 'q2', 'a2');
    expect(fitHistory(history, 1_000)).toEqual(history);
  });

  it('drops the oldest turns first', () => {
    const history = turns('x'.repeat(400), 'y'.repeat(400), 'q2', 'a2');
    expect(fitHistory(history, 2 * estimateTokens('q2') + 1)).toEqual(turns('q2', 'a2'));
  });

  it('never starts with an answer whose question was dropped', () => {
    const history = turns('x'.repeat(400), 'a1', 'q2', 'a2');
    expect(fitHistory(history, 3 * estimateTokens('a1'))).toEqual(turns('q2', 'a2'));
  });

  it('subtracts what is always sent (system prompt and prompt) from the budget', () => {
    const history = turns('q1', 'a1');
    expect(fitHistory(history, 2 * estimateTokens('q1'), 0)).toHaveLength(2);
    expect(fitHistory(history, 2 * estimateTokens('q1'), 100)).toEqual([]);
  });
});
