import { describe, expect, it } from 'vitest';
import type { ChatEvent, ChunkEvent } from '../../src/domain/events.ts';
import { ChunkLog } from '../../src/infra/chunkLog.ts';
import { createInProcessBus } from '../../src/infra/inProcessBus.ts';

const chunk = (sessionId: string, seq: number): ChunkEvent => ({
  type: 'chunk',
  sessionId,
  messageId: 'm',
  seq,
  chunk: `c${seq}`,
  is_last: false,
});

describe('in-process bus', () => {
  it('delivers a session’s events only to that session’s subscribers', () => {
    const bus = createInProcessBus();
    const a: ChatEvent[] = [];
    const b: ChatEvent[] = [];
    bus.subscribe('A', (event) => a.push(event));
    bus.subscribe('B', (event) => b.push(event));
    bus.publish(chunk('A', 1));
    bus.publish(chunk('B', 1));
    bus.publish(chunk('A', 2));
    expect(a.map((event) => (event as ChunkEvent).seq)).toEqual([1, 2]);
    expect(b).toHaveLength(1);
  });

  it('stops delivering after unsubscribe (twice is harmless)', () => {
    const bus = createInProcessBus();
    const seen: ChatEvent[] = [];
    const unsubscribe = bus.subscribe('A', (event) => seen.push(event));
    unsubscribe();
    unsubscribe();
    bus.publish(chunk('A', 1));
    expect(seen).toEqual([]);
  });

  it('isolates a throwing listener from the publisher and the other listeners', () => {
    const errors: unknown[] = [];
    const bus = createInProcessBus({ onListenerError: (error) => errors.push(error) });
    const seen: ChatEvent[] = [];
    bus.subscribe('A', () => {
      throw new Error('broken watcher');
    });
    bus.subscribe('A', (event) => seen.push(event));
    expect(() => bus.publish(chunk('A', 1))).not.toThrow();
    expect(seen).toHaveLength(1);
    expect(errors).toHaveLength(1);
  });

  it('replays the recent chunks after a position, bounded by the log size', async () => {
    const bus = createInProcessBus({ replayLogSize: 3 });
    for (let seq = 1; seq <= 5; seq += 1) bus.publish(chunk('A', seq));
    expect((await bus.replay('A', 0)).map((event) => event.seq)).toEqual([3, 4, 5]);
    expect((await bus.replay('A', 3)).map((event) => event.seq)).toEqual([4, 5]);
    expect(await bus.replay('A', 5)).toEqual([]);
    bus.forget('A');
    expect(await bus.replay('A', 0)).toEqual([]);
  });

  it('subscribeAll sees every session', () => {
    const bus = createInProcessBus();
    const seen: string[] = [];
    const unsubscribe = bus.subscribeAll((event) => seen.push(event.sessionId));
    bus.publish(chunk('A', 1));
    bus.publish(chunk('B', 1));
    unsubscribe();
    bus.publish(chunk('C', 1));
    expect(seen).toEqual(['A', 'B']);
  });
});

describe('ChunkLog', () => {
  it('keeps the last chunks in order across wrap-around', () => {
    const log = new ChunkLog(4);
    for (let seq = 1; seq <= 10; seq += 1) log.append(chunk('A', seq));
    expect(log.after(0).map((event) => event.seq)).toEqual([7, 8, 9, 10]);
    expect(log.after(8).map((event) => event.seq)).toEqual([9, 10]);
  });
});

describe('replay log bounded in bytes', () => {
  const sized = (seq: number, chars: number) => ({ ...chunk('A', seq), chunk: 'x'.repeat(chars) });

  it('keeps only the newest chunks within the byte cap (2 bytes a UTF-16 unit), always the newest one', async () => {
    const bus = createInProcessBus({ replayLogSize: 1000, replayLogBytes: 100 });
    for (let seq = 1; seq <= 10; seq += 1) bus.publish(sized(seq, 20)); // 40 bytes each
    expect((await bus.replay('A', 0)).map((event) => event.seq)).toEqual([9, 10]);
    bus.publish(sized(11, 500)); // larger than the cap on its own
    expect((await bus.replay('A', 0)).map((event) => event.seq)).toEqual([11]);
  });

  it('finds the resume position by seq even when numbering jumped', () => {
    const log = new ChunkLog(10, 1000);
    for (const seq of [1, 2, 3, 1001, 1002]) log.append(chunk('A', seq));
    expect(log.after(2).map((event) => event.seq)).toEqual([3, 1001, 1002]);
    expect(log.after(500).map((event) => event.seq)).toEqual([1001, 1002]);
    expect(log.size).toBe(5);
  });
});
