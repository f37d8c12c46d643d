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
});
