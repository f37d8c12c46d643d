import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { requestTokens, settledTurnTokens } from '../../src/domain/historyBudget.ts';
import type { GenerationRequest, ProviderChunk } from '../../src/domain/ports.ts';
import { createSimulatedProvider } from '../../src/infra/simulatedProvider.ts';
import { ManualClock } from '../support/manualClock.ts';

const request: GenerationRequest = { sessionId: 's1', messageId: 'm1', prompt: 'hi', promptTurn: { role: 'user', content: 'hi' }, history: [] };
const words = (text: string) => text.split(' ').length;

describe('simulated model stream', () => {
  it('streams each chunk after its interval, the last with usage and finish reason, then ends', async () => {
    const clock = new ManualClock();
    const provider = createSimulatedProvider({ chunks: 3, intervalMs: 400, clock, countTokens: words });
    const signal = new AbortController().signal;
    const iterator = provider.stream(request, signal)[Symbol.asyncIterator]();
    const pieces: ProviderChunk[] = [];
    for (let index = 0; index < 3; index += 1) {
      const next = iterator.next();
      let settled = false;
      void next.then(() => (settled = true));
      await clock.advance(399);
      expect(settled).toBe(false);
      await clock.advance(1);
      const result = await next;
      expect(result.done).toBe(false);
      pieces.push(result.value as ProviderChunk);
    }
    expect(pieces.map((piece) => [piece.text, piece.last])).toEqual([
      ['chunk 1: hi', false],
      ['chunk 2: hi', false],
      ['chunk 3: hi', true],
    ]);
    expect(pieces[2]).toMatchObject({ finishReason: 'stop', usage: { inputTokens: requestTokens([], words) + settledTurnTokens(request.promptTurn!, words), outputTokens: words('chunk 1: hichunk 2: hichunk 3: hi') } });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('ends a pending wait at once when aborted, releasing its timer and its abort listener', async () => {
    const clock = new ManualClock();
    const provider = createSimulatedProvider({ chunks: 5, intervalMs: 400, clock, countTokens: words });
    const controller = new AbortController();
    const iterator = provider.stream(request, controller.signal)[Symbol.asyncIterator]();
    const next = iterator.next();
    expect(clock.pendingTimers).toBe(1);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort();
    expect(await next).toEqual({ done: true, value: undefined });
    expect(clock.pendingTimers).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it('ends at the next read when aborted between reads, and reads nothing for a signal aborted before the first', async () => {
    const clock = new ManualClock();
    const provider = createSimulatedProvider({ chunks: 5, intervalMs: 400, clock, countTokens: words });
    const controller = new AbortController();
    const iterator = provider.stream(request, controller.signal)[Symbol.asyncIterator]();
    const first = iterator.next();
    await clock.advance(400);
    expect((await first).value).toMatchObject({ text: 'chunk 1: hi' });
    controller.abort(); // no read is waiting
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(clock.pendingTimers).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);

    const late = provider.stream(request, AbortSignal.abort())[Symbol.asyncIterator]();
    expect(await late.next()).toEqual({ done: true, value: undefined });
    expect(clock.pendingTimers).toBe(0);
  });

  it('a reader that stops early releases the abort listener', async () => {
    const clock = new ManualClock();
    const provider = createSimulatedProvider({ chunks: 5, intervalMs: 0, clock, countTokens: words });
    const signal = new AbortController().signal;
    const seen: string[] = [];
    for await (const piece of provider.stream(request, signal)) {
      seen.push(piece.text);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['chunk 1: hi', 'chunk 2: hi']);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('counts a reply to a prompt it has answered before from memory, with the same count', async () => {
    const clock = new ManualClock();
    const counted: string[] = [];
    const counting = (text: string) => {
      counted.push(text);
      return words(text);
    };
    const provider = createSimulatedProvider({ chunks: 2, intervalMs: 0, clock, countTokens: counting });
    const usageOf = async (prompt: string) => {
      let last: ProviderChunk | undefined;
      for await (const piece of provider.stream({ ...request, prompt, promptTurn: { role: 'user', content: prompt } }, new AbortController().signal)) last = piece;
      return last?.usage?.outputTokens;
    };
    const first = await usageOf('hello there');
    const again = await usageOf('hello there');
    const other = await usageOf('something else');
    expect([first, again, other]).toEqual([words('chunk 1: hello therechunk 2: hello there'), first, words('chunk 1: something elsechunk 2: something else')]);
    // Each reply's whole text was counted once: the second reply to the same prompt was not counted again.
    expect(counted.filter((text) => text.startsWith('chunk 1:'))).toEqual(['chunk 1: hello therechunk 2: hello there', 'chunk 1: something elsechunk 2: something else']);
  });
});
