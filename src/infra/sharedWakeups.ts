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
      immediate.add(wake);
      return new TurnWakeup(immediate, wake);
    },

    after(ms, wake) {
      const due = clock.now() + ms;
      let bucket = buckets.get(due);
      if (!bucket) {
        bucket = { handle: clock.setTimeout(() => fire(due), Math.max(0, ms)), waiters: new Set() };
        buckets.set(due, bucket);
      }
      bucket.waiters.add(wake);
      return new TimedWakeup(clock, buckets, due, bucket, wake);
    },
  };
}

// Wake-ups are objects with shared methods, not a closure each: one is made
// per chunk per session (and tsx, which runs the server, names every closure).

class TurnWakeup implements Wakeup {
  constructor(
    private readonly waiters: Set<() => void>,
    private readonly wake: () => void,
  ) {}

  cancel(): void {
    this.waiters.delete(this.wake);
  }
}

class TimedWakeup implements Wakeup {
  constructor(
    private readonly clock: Clock,
    private readonly buckets: Map<number, Bucket>,
    private readonly due: number,
    private readonly owner: Bucket,
    private readonly wake: () => void,
  ) {}

  cancel(): void {
    const { owner } = this;
    if (!owner.waiters.delete(this.wake) || owner.waiters.size > 0) return;
    // Nobody else is due then: the timer goes too (a cancel releases it at once).
    this.clock.clearTimeout(owner.handle);
    if (this.buckets.get(this.due) === owner) this.buckets.delete(this.due);
  }
}
