import type { Redis } from 'ioredis';
import { ChatError } from '../domain/errors.ts';
import type { SessionId } from '../domain/ids.ts';
import type { LeaseHolder } from '../domain/ownership.ts';
import type { Clock, Logger } from '../domain/ports.ts';
import { redisKeys } from '../infra/redisKeys.ts';
import { withScripts } from '../infra/redisScripts.ts';
import { createLeaseHeartbeat } from './leaseHeartbeat.ts';
import type { HeldLease } from './reclaimLeases.ts';

export interface LeasesOptions {
  /** The main thread's connection: acquire, raise, release, reclaim. */
  redis: Redis;
  /** The heartbeat thread opens its own connection to this Redis. */
  redisUrl: string;
  nodeId: string;
  /** How long a lease lasts without renewal (`--lease-ms`). */
  leaseMs: number;
  /** The main thread's clock: its `now()` must be wall-clock time (the heartbeat thread stamps `Date.now()`). */
  clock: Clock;
  logger: Logger;
  /** The heartbeat (the renewal of every lease) goes this often (default a third of the lease). */
  renewEveryMs?: number;
  /**
   * Leases are given up locally this long before they could expire in Redis
   * (default a fifth of the lease, at least 100 ms): counted from when the
   * last successful heartbeat was *sent*, so a slow answer only shortens it.
   */
  marginMs?: number;
  /**
   * The heartbeat stops when the main thread has not ticked for this long
   * (default max(lease × 3, 15 s)): a wedged main thread (an endless loop, a
   * deadlock) must not keep its leases forever, while one merely starved of
   * CPU (ticks seconds late: 8.1 s measured under the 30,000-session bench)
   * keeps them.
   */
  wedgeMs?: number;
  /** How long the heartbeat thread waits for Redis at start-up before beating anyway (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * Leases this node can no longer be sure of: `moved` (another holder may
   * have it) or `unavailable` (the heartbeat failed for lease − margin). The
   * caller stops those sessions' actors; the leases are already forgotten here.
   */
  onLost(sessionIds: SessionId[], reason: 'moved' | 'unavailable'): void;
  /** What this node says about itself in its heartbeat (inspector, cluster-wide counts). */
  describe?: () => Record<string, unknown>;
  /** Told of every Redis command issued for leases and heartbeats. */
  onCommand?: (count: number) => void;
}

export type Acquired = { acquired: true; token: number } | { acquired: false; holder: LeaseHolder; pttl: number };

export function parseHolder(value: string): LeaseHolder {
  const space = value.lastIndexOf(' ');
  return { node: value.slice(0, space), token: Number(value.slice(space + 1)) };
}

/**
 * Session leases in Redis with fencing tokens. Taking a lease is `SET NX` of
 * `node token` in a script that INCRements the session's token; the lease's
 * life (PX `--lease-ms`) is its node's heartbeat key, renewed every third of
 * the lease: one command per node, however many sessions it holds (a
 * renewal per session was measured at 120,000 Redis calls a second for
 * 100,000 sessions, enough to starve a shared Redis). A lease of a node whose
 * heartbeat expired is free. Locally a lease counts as held only until
 * `lease − margin` after the last heartbeat that succeeded, so a node cut off
 * from Redis stops its actors before anyone else can take them over; a node
 * paused past that (GC, SIGSTOP) finds its leases gone when it wakes, and the
 * store's fence refuses whatever it still tries to write.
 */
export function createLeases(options: LeasesOptions) {
  const { nodeId, leaseMs, clock, logger } = options;
  const redis = withScripts(options.redis);
  const renewEveryMs = options.renewEveryMs ?? Math.max(50, Math.floor(leaseMs / 3));
  const marginMs = options.marginMs ?? Math.max(100, Math.floor(leaseMs / 5));
  const wedgeMs = options.wedgeMs ?? Math.max(leaseMs * 3, 15_000);
  const onCommand = options.onCommand ?? (() => {});
  const heartbeatKey = redisKeys.node(nodeId);
  const heldKey = redisKeys.held(nodeId);
  const held = new Map<SessionId, HeldLease>();
  /** Tokens of leases let go whose last writes may still be on their way to the store. */
  const former = new Map<SessionId, number>();

  const unavailable = (error: unknown) => {
    logger.warn({ err: String(error) }, 'redis did not answer a lease command');
    return new ChatError('unavailable', undefined, { cause: error, retryAfterMs: 1000 });
  };

  const drop = (sessionIds: SessionId[]) => {
    for (const sessionId of sessionIds) {
      const lease = held.get(sessionId);
      if (!lease) continue;
      former.set(sessionId, lease.token);
      held.delete(sessionId);
    }
  };

  const heartbeat = createLeaseHeartbeat(options, { redis, renewEveryMs, marginMs, wedgeMs, onCommand, heartbeatKey, heldKey, held, drop });

  return {
    renewEveryMs,
    marginMs,
    wedgeMs,

    /** Starts the heartbeat thread, which sends the first heartbeat (no lease can be taken before it) and keeps beating. */
    start(): Promise<void> {
      return heartbeat.start();
    },

    /** Longest heartbeat round trip so far (ms), and the main thread's latest tick (ms late): printed by the cluster bench. */
    lateness(): { heartbeatRoundTripMaxMs: number; tickLateMaxMs: number } {
      return heartbeat.lateness();
    },

    /** The lease value this node holds for the session, while it may still act on it. */
    holderOf(sessionId: SessionId): string | undefined {
      const lease = held.get(sessionId);
      if (!lease) return undefined;
      if (clock.now() >= heartbeat.validUntil()) {
        // Checked here too: a node waking from a pause must not act on a lease before its timer runs.
        heartbeat.expireLocally();
        return undefined;
      }
      return lease.holder;
    },

    /** The token to stamp on this session's writes: the held lease's, or the last one while its writes drain. */
    tokenOf(sessionId: SessionId): number | undefined {
      return held.get(sessionId)?.token ?? former.get(sessionId);
    },

    /** Tries to take the lease (floor: the least token the store will accept). Throws `unavailable` when Redis does not answer. */
    async acquire(sessionId: SessionId, floor = 0): Promise<Acquired> {
      const mine = held.get(sessionId);
      if (mine && clock.now() < heartbeat.validUntil()) return { acquired: true, token: mine.token };
      // Held but no longer valid: reported lost first, so a retake below is a new holder with a new token.
      if (mine) heartbeat.expireLocally();
      // Not started yet: start (a lease is only ever taken under a live heartbeat).
      await this.start();
      // Back from an outage before the next beat is due: beat now rather than refuse.
      if (clock.now() >= heartbeat.validUntil()) {
        await heartbeat.beatNow();
        await heartbeat.settle();
      }
      if (clock.now() >= heartbeat.validUntil()) throw new ChatError('unavailable', 'This node has no live heartbeat in Redis right now.', { retryAfterMs: 1000 });
      let result: [1, string] | [0, string, number] | [-1];
      try {
        onCommand(1);
        const lease = redisKeys.lease(sessionId);
        result = await redis.acquireLease(lease, redisKeys.fence(sessionId), heartbeatKey, heldKey, nodeId, 0, floor, redisKeys.nodePrefix, lease);
      } catch (error) {
        throw unavailable(error);
      }
      if (result[0] === -1) throw new ChatError('unavailable', 'This node has no live heartbeat in Redis right now.', { retryAfterMs: 1000 });
      if (result[0] === 0) return { acquired: false, holder: parseHolder(result[1]), pttl: Number(result[2]) };
      const { token } = parseHolder(result[1]);
      former.delete(sessionId);
      held.set(sessionId, { holder: result[1], token });
      return { acquired: true, token };
    },

    /** Raises a held lease's token to at least `floor` (the store had a newer one); undefined when no longer ours. */
    async raise(sessionId: SessionId, floor: number): Promise<number | undefined> {
      const lease = held.get(sessionId);
      if (!lease) return undefined;
      let value: string | null;
      try {
        onCommand(1);
        value = await redis.raiseLease(redisKeys.lease(sessionId), redisKeys.fence(sessionId), lease.holder, floor, 0, nodeId);
      } catch (error) {
        throw unavailable(error);
      }
      if (value === null || held.get(sessionId) !== lease) return undefined;
      lease.holder = value;
      lease.token = parseHolder(value).token;
      return lease.token;
    },

    /** Who holds the lease per Redis (a live node), with the remaining time of its heartbeat; undefined when free. */
    async holder(sessionId: SessionId): Promise<{ holder: LeaseHolder; pttl: number } | undefined> {
      let found: [string, number] | null;
      try {
        onCommand(1);
        found = await redis.leaseHolder(redisKeys.lease(sessionId), redisKeys.nodePrefix);
      } catch (error) {
        throw unavailable(error);
      }
      return found === null ? undefined : { holder: parseHolder(found[0]), pttl: Number(found[1]) };
    },

    /** Lets the lease go (locally at once, then in Redis). Its token stays known for writes still draining until `forgetToken`. */
    async release(sessionId: SessionId): Promise<void> {
      const lease = held.get(sessionId);
      // A lease lost here (not renewed in time) may still name this node in Redis: it goes too, so
      // that nobody (this node included) waits for it; compare-and-delete, a newer holder's stays.
      const formerToken = former.get(sessionId);
      if (!lease && formerToken === undefined) return;
      const value = lease?.holder ?? `${nodeId} ${formerToken}`;
      held.delete(sessionId);
      former.set(sessionId, lease?.token ?? formerToken!);
      try {
        onCommand(1);
        await redis.releaseLease(redisKeys.lease(sessionId), heldKey, value);
      } catch (error) {
        // It is free anyway once this node's heartbeat lapses.
        logger.debug({ err: String(error) }, 'lease release failed');
      }
    },

    forgetToken(sessionId: SessionId): void {
      if (!held.has(sessionId)) former.delete(sessionId);
    },

    /** Sessions held here. */
    get count(): number {
      return held.size;
    },

    held(): IterableIterator<SessionId> {
      return held.keys();
    },

    /** True while heartbeats succeed. */
    get healthy(): boolean {
      return clock.now() < heartbeat.validUntil();
    },

    /** Stops beating and releases every lease (after the sessions have stopped and their writes landed). */
    async close(): Promise<void> {
      heartbeat.stop();
      const sessions = [...held.keys()];
      await Promise.allSettled(sessions.map((sessionId) => this.release(sessionId)));
      former.clear();
      // No beat may recreate the heartbeat key after it is deleted.
      await heartbeat.close();
      await Promise.allSettled([redis.del(heartbeatKey, heldKey), redis.srem(redisKeys.nodes, nodeId)]);
    },
  };
}

export type Leases = ReturnType<typeof createLeases>;
