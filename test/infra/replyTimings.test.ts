import { describe, expect, it } from 'vitest';
import type { ChatEvent } from '../../src/domain/events.ts';
import type { MessageId, SessionId } from '../../src/domain/ids.ts';
import { createReplyTimings } from '../../src/infra/replyTimings.ts';
import type { ReplyOutcome } from '../../src/infra/replyTimings.ts';
import { ManualClock } from '../support/manualClock.ts';

const sessionId = 's1' as SessionId;
const id = (value: string) => value as MessageId;
const accepted = (messageId: string, position: number): ChatEvent => ({
  type: 'message.accepted',
  sessionId,
  messageId: id(messageId),
  userMessageId: id(`u-${messageId}`),
  text: 'x',
  position,
});
const chunk = (messageId: string, seq: number): ChatEvent => ({ type: 'chunk', sessionId, messageId: id(messageId), seq, chunk: 'c', is_last: false });

describe('reply timings from domain events', () => {
  it('measures first chunk from acceptance (queueing included) and duration from the reply start', async () => {
    const clock = new ManualClock(0);
    const firsts: number[] = [];
    const ends: [number, ReplyOutcome][] = [];
    const timings = createReplyTimings(clock, { firstChunk: (s) => firsts.push(s), finished: (s, outcome) => ends.push([s, outcome]) });

    timings.observe(accepted('a', 0));
    await clock.advance(100);
    timings.observe(accepted('b', 1)); // waits behind a
    await clock.advance(150);
    timings.observe(chunk('a', 1)); // a: 250 ms to first chunk
    await clock.advance(50);
    timings.observe(chunk('a', 2)); // not a first chunk
    await clock.advance(700);
    timings.observe({ type: 'message.completed', sessionId, messageId: id('a'), finishReason: 'stop' }); // a ran 1 s; b starts now (t = 1000)
    await clock.advance(500);
    timings.observe(chunk('b', 3)); // b: accepted at 100, first chunk at 1500
    await clock.advance(250);
    timings.observe({ type: 'message.failed', sessionId, messageId: id('b'), code: 'provider_error', message: 'x' });

    expect(firsts).toEqual([0.25, 1.4]);
    expect(ends).toEqual([
      [1, 'complete'],
      [0.75, 'failed'],
    ]);
  });

  it('a cancel drops the queue: the queued replies never started and have no duration', async () => {
    const clock = new ManualClock(0);
    const ends: [number, ReplyOutcome][] = [];
    const timings = createReplyTimings(clock, { firstChunk: () => {}, finished: (s, outcome) => ends.push([s, outcome]) });
    timings.observe(accepted('a', 0));
    timings.observe(accepted('b', 1));
    await clock.advance(200);
    timings.observe({ type: 'message.cancelled', sessionId, messageId: id('a') });
    timings.observe({ type: 'message.cancelled', sessionId, messageId: id('b') });
    expect(ends).toEqual([[0.2, 'cancelled']]);
  });
});
