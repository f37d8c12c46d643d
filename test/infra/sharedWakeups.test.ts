import { describe, expect, it } from 'vitest';
import { createSharedWakeups } from '../../src/infra/sharedWakeups.ts';
import { ManualClock } from '../support/manualClock.ts';

describe('shared wake-ups', () => {
  it('wakes everyone due in the same millisecond with one timer, in order of arrival', async () => {
    const clock = new ManualClock();
    const wakeups = createSharedWakeups(clock);
    const woken: number[] = [];
    for (let index = 0; index < 100; index += 1) wakeups.after(400, () => woken.push(index));
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(399);
    expect(woken).toEqual([]);
    await clock.advance(1);
    expect(woken).toEqual([...Array(100).keys()]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('keeps a timer per due millisecond', async () => {
    const clock = new ManualClock();
    const wakeups = createSharedWakeups(clock);
    const woken: string[] = [];
    wakeups.after(400, () => woken.push('a'));
    await clock.advance(1);
    wakeups.after(400, () => woken.push('b'));
    expect(clock.pendingTimers).toBe(2);
    await clock.advance(399);
    expect(woken).toEqual(['a']);
    await clock.advance(1);
    expect(woken).toEqual(['a', 'b']);
  });

  it('a cancel releases the timer once nobody else waits on it', async () => {
    const clock = new ManualClock();
    const wakeups = createSharedWakeups(clock);
    const woken: string[] = [];
    const first = wakeups.after(400, () => woken.push('a'));
    const second = wakeups.after(400, () => woken.push('b'));
    first.cancel();
    expect(clock.pendingTimers).toBe(1);
    second.cancel();
    expect(clock.pendingTimers).toBe(0);
    // A later waiter for the same millisecond gets a timer of its own.
    wakeups.after(400, () => woken.push('c'));
    await clock.advance(400);
    expect(woken).toEqual(['c']);
  });

  it('on the next turn, waiters of one turn share the next turn, and a cancelled one is not woken', async () => {
    const clock = new ManualClock();
    const wakeups = createSharedWakeups(clock);
    const woken: string[] = [];
    wakeups.nextTurn(() => woken.push('a'));
    wakeups.nextTurn(() => woken.push('b')).cancel();
    expect(woken).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(woken).toEqual(['a']);
  });
});
