import type { Clock, Logger, SessionStore } from '../domain/ports.ts';
import type { SessionRegistry } from './sessionRegistry.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface RetentionOptions {
  store: SessionStore;
  registry: SessionRegistry;
  clock: Clock;
  logger: Logger;
  /** Sessions with no activity (no message, no reply) for this many days are deleted. */
  retentionDays: number;
  /** First sweep this long after start (default 5 s), then every `intervalMs` (default 1 h). */
  firstSweepMs?: number;
  intervalMs?: number;
  /** Sessions deleted per batch (default 200), with `pauseMs` (default 50 ms) between batches. */
  batchSize?: number;
  pauseMs?: number;
  /** Told how many sessions a sweep deleted (metrics, tests). */
  onSwept?: (deleted: number) => void;
}

export interface RetentionSweeper {
  /** Runs one sweep now (to its end, batch by batch); resolves with how many sessions it deleted. */
  sweep(): Promise<number>;
  stop(): void;
}

/**
 * `--retention-days`: deletes sessions idle longer than that, in the
 * background and in bounded batches, so a large backlog (the first sweep
 * after turning it on) never holds the store or the event loop for long.
 * Deleting goes through the registry: watchers of a live session are told
 * (`stopped`, reason `deleted`) and closed. A session busy on this node, or
 * used since its last write, is left for the next sweep.
 */
export function startRetentionSweeper(options: RetentionOptions): RetentionSweeper {
  const { store, registry, clock, logger } = options;
  const batchSize = options.batchSize ?? 200;
  const pauseMs = options.pauseMs ?? 50;
  const intervalMs = options.intervalMs ?? 60 * 60 * 1000;
  let timer: unknown;
  let stopped = false;
  let running: Promise<number> | undefined;

  const pause = () => new Promise<void>((resolve) => clock.setTimeout(resolve, pauseMs));

  const oneSweep = async (): Promise<number> => {
    const cutoff = clock.now() - options.retentionDays * DAY_MS;
    const skipped = new Set<string>();
    let deleted = 0;
    while (!stopped) {
      const ids = await store.idleSessions(cutoff, batchSize + skipped.size);
      const due = ids.filter((id) => !skipped.has(id));
      if (due.length === 0) break;
      for (const sessionId of due) {
        if (stopped) break;
        const live = registry.peek(sessionId);
        if (live && (live.busy || live.summary().lastActiveAt >= cutoff)) {
          skipped.add(sessionId);
          continue;
        }
        if (await registry.remove(sessionId)) deleted += 1;
      }
      if (ids.length < batchSize + skipped.size) break;
      await pause();
    }
    if (deleted > 0) logger.info({ deleted, retentionDays: options.retentionDays }, 'deleted sessions past retention');
    options.onSwept?.(deleted);
    return deleted;
  };

  const sweep = (): Promise<number> => {
    running ??= oneSweep().finally(() => {
      running = undefined;
    });
    return running;
  };

  const schedule = (ms: number) => {
    if (stopped) return;
    timer = clock.setTimeout(() => {
      sweep()
        .catch((error: unknown) => logger.error({ err: String(error) }, 'retention sweep failed; trying again at the next one'))
        .finally(() => schedule(intervalMs));
    }, ms);
  };
  schedule(options.firstSweepMs ?? 5000);

  return {
    sweep,
    stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
    },
  };
}
