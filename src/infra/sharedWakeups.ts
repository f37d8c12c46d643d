import type { Clock } from '../domain/ports.ts';

/** A pending wake-up; `cancel` drops it (and the shared timer once nobody else waits on it). */
export interface Wakeup {
  cancel(): void;
}

export interface SharedWakeups {
  /** Calls `wake` after `ms`, on the clock's timers. */
  after(ms: number, wake: () => void): Wakeup;
  /** Calls `wake` on the next turn of the event loop, after I/O (`setImmediate`, shared by the waiters of one turn). */
  nextTurn(wake: () => void): Wakeup;
}

interface Bucket {
  handle: unknown;
  waiters: Set<() => void>;
}

/**
 * One timer per due millisecond for everyone due then, instead of one timer
 * (and one Timeout object) per waiter. Sessions whose messages were committed
 * in the same group commit start in the same millisecond and so stream on
 * the same timers: under the 5,000-session burst a chunk round of all
 * sessions is a few hundred callbacks instead of 5,000. At 0 ms, waiters of
 * one turn share one `setImmediate`.
 */
export function createSharedWakeups(clock: Clock): SharedWakeups {
  const buckets = new Map<number, Bucket>();
  let immediate: Set<() => void> | undefined;

  const fire = (due: number) => {
    const bucket = buckets.get(due);
    buckets.delete(due);
    if (bucket) for (const wake of bucket.waiters) wake();
  };

  const fireImmediate = () => {
    const waiters = immediate;
    immediate = undefined;
    if (waiters) for (const wake of waiters) wake();
  };

  return {
    nextTurn(wake) {
      if (!immediate) {
        immediate = new Set();
        setImmediate(fireImmediate);
      }
      const waiters = immediate;
      waiters.add(wake);
      return { cancel: () => void waiters.delete(wake) };
    },

    after(ms, wake) {
      const due = clock.now() + ms;
      let bucket = buckets.get(due);
      if (!bucket) {
        bucket = { handle: clock.setTimeout(() => fire(due), Math.max(0, ms)), waiters: new Set() };
        buckets.set(due, bucket);
      }
      const owner = bucket;
      owner.waiters.add(wake);
      return {
        cancel() {
          if (!owner.waiters.delete(wake) || owner.waiters.size > 0) return;
          // Nobody else is due then: the timer goes too (a cancel releases it at once).
          clock.clearTimeout(owner.handle);
          if (buckets.get(due) === owner) buckets.delete(due);
        },
      };
    },
  };
}
