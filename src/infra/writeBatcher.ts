import { ChatError } from '../domain/errors.ts';
import type { SessionId } from '../domain/ids.ts';
import type { SessionUpdate } from '../domain/ports.ts';
import { isContentError, storeError } from './storeErrors.ts';
import { mergeUpdates } from './sessionUpdates.ts';

/** Commits updates in one transaction; resolves with the ids of sessions that were not stored (nothing kept of those). */
export type CommitUpdates = (updates: readonly SessionUpdate[]) => Promise<ReadonlySet<SessionId>>;

export interface WriteBatcher {
  /** Queues an update; resolves once the batch holding it is committed (see SessionStore.save). */
  save(update: SessionUpdate): Promise<void>;
  /** Resolves when everything queued so far is committed or has failed. */
  drain(): Promise<void>;
}

interface Waiting {
  update: SessionUpdate;
  resolve: () => void;
  reject: (error: unknown) => void;
}

const missing = () => new ChatError('session_not_found', 'The session is not stored (deleted meanwhile); nothing was kept.');

/**
 * Group commit: updates arriving while a commit runs (or within the same turn
 * of the event loop) are merged and committed together, one commit at a time
 * in arrival order. Thousands of streaming sessions then cost a few
 * transactions per flush interval, not one each, and no write overtakes an
 * earlier one.
 *
 * A batch the database refuses for its content (U+0000 in PostgreSQL text, a
 * constraint) is committed again update by update, in order, so only the
 * offending update fails (`store_rejected`) and every other session's
 * commits. A failure of the database itself fails the whole batch
 * (`store_unavailable`): nothing in it was kept.
 */
export function createWriteBatcher(commit: CommitUpdates): WriteBatcher {
  let queued: Waiting[] = [];
  let running: Promise<void> | undefined;

  const settle = (waiting: Waiting, absent: ReadonlySet<SessionId>) => {
    if (absent.has(waiting.update.sessionId)) waiting.reject(missing());
    else waiting.resolve();
  };

  // Rare path: the batch failed for what it holds. One transaction per update finds the culprit.
  const isolate = async (batch: readonly Waiting[]) => {
    for (let index = 0; index < batch.length; index += 1) {
      const waiting = batch[index]!;
      try {
        settle(waiting, await commit([waiting.update]));
      } catch (error) {
        waiting.reject(storeError(error));
        if (!isContentError(error)) {
          // The database itself failed: the rest of the batch fails with it, as a whole batch would.
          for (const rest of batch.slice(index + 1)) rest.reject(storeError(error));
          return;
        }
      }
    }
  };

  const run = async (): Promise<void> => {
    while (queued.length > 0) {
      const batch = queued;
      queued = [];
      try {
        const absent = await commit(mergeUpdates(batch.map(({ update }) => update)));
        for (const waiting of batch) settle(waiting, absent);
      } catch (error) {
        if (isContentError(error) && batch.length > 1) await isolate(batch);
        else {
          const failure = storeError(error);
          for (const waiting of batch) waiting.reject(failure);
        }
      }
    }
  };

  const start = () => {
    running ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(run)
      .finally(() => {
        running = undefined;
        if (queued.length > 0) start();
      });
  };

  return {
    save(update) {
      return new Promise<void>((resolve, reject) => {
        queued.push({ update, resolve, reject });
        start();
      });
    },
    async drain() {
      while (running) await running;
    },
  };
}
