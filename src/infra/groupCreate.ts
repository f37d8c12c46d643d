import { isContentError, storeError } from './storeErrors.ts';

export interface GroupCreate<T> {
  /** Queues one item; resolves once the transaction holding it has committed. */
  create(item: T): Promise<void>;
  /** Resolves when everything queued so far is committed or has failed. */
  drain(): Promise<void>;
}

interface Queued<T> {
  item: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for inserts (new sessions): the items queued within one turn
 * of the event loop go into one transaction (`commitAll`, synchronous, as
 * better-sqlite3 is), so a burst of connections costs a few commits, not one
 * each (5,000 sessions opened at once: one commit apiece was ~14% of the
 * server's CPU under the burst bench). Each caller still hears back only
 * after its item is committed. A batch the database refuses for its content
 * (a constraint) is committed again item by item, so only the offending
 * item fails; a failure of the database itself fails the whole batch.
 */
export function createGroupCreate<T>(commitAll: (items: readonly T[]) => void): GroupCreate<T> {
  let queued: Queued<T>[] = [];
  let scheduled: Promise<void> | undefined;

  const commit = (batch: readonly Queued<T>[]) => {
    try {
      commitAll(batch.map(({ item }) => item));
      for (const waiting of batch) waiting.resolve();
      return;
    } catch (error) {
      if (!isContentError(error) || batch.length === 1) {
        const failure = storeError(error);
        for (const waiting of batch) waiting.reject(failure);
        return;
      }
    }
    // Rare path: one transaction per item finds the culprit(s).
    for (const [index, waiting] of batch.entries()) {
      try {
        commitAll([waiting.item]);
        waiting.resolve();
      } catch (error) {
        waiting.reject(storeError(error));
        if (!isContentError(error)) {
          for (const rest of batch.slice(index + 1)) rest.reject(storeError(error));
          return;
        }
      }
    }
  };

  const schedule = () => {
    scheduled ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        scheduled = undefined;
        const batch = queued;
        queued = [];
        commit(batch);
        resolve();
      }),
    );
  };

  return {
    create(item) {
      return new Promise<void>((resolve, reject) => {
        queued.push({ item, resolve, reject });
        schedule();
      });
    },
    async drain() {
      while (scheduled) await scheduled;
    },
  };
}
