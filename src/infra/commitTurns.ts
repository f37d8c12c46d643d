/**
 * What the group commits share (writeBatcher.ts, groupInsert.ts): work queued
 * within one turn of the event loop is pumped once at its end, however many
 * callers ask, and `drain` waits until nothing is queued, scheduled or
 * running. The pump itself (what a batch takes) is each one's own.
 */
export interface CommitTurns {
  /** Commits running now. */
  readonly running: ReadonlySet<Promise<void>>;
  /** Pumps at the end of this turn (once, however many ask). */
  schedule(): void;
  /** Tracks a commit; once it settles, `settled` runs, then the pump again (room is free). */
  start(commit: Promise<void>, settled?: () => void): void;
  /** Resolves when everything queued so far is committed or has failed. */
  drain(): Promise<void>;
}

export function createCommitTurns(pump: () => void, queuedCount: () => number): CommitTurns {
  const running = new Set<Promise<void>>();
  let scheduled = false;
  return {
    running,
    schedule() {
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        pump();
      });
    },
    start(commit, settled) {
      const done: Promise<void> = commit.finally(() => {
        settled?.();
        running.delete(done);
        pump();
      });
      running.add(done);
    },
    async drain() {
      while (running.size > 0 || queuedCount() > 0 || scheduled) {
        if (running.size > 0) await Promise.race(running);
        else await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}
