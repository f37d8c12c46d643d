import type { Redis } from 'ioredis';
import type { SessionId } from '../domain/ids.ts';
import { redisKeys } from '../infra/redisKeys.ts';
import type { ScriptCommands } from '../infra/redisScripts.ts';
import { startHeartbeatThread } from './heartbeatThread.ts';
import type { HeartbeatThread } from './heartbeatThread.ts';
import type { LeasesOptions } from './leases.ts';
import { reclaimLeases } from './reclaimLeases.ts';
import type { HeldLease } from './reclaimLeases.ts';

/** What the leases have worked out from their options, and their local state the heartbeat acts on. */
export interface LeaseHeartbeatContext {
  /** The main thread's connection, with the lease scripts: reclaim after an expiry. */
  redis: Redis & ScriptCommands;
  renewEveryMs: number;
  marginMs: number;
  wedgeMs: number;
  onCommand: (count: number) => void;
  heartbeatKey: string;
  heldKey: string;
  /** The leases held here; those lost go through `drop`. */
  held: ReadonlyMap<SessionId, HeldLease>;
  /** Forgets leases locally, their tokens kept for writes still on their way to the store. */
  drop(sessionIds: SessionId[]): void;
}

/**
 * The main thread's side of the heartbeat: starts the heartbeat thread, ticks
 * (stamps it alive, counts its beats, hands it this node's description), and
 * gives up leases locally once they could have lapsed in Redis or were found
 * taken after an expiry (`onLost`).
 */
export function createLeaseHeartbeat(options: LeasesOptions, context: LeaseHeartbeatContext) {
  const { nodeId, leaseMs, clock, logger } = options;
  const { redis, renewEveryMs, marginMs, wedgeMs, onCommand, heartbeatKey, heldKey, held, drop } = context;
  let thread: HeartbeatThread | undefined;
  let timer: unknown;
  let settling: Promise<void> | undefined;
  let beatsCounted = 0;
  let closed = false;
  const tickMs = Math.max(20, Math.min(renewEveryMs, Math.floor(marginMs / 2)));

  /** Until when this node may act on its leases (written by the heartbeat thread). */
  const validUntil = () => thread?.validUntil() ?? 0;

  const expireLocally = () => {
    if (held.size === 0 || clock.now() < validUntil()) return;
    const lost = [...held.keys()];
    drop(lost);
    logger.warn({ sessions: lost.length, lateMs: clock.now() - validUntil() }, 'leases could not be renewed: stopping their sessions here');
    options.onLost(lost, 'unavailable');
  };

  // The heartbeat was found expired while this node still held leases (Redis restarted empty, a
  // pause past the lease): keep those still ours, report the rest.
  const reclaim = async (): Promise<void> => {
    const lost = await reclaimLeases(redis, heldKey, held, onCommand);
    if (lost.length > 0) {
      drop(lost);
      logger.warn({ sessions: lost.length }, 'leases taken by another node: stopping their sessions here');
      options.onLost(lost, 'moved');
    }
  };

  /** Deals with an expiry the heartbeat thread found: leases are acted on again only after it. */
  const settle = (): Promise<void> => {
    const at = thread?.expiredAt() ?? 0;
    if (at === 0 || closed) return Promise.resolve();
    settling ??= (async () => {
      try {
        if (held.size > 0) await reclaim();
        thread?.settleExpired(at, at + leaseMs - marginMs);
      } catch (error) {
        // Left pending: the next tick tries again, and meanwhile the leases lapse locally.
        logger.debug({ err: String(error) }, 'reclaiming leases failed');
      }
    })().finally(() => {
      settling = undefined;
    });
    return settling;
  };

  /** How late the main thread's tick ran at worst (ms): the event loop's starvation, as the leases see it. */
  let tickLateMaxMs = 0;
  let tickDue = 0;
  const tick = () => {
    if (closed || !thread) return;
    const now = clock.now();
    if (tickDue > 0 && now - tickDue > tickLateMaxMs) tickLateMaxMs = now - tickDue;
    tickDue = now + tickMs;
    thread.stamp(now);
    const beats = thread.beats();
    if (beats > beatsCounted) onCommand(beats - beatsCounted);
    beatsCounted = beats;
    // Every tick (a tenth of the lease at most), not every beat: the next beat carries counts at most a
    // tick old, as the session cap across nodes expects (once a third of a lease, the cap test saw 7 of 6).
    thread.describe(JSON.stringify(options.describe?.() ?? {}));
    void settle();
    expireLocally();
    timer = clock.setTimeout(tick, tickMs);
  };

  let starting: Promise<void> | undefined;
  const startThread = async (): Promise<void> => {
    if (closed) return;
    const started = await startHeartbeatThread({
      redisUrl: options.redisUrl,
      nodeId,
      heartbeatKey,
      nodesKey: redisKeys.nodes,
      leaseMs,
      marginMs,
      renewEveryMs,
      wedgeMs,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      logger,
      onExpired: () => void settle(),
    });
    // Closed while starting: the thread goes at once.
    if (closed) return started.close();
    thread = started;
    tick();
  };

  return {
    validUntil,
    expireLocally,
    settle,

    /** Starts the heartbeat thread once; every later call gets the same start. */
    start(): Promise<void> {
      starting ??= startThread();
      return starting;
    },

    /** Beats at once (back from an outage before the next beat is due); nothing before the thread has started. */
    beatNow(): Promise<void> | undefined {
      return thread?.beatNow();
    },

    lateness(): { heartbeatRoundTripMaxMs: number; tickLateMaxMs: number } {
      return { heartbeatRoundTripMaxMs: thread?.maxRoundTripMs() ?? 0, tickLateMaxMs };
    },

    /** No more ticks, settling or starting: the first step of closing the leases. */
    stop(): void {
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
    },

    /** Ends the heartbeat thread, once any start under way is over (after `stop`). */
    async close(): Promise<void> {
      await starting?.catch(() => undefined);
      await thread?.close();
    },
  };
}

export type LeaseHeartbeat = ReturnType<typeof createLeaseHeartbeat>;
