import { describe, expect, it } from 'vitest';
import { coalescingProvider } from '../../src/actors/coalescingProvider.ts';
import { ManualClock } from '../support/manualClock.ts';
import { run, scripted, timed, upstream500 } from './scriptedProvider.ts';

describe('coalescing', () => {
  it('joins deltas that arrive within the flush time, and flushes a buffer when it is old enough', async () => {
    const clock = new ManualClock();
    const { provider } = scripted([timed(clock, [[0, 'a'], [5, 'b'], [10, 'c'], [40, 'd'], [100, 'e']])]);
    const state = run(coalescingProvider(provider, { clock, flushMs: 16, maxChars: 100 }));
    await clock.advance(16);
    expect(state.texts).toEqual(['abc']);
    await clock.advance(100);
    expect(state.chunks).toEqual([
      { text: 'abc', last: false },
      { text: 'd', last: false },
      { text: 'e', last: true, usage: { inputTokens: 1, outputTokens: 2 } },
    ]);
  });

  it('flushes at once when the buffer reaches the size limit', async () => {
    const clock = new ManualClock();
    const { provider } = scripted([timed(clock, [[0, 'aaaa'], [1, 'bbbb'], [2, 'cc']])]);
    const state = run(coalescingProvider(provider, { clock, flushMs: 1_000, maxChars: 8 }));
    await clock.advance(2);
    expect(state.chunks).toEqual([
      { text: 'aaaabbbb', last: false },
      { text: 'cc', last: true, usage: { inputTokens: 1, outputTokens: 2 } },
    ]);
  });

  it('sends the buffered text before a failure', async () => {
    const clock = new ManualClock();
    const { provider } = scripted([timed(clock, [[0, 'partial']], upstream500())]);
    const state = run(coalescingProvider(provider, { clock, flushMs: 16 }));
    await clock.advance(1);
    expect(state.texts).toEqual(['partial']);
    expect(state.error).toMatchObject({ code: 'upstream_error' });
  });
});
