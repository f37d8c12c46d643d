import { ChatError, isChatError } from '../domain/errors.ts';
import type { KeyStore } from '../domain/apiKeys.ts';
import type { Clock, Logger, SessionStore } from '../domain/ports.ts';

/**
 * Whether the store takes work, as its own answers say: a failed operation
 * makes it unhealthy at once, and a probe (`ping`, bounded by a timeout)
 * runs on a timer, so a store that hangs is found out without waiting for
 * a query to time out, and one that answers again is found healthy within
 * one recovery interval, whatever else happened meanwhile. No flag waits for
 * a later write to clear it.
 */
export interface StoreHealth {
  readonly healthy: boolean;
  /** Throws `store_unavailable` while the store is unhealthy: work that needs it is refused at once. */
  assertHealthy(): void;
  /** A write was committed: the store answers. */
  answered(): void;
  /** An operation failed for the store's sake (not for its content). */
  failed(error: unknown): void;
  /** Probes now (or joins the probe running); resolves with the health it found. */
  check(): Promise<boolean>;
  close(): void;
}

export interface StoreHealthOptions {
  /** The store's own probe (answers and can take writes). */
  ping: () => Promise<void>;
  clock: Clock;
  logger: Logger;
  /** While healthy, a probe this often (default 1 s). */
  intervalMs?: number;
  /** While unhealthy, a probe this often (default 250 ms). */
  recoveryIntervalMs?: number;
  /** A probe with no answer within this long fails (default 1 s). */
  timeoutMs?: number;
}

/** A deadline's timer that fires at most this late says the event loop is keeping time. */
const ON_TIME_MS = 100;
/** How soon a deadline that fired late looks again. */
const RECHECK_MS = 100;
/** On a loop that never keeps time (or a store that commits writes but never answers the probe), a probe still fails after this many timeouts. */
const LATE_LOOP_BOUND = 10;

export function createStoreHealth(options: StoreHealthOptions): StoreHealth {
  const { clock, logger } = options;
  const intervalMs = options.intervalMs ?? 1000;
  const recoveryIntervalMs = options.recoveryIntervalMs ?? 250;
  const timeoutMs = options.timeoutMs ?? 1000;
  let healthy = true;
  let timer: unknown;
  let probing: Promise<boolean> | undefined;
  let closed = false;
  /** When a write last committed: a sign of life for a probe waiting its turn. */
  let lastAnsweredAt = -Infinity;

  const become = (next: boolean, error?: unknown) => {
    if (next === healthy) return;
    healthy = next;
    if (next) logger.info({}, 'store answers again; taking work');
    else logger.warn({ err: String((error as { cause?: unknown } | undefined)?.cause ?? error) }, 'store unavailable; refusing work that needs it until it answers');
    schedule();
  };

  const schedule = () => {
    if (closed) return;
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = clock.setTimeout(() => {
      timer = undefined;
      void probe().finally(schedule);
    }, healthy ? intervalMs : recoveryIntervalMs);
  };

  const probe = (): Promise<boolean> => {
    probing ??= new Promise<boolean>((resolve) => {
      let settled = false;
      let deadline: unknown;
      const finish = (ok: boolean, error?: unknown) => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(deadline);
        become(ok, error);
        resolve(ok);
      };
      const startedAt = clock.now();
      // The deadline is kept by this thread's event loop. On a loop running late (a node starved of
      // CPU: 8.7 s late in the 100,000-session cluster bench), the deadline and the store's answer come
      // due in the same turn, and timers run before sockets are read, so an answer already waiting in
      // the socket counted as none: 52 false outages in that run, each refusing work for a while. So a
      // probe fails only on a deadline that fired on time, looked at once the sockets of its turn were
      // read (setImmediate runs after them); one that fired late looks again shortly, up to a bound.
      // Likewise a probe queued behind busy pool connections while writes commit meets a store that
      // is busy, not gone (83 false outages in the next run, each "no answer" in about 1.1 s).
      const expire = (dueAt: number) => {
        const late = clock.now() - dueAt;
        setImmediate(() => {
          if (settled) return;
          const waited = clock.now() - startedAt;
          const stillAnswering = lastAnsweredAt >= startedAt && clock.now() - lastAnsweredAt < timeoutMs;
          if ((late <= ON_TIME_MS && !stillAnswering) || waited >= timeoutMs * LATE_LOOP_BOUND) finish(false, new Error(`no answer within ${Math.round(waited)} ms`));
          else arm(RECHECK_MS);
        });
      };
      const arm = (ms: number) => {
        const dueAt = clock.now() + ms;
        deadline = clock.setTimeout(() => expire(dueAt), ms);
      };
      arm(timeoutMs);
      options.ping().then(
        () => finish(true),
        (error: unknown) => finish(false, error),
      );
    }).finally(() => {
      probing = undefined;
    });
    return probing;
  };

  schedule();
  return {
    get healthy() {
      return healthy;
    },
    assertHealthy() {
      if (!healthy) throw new ChatError('store_unavailable');
    },
    answered() {
      lastAnsweredAt = clock.now();
      become(true);
    },
    failed(error) {
      become(false, error);
    },
    check: probe,
    close() {
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}

/** True for a failure that says the store is down (not a refused content, a missing session or a bad cursor). */
function isOutage(error: unknown): boolean {
  return !isChatError(error) || error.code === 'store_unavailable';
}

/**
 * The store, with every answer reported to `health`: committed writes prove
 * it up, outages take it down. Work that needs the store is refused at once
 * while it is down (except writes, which the writer retries, and the
 * reads that find sessions already known).
 */
export function reportingTo(health: StoreHealth, store: SessionStore): SessionStore {
  const watch = watcherFor(health);
  return {
    ...(store.durable === undefined ? {} : { durable: store.durable }),
    ...(store.keys === undefined ? {} : { keys: keysReportingTo(health, store.keys) }),
    create: (record) => watch(store.create(record), true),
    load: (sessionId, window) => watch(store.load(sessionId, window)),
    save: (update) => watch(store.save(update), true),
    delete: (sessionId, owner) => watch(store.delete(sessionId, owner), true),
    ping: () => store.ping(),
    close: () => store.close(),
    listSessions: (query) => watch(store.listSessions(query)),
    listMessages: (sessionId, query) => watch(store.listMessages(sessionId, query)),
    idleSessions: (before, limit) => watch(store.idleSessions(before, limit)),
    chunksAfter: (sessionId, afterSeq) => watch(store.chunksAfter(sessionId, afterSeq)),
  };
}

/**
 * The keys a session store keeps in its own database, with every answer
 * reported to that store's `health`: a key lookup that finds the database
 * gone takes it down for sessions too, and a committed key write proves it up.
 * Nothing is refused here: a key already cached still authenticates during
 * an outage, and the key ring answers `store_unavailable` for the rest.
 */
export function keysReportingTo(health: StoreHealth, keys: KeyStore): KeyStore {
  const watch = watcherFor(health);
  return {
    create: (key) => watch(keys.create(key), true),
    findByHash: (hash) => watch(keys.findByHash(hash)),
    findByIds: (ids) => watch(keys.findByIds(ids)),
    listActive: () => watch(keys.listActive()),
    update: (id, change) => watch(keys.update(id, change), true),
    revoke: (id, at) => watch(keys.revoke(id, at), true),
    touch: (id, at) => watch(keys.touch(id, at), true),
    hasActive: () => watch(keys.hasActive()),
  };
}

/** Reports a promise's outcome to `health`: outages take it down; `proves` (a committed write) brings it up. */
function watcherFor(health: StoreHealth) {
  // Made once per store, not per call: every write passes here (five per reply).
  const proved = <T>(value: T): T => {
    health.answered();
    return value;
  };
  const answered = <T>(value: T): T => value;
  const failed = (error: unknown): never => {
    if (isOutage(error)) health.failed(error);
    throw error;
  };
  return <T>(promise: Promise<T>, proves = false): Promise<T> => promise.then(proves ? proved : answered, failed);
}
