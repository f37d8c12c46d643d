import type { Clock } from '../domain/ports.ts';

/** What the sweep visits: one connection, judged and pinged by itself. */
export interface Pingable {
  /** `now` on the sweep's clock; a connection pinged less than `dueMs` ago waits for a later visit. */
  heartbeat(now: number, dueMs: number): void;
}

export interface PingSweep {
  stop(): void;
}

/** A slice of the round this often: 16,000 sockets over a 30 s interval are 54 pings a slice, not 16,000 in one tick. */
const SLICE_MS = 100;
/** A timer later than this share of the interval says the loop was blocked (the peers' answers are still unread). */
const LATE_SHARE = 1 / 4;
/** How soon a slice that fired late looks again. */
const RECHECK_MS = 100;
/** On a loop that never keeps time, a slice still runs after this many late looks. */
const LATE_LOOP_BOUND = 10;
/**
 * A connection is judged once this share of the interval has passed since its
 * ping: rounds visit it about one interval apart, earlier when connections
 * ahead of it in the set have closed.
 */
const DUE_SHARE = 3 / 4;

/**
 * One timer for every connection of a gateway (a timer per socket would cost
 * memory per idle connection). Every `intervalMs` a round visits each
 * connection once, in slices spread over the interval. A slice runs after the
 * poll phase of its turn (setImmediate), so answers that came while the loop
 * was busy are read before anyone is judged; a slice whose timer fired late
 * judges nobody: it looks again shortly, as the store's health probe does.
 */
export function startPingSweep(connections: ReadonlySet<Pingable>, intervalMs: number, clock: Clock): PingSweep {
  const sliceMs = Math.min(SLICE_MS, intervalMs);
  const dueMs = intervalMs * DUE_SHARE;
  let round: Iterator<Pingable> = connections.values();
  let left = 0;
  let perSlice = 1;
  let roundStartedAt = clock.now();
  let lateLooks = 0;
  let timer: unknown;
  let stopped = false;

  const arm = (ms: number) => {
    const dueAt = clock.now() + ms;
    timer = clock.setTimeout(() => fire(dueAt), ms);
  };

  const fire = (dueAt: number) => {
    timer = undefined;
    const late = clock.now() - dueAt;
    setImmediate(() => {
      if (stopped) return;
      if (late > intervalMs * LATE_SHARE && lateLooks < LATE_LOOP_BOUND) {
        lateLooks += 1;
        arm(RECHECK_MS);
        return;
      }
      lateLooks = 0;
      slice();
    });
  };

  const slice = () => {
    const now = clock.now();
    if (left === 0) {
      // A round visits the connections open as it begins (those opened since may take the place of those closed).
      round = connections.values();
      left = connections.size;
      perSlice = Math.max(1, Math.ceil((left * sliceMs) / intervalMs));
      roundStartedAt = now;
    }
    for (let visited = 0; visited < perSlice && left > 0; visited += 1) {
      const next = round.next();
      if (next.done === true) left = 0;
      else {
        left -= 1;
        next.value.heartbeat(now, dueMs);
      }
    }
    // The round's next slice; the round done, the next one an interval after this one began.
    arm(left > 0 ? sliceMs : Math.max(0, roundStartedAt + intervalMs - now));
  };

  arm(intervalMs);
  return {
    stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
