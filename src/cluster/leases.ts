import type { Redis } from 'ioredis';
import { ChatError } from '../domain/errors.ts';
import type { SessionId } from '../domain/ids.ts';
import type { LeaseHolder } from '../domain/ownership.ts';
import type { Clock, Logger } from '../domain/ports.ts';
import { redisKeys } from '../infra/redisKeys.ts';
import { withScripts } from '../infra/redisScripts.ts';

export interface LeasesOptions {
  redis: Redis;
  nodeId: string;
  /** How long a lease lasts without renewal (`--lease-ms`). */
  leaseMs: number;
  clock: Clock;
  logger: Logger;
  /** Leases are renewed this often (default a third of the lease). */
  renewEveryMs?: number;
  /**
   * A lease is given up locally this long before it could expire in Redis
   * (default a fifth of the lease, at least 100 ms): counted from when the
   * last successful renewal was *sent*, so a slow answer only shortens it.
   */
  marginMs?: number;
  /**
   * Leases this node can no longer be sure of: `moved` (another holder has
   * it) or `unavailable` (renewal failed for lease − margin). The caller stops
   * those sessions' actors; the leases are already forgotten here.
   */
  onLost(sessionIds: SessionId[], reason: 'moved' | 'unavailable'): void;
  /** What this node says about itself in its heartbeat (inspector, cluster-wide counts). */
  describe?: () => Record<string, unknown>;
  /** Told of every Redis command issued for leases and heartbeats. */
  onCommand?: (count: number) => void;
}

interface Held {
  holder: string;
  token: number;
  /** Local deadline: after it, the lease is treated as lost. */
  validUntil: number;
}

export type Acquired = { acquired: true; token: number } | { acquired: false; holder: LeaseHolder; pttl: number };

const RENEW_BATCH = 500;

export function parseHolder(value: string): LeaseHolder {
  const space = value.lastIndexOf(' ');
  return { node: value.slice(0, space), token: Number(value.slice(space + 1)) };
}

/**
 * Session leases in Redis with fencing tokens. A lease is `SET NX PX` with a
 * token INCRemented in the same script; renewal (in batches, every third of
 * the lease) extends only leases still ours. Locally a lease counts as held
 * only until `lease − margin` after the last renewal that succeeded, so a node
 * cut off from Redis stops its actors before anyone else can take them over;
 * a node paused past that (GC, SIGSTOP) finds its leases expired when it
 * wakes, and the store's fence refuses whatever it still tries to write.
 * The node's heartbeat key rides on the same tick.
 */
export function createLeases(options: LeasesOptions) {
  const { nodeId, leaseMs, clock, logger } = options;
  const redis = withScripts(options.redis);
  const renewEveryMs = options.renewEveryMs ?? Math.max(50, Math.floor(leaseMs / 3));
  const marginMs = options.marginMs ?? Math.max(100, Math.floor(leaseMs / 5));
  const onCommand = options.onCommand ?? (() => {});
  const held = new Map<SessionId, Held>();
  /** Tokens of leases let go whose last writes may still be on their way to the store. */
  const former = new Map<SessionId, number>();
  let timer: unknown;
  let renewing = false;
  let lastRenewalStarted = 0;
  let lastRenewalOk = clock.now();
  let closed = false;

  const unavailable = (error: unknown) => {
    logger.warn({ err: String(error) }, 'redis did not answer a lease command');
    return new ChatError('unavailable', undefined, { cause: error, retryAfterMs: 1000 });
  };

  const expireLocally = () => {
    const now = clock.now();
    const lost: SessionId[] = [];
    for (const [sessionId, lease] of held) {
      if (lease.validUntil <= now) {
        lost.push(sessionId);
        former.set(sessionId, lease.token);
        held.delete(sessionId);
      }
    }
    if (lost.length > 0) {
      logger.warn({ sessions: lost.length, sinceRenewalMs: now - lastRenewalOk }, 'leases could not be renewed: stopping their sessions here');
      options.onLost(lost, 'unavailable');
    }
  };

  const renew = async () => {
    const started = clock.now();
    const batch = [...held.entries()];
    const lost: SessionId[] = [];
    let ok = true;
    const heartbeat = JSON.stringify({ at: started, ...(options.describe?.() ?? {}) });
    const calls: Promise<unknown>[] = [
      redis.set(redisKeys.node(nodeId), heartbeat, 'PX', leaseMs),
      redis.sadd(redisKeys.nodes, nodeId),
    ];
    onCommand(2);
    for (let index = 0; index < batch.length; index += RENEW_BATCH) {
      const slice = batch.slice(index, index + RENEW_BATCH);
      const keys = slice.flatMap(([sessionId]) => [redisKeys.lease(sessionId), redisKeys.fence(sessionId)]);
      const args = slice.flatMap(([, lease]) => [lease.holder, lease.token]);
      onCommand(1);
      calls.push(
        redis.renewLeases(keys.length, ...keys, leaseMs, ...args).then((indexes) => {
          for (const position of indexes) {
            const [sessionId, lease] = slice[position - 1]!;
            if (held.get(sessionId) === lease) lost.push(sessionId);
          }
        }),
      );
    }
    const results = await Promise.allSettled(calls);
    for (const result of results) if (result.status === 'rejected') ok = false;
    if (ok) {
      lastRenewalOk = started;
      for (const [sessionId, lease] of batch) {
        if (held.get(sessionId) === lease) lease.validUntil = started + leaseMs - marginMs;
      }
    }
    if (lost.length > 0) {
      for (const sessionId of lost) {
        const lease = held.get(sessionId);
        if (!lease) continue;
        former.set(sessionId, lease.token);
        held.delete(sessionId);
      }
      logger.warn({ sessions: lost.length }, 'leases taken by another node: stopping their sessions here');
      options.onLost(lost, 'moved');
    }
  };

  const tick = () => {
    if (closed) return;
    expireLocally();
    const now = clock.now();
    if (!renewing && now - lastRenewalStarted >= renewEveryMs) {
      renewing = true;
      lastRenewalStarted = now;
      void renew().finally(() => {
        renewing = false;
      });
    }
    timer = clock.setTimeout(tick, Math.max(20, Math.min(renewEveryMs, Math.floor(marginMs / 2))));
  };

  return {
    renewEveryMs,
    marginMs,

    /** Starts renewing and the heartbeat. */
    start() {
      tick();
    },

    /** The lease value this node holds for the session, while it may still act on it. */
    holderOf(sessionId: SessionId): string | undefined {
      const lease = held.get(sessionId);
      if (!lease) return undefined;
      if (lease.validUntil <= clock.now()) {
        // Checked here too: a node waking from a pause must not act on a lease before its timer runs.
        expireLocally();
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
      const sent = clock.now();
      let result: [1, string] | [0, string, number];
      try {
        onCommand(1);
        result = await redis.acquireLease(redisKeys.lease(sessionId), redisKeys.fence(sessionId), nodeId, leaseMs, floor);
      } catch (error) {
        throw unavailable(error);
      }
      if (result[0] === 0) return { acquired: false, holder: parseHolder(result[1]), pttl: Number(result[2]) };
      const { token } = parseHolder(result[1]);
      former.delete(sessionId);
      held.set(sessionId, { holder: result[1], token, validUntil: sent + leaseMs - marginMs });
      return { acquired: true, token };
    },

    /** Raises a held lease's token to at least `floor` (the store had a newer one); undefined when no longer ours. */
    async raise(sessionId: SessionId, floor: number): Promise<number | undefined> {
      const lease = held.get(sessionId);
      if (!lease) return undefined;
      let value: string | null;
      try {
        onCommand(1);
        value = await redis.raiseLease(redisKeys.lease(sessionId), redisKeys.fence(sessionId), lease.holder, floor, leaseMs, nodeId);
      } catch (error) {
        throw unavailable(error);
      }
      if (value === null || held.get(sessionId) !== lease) return undefined;
      lease.holder = value;
      lease.token = parseHolder(value).token;
      return lease.token;
    },

    /** Who holds the lease per Redis, with its remaining time; undefined when free. */
    async holder(sessionId: SessionId): Promise<{ holder: LeaseHolder; pttl: number } | undefined> {
      let value: string | null;
      let pttl: number;
      try {
        onCommand(2);
        [value, pttl] = await Promise.all([redis.get(redisKeys.lease(sessionId)), redis.pttl(redisKeys.lease(sessionId))]);
      } catch (error) {
        throw unavailable(error);
      }
      return value === null ? undefined : { holder: parseHolder(value), pttl };
    },

    /** Lets the lease go (locally at once, then in Redis). Its token stays known for writes still draining until `forgetToken`. */
    async release(sessionId: SessionId): Promise<void> {
      const lease = held.get(sessionId);
      if (!lease) return;
      held.delete(sessionId);
      former.set(sessionId, lease.token);
      try {
        onCommand(1);
        await redis.releaseLease(redisKeys.lease(sessionId), lease.holder);
      } catch (error) {
        // It expires by itself.
        logger.debug({ err: String(error) }, 'lease release failed; it will expire');
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

    /** True while renewals succeed. */
    get healthy(): boolean {
      return clock.now() - lastRenewalOk < leaseMs - marginMs;
    },

    /** Stops renewing and releases every lease (after the sessions have stopped and their writes landed). */
    async close(): Promise<void> {
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      const sessions = [...held.keys()];
      await Promise.allSettled(sessions.map((sessionId) => this.release(sessionId)));
      former.clear();
      await Promise.allSettled([redis.del(redisKeys.node(nodeId)), redis.srem(redisKeys.nodes, nodeId)]);
    },
  };
}

export type Leases = ReturnType<typeof createLeases>;
