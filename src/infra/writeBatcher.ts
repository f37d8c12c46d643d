import { ChatError } from '../domain/errors.ts';
import { FencedWriteError } from '../domain/ownership.ts';
import type { SessionId } from '../domain/ids.ts';
import type { SessionUpdate } from '../domain/ports.ts';
import { isContentError, storeError } from './storeErrors.ts';
import { mergeUpdates } from './sessionUpdates.ts';
import { createCommitTurns } from './commitTurns.ts';

/**
 * Commits updates in one transaction; resolves with the ids of sessions that
 * were not stored (nothing kept of those), or with those and the sessions
 * whose updates were refused because a newer fencing token had claimed them
 * (many nodes; their savers get FencedWriteError, the rest is committed).
 */
export type CommitUpdates = (updates: readonly SessionUpdate[]) => Promise<ReadonlySet<SessionId> | CommitOutcome>;

export interface CommitOutcome {
  readonly absent: ReadonlySet<SessionId>;
  readonly fenced: ReadonlySet<SessionId>;
}

const NONE: ReadonlySet<SessionId> = new Set();
const outcomeOf = (result: ReadonlySet<SessionId> | CommitOutcome): CommitOutcome => ('absent' in result ? result : { absent: result, fenced: NONE });

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
 * Group commit: updates arriving while commits run (or within the same turn
 * of the event loop) are merged and committed together, so thousands of
 * streaming sessions cost a few transactions per flush interval, not one
 * each. Up to `concurrency` commits run at once (PostgreSQL: one per pooled
 * connection but one), each holding sessions no other running commit holds:
 * an update waits for the commit holding its session, so no write overtakes
 * an earlier one of the same session, and a message's commit need not wait
 * behind other sessions' batch.
 *
 * A batch the database refuses for its content (U+0000 in PostgreSQL text, a
 * constraint) is committed again update by update, in order, so only the
 * offending update fails (`store_rejected`) and every other session's
 * commits. A failure of the database itself fails the whole batch
 * (`store_unavailable`): nothing in it was kept.
 */
export function createWriteBatcher(commit: CommitUpdates, concurrency = 1): WriteBatcher {
  let queued: Waiting[] = [];
  /** Sessions in a commit now. */
  const held = new Set<SessionId>();

  const settle = (waiting: Waiting, result: ReadonlySet<SessionId> | CommitOutcome) => {
    const { absent, fenced } = outcomeOf(result);
    if (fenced.has(waiting.update.sessionId)) waiting.reject(new FencedWriteError(waiting.update.sessionId));
    else if (absent.has(waiting.update.sessionId)) waiting.reject(missing());
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

  /**
   * Commits a batch. `release` frees its sessions (the next batch may take
   * them and start) before any of its savers hears the outcome: a saver's
   * continuation (an acceptance admitted, its frame written, a reply
   * started) is main-thread work, and in a burst of 5,000 messages settling
   * a batch of ~2,000 took ~180 ms, during which the next batch, already
   * queued, waited with the writer thread idle (bench/run.ts burst).
   */
  const runBatch = async (batch: readonly Waiting[], release: () => void): Promise<void> => {
    let result: ReadonlySet<SessionId> | CommitOutcome;
    try {
      result = await commit(mergeUpdates(batch.map(({ update }) => update)));
    } catch (error) {
      // Its sessions stay held until the batch is sorted out: nothing of theirs may overtake it.
      try {
        if (isContentError(error) && batch.length > 1) await isolate(batch);
        else {
          const failure = storeError(error);
          for (const waiting of batch) waiting.reject(failure);
        }
      } finally {
        release();
      }
      return;
    }
    release();
    for (const waiting of batch) settle(waiting, result);
  };

  /** Starts commits while there is room: each takes every queued update whose session no running commit holds. */
  const pump = () => {
    while (turns.running.size < concurrency && queued.length > 0) {
      const batch: Waiting[] = [];
      const rest: Waiting[] = [];
      const taken = new Set<SessionId>();
      for (const waiting of queued) {
        const sessionId = waiting.update.sessionId;
        if (held.has(sessionId)) rest.push(waiting);
        else {
          batch.push(waiting);
          taken.add(sessionId);
        }
      }
      if (batch.length === 0) return;
      queued = rest;
      for (const sessionId of taken) held.add(sessionId);
      let release!: () => void;
      turns.start(new Promise<void>((resolve) => (release = resolve)), () => {
        for (const sessionId of taken) held.delete(sessionId);
      });
      void runBatch(batch, release);
    }
  };
  // Within one turn of the event loop, updates gather into one batch.
  const turns = createCommitTurns(pump, () => queued.length);

  return {
    save(update) {
      return new Promise<void>((resolve, reject) => {
        queued.push({ update, resolve, reject });
        turns.schedule();
      });
    },
    drain: () => turns.drain(),
  };
}
