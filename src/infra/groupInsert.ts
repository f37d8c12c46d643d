import { createCommitTurns } from './commitTurns.ts';
import { isContentError, storeError } from './storeErrors.ts';

export interface GroupInsert<T> {
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
 * Group commit for inserts (new sessions, on PostgreSQL and SQLite, where
 * `commitAll` wraps the synchronous transaction): the items queued within one
 * turn of the event loop, or while `concurrency` commits are already running,
 * go into the next transaction, so a node opening sessions faster than one
 * round trip each pays a few transactions, not one apiece (a transaction per
 * WebSocket session was a fifth of a cluster node's main-thread time in
 * bench/handshakeCost.ts, and ~14% of the server's CPU when 5,000 opened at
 * once on SQLite). Each caller hears back only once its item is committed. A
 * batch refused for its content (a constraint) is committed again item by
 * item, so only the offending item fails; a failure of the database itself
 * fails the whole batch (nothing in it was kept).
 */
export function createGroupInsert<T>(commitAll: (items: readonly T[]) => Promise<void>, concurrency = 1, maxBatch = 1000): GroupInsert<T> {
  const queued: Queued<T>[] = [];

  // Rare path: one transaction per item finds the culprit(s).
  const isolate = async (batch: readonly Queued<T>[]) => {
    for (const [index, waiting] of batch.entries()) {
      try {
        await commitAll([waiting.item]);
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

  const commit = async (batch: readonly Queued<T>[]) => {
    try {
      await commitAll(batch.map(({ item }) => item));
      for (const waiting of batch) waiting.resolve();
    } catch (error) {
      if (isContentError(error) && batch.length > 1) return isolate(batch);
      const failure = storeError(error);
      for (const waiting of batch) waiting.reject(failure);
    }
  };

  /** Starts commits while there is room, each taking everything queued. */
  const pump = () => {
    while (turns.running.size < concurrency && queued.length > 0) turns.start(commit(queued.splice(0, maxBatch)));
  };
  const turns = createCommitTurns(pump, () => queued.length);

  return {
    create(item) {
      return new Promise<void>((resolve, reject) => {
        queued.push({ item, resolve, reject });
        turns.schedule();
      });
    },
    drain: () => turns.drain(),
  };
}
