import type { SessionId } from '../domain/ids.ts';
import { FencedWriteError } from '../domain/ownership.ts';
import type { SessionUpdate } from '../domain/ports.ts';
import { storeError } from './storeErrors.ts';
import { mergeUpdates } from './sessionUpdates.ts';

export interface WriteBatcher {
  /** Queues an update; resolves once the batch holding it is committed. */
  save(update: SessionUpdate): Promise<void>;
  /** True after a failed commit, until one succeeds (readiness). */
  readonly failing: boolean;
  /** Resolves when everything queued so far is committed or has failed. */
  drain(): Promise<void>;
}

interface Waiting {
  update: SessionUpdate;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: updates arriving while a commit runs (or within the same turn
 * of the event loop) are merged and committed together, one commit at a time
 * in arrival order. Thousands of streaming sessions then cost a few
 * transactions per flush interval, not one each, and no write overtakes an
 * earlier one.
 */
/**
 * A commit applies what it can; it may return the sessions whose updates it
 * refused because a newer fencing token claimed them (their savers get
 * FencedWriteError, the rest of the batch is committed).
 */
export type BatchCommit = (updates: readonly SessionUpdate[]) => Promise<ReadonlySet<SessionId> | void>;

export function createWriteBatcher(commit: BatchCommit): WriteBatcher {
  let queued: Waiting[] = [];
  let running: Promise<void> | undefined;
  let failing = false;

  const run = async (): Promise<void> => {
    while (queued.length > 0) {
      const batch = queued;
      queued = [];
      try {
        const fenced = await commit(mergeUpdates(batch.map(({ update }) => update)));
        failing = false;
        for (const waiting of batch) {
          if (fenced?.has(waiting.update.sessionId)) waiting.reject(new FencedWriteError(waiting.update.sessionId));
          else waiting.resolve();
        }
      } catch (error) {
        failing = true;
        const failure = storeError(error);
        for (const waiting of batch) waiting.reject(failure);
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
    get failing() {
      return failing;
    },
    async drain() {
      while (running) await running;
    },
  };
}
