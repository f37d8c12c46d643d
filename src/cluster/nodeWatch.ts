import type { Redis } from 'ioredis';
import type { SessionId } from '../domain/ids.ts';
import type { Clock, Logger } from '../domain/ports.ts';
import { redisKeys } from '../infra/redisKeys.ts';
import { withScripts } from '../infra/redisScripts.ts';

/** Sessions a survivor takes from a dead node at a time. */
const ADOPT_BATCH = 50;

export interface NodeWatchOptions {
  redis: Redis;
  nodeId: string;
  clock: Clock;
  logger: Logger;
  /** How often the other nodes' heartbeats are checked. */
  intervalMs: number;
  /**
   * A node's heartbeat expired with sessions still working there (a reply in
   * flight or queued): this node won the right to take them over. The caller
   * activates them, which ends each reply in flight `interrupted` for every
   * watcher, without waiting for somebody's next command.
   */
  onOrphans(sessionIds: SessionId[], deadNode: string): Promise<void>;
  onCommand?: (count: number) => void;
}

/** A node as its heartbeat describes it. */
export interface NodeInfo {
  readonly id: string;
  readonly alive: boolean;
  readonly [field: string]: unknown;
}

/**
 * Watches the other nodes. Each node keeps the set of its working sessions
 * in Redis (two commands per reply, not per chunk); when a node's heartbeat
 * key expires, the survivors share its working sessions out (SPOP) and
 * take them over; one of them (SET NX) clears its entries.
 */
export function createNodeWatch(options: NodeWatchOptions) {
  const { redis, nodeId, clock, logger } = options;
  const onCommand = options.onCommand ?? (() => {});
  const working = new Set<SessionId>();
  let timer: unknown;
  let scanning = false;
  let closed = false;
  let resyncNeeded = false;
  /** Sessions the other live nodes reported in their last heartbeats. */
  let othersSessions = 0;

  // Every survivor that sees the heartbeat gone pops batches of the dead
  // node's working sessions (SPOP) until none is left, so the activations
  // spread over all the survivors' cores and store connections instead of
  // queueing on one winner (one node activating 1,250 sessions from a 30,000
  // run took 0.6–1.1 s past the lease's expiry). One survivor then clears
  // what is left of the dead node. A survivor that dies holding a batch
  // leaves those sessions to their next command (recovered `interrupted`
  // then, as on any activation).
  const takeOver = async (dead: string) => {
    let taken = 0;
    for (;;) {
      onCommand(1);
      const batch = (await redis.spop(redisKeys.working(dead), ADOPT_BATCH)) as SessionId[];
      if (batch.length === 0) break;
      taken += batch.length;
      await options.onOrphans(batch, dead);
    }
    if (taken > 0) logger.warn({ deadNode: dead, sessions: taken }, 'node gone: took over some of its sessions in flight');
    onCommand(1);
    const won = await redis.set(redisKeys.takeover(dead), nodeId, 'PX', 30_000, 'NX');
    if (won !== 'OK') return;
    // Its leases were free already (its heartbeat is gone); this frees their memory.
    onCommand(3);
    await withScripts(redis).forgetNode(redisKeys.held(dead), dead);
    await redis.multi().del(redisKeys.working(dead)).srem(redisKeys.nodes, dead).exec();
  };

  const scan = async () => {
    onCommand(1);
    const nodes = (await redis.smembers(redisKeys.nodes)).filter((id) => id !== nodeId);
    if (nodes.length === 0) {
      othersSessions = 0;
      return;
    }
    onCommand(1);
    const beats = await redis.mget(...nodes.map((id) => redisKeys.node(id)));
    let sessions = 0;
    for (const beat of beats) {
      if (beat) sessions += Number((JSON.parse(beat) as { sessions?: number }).sessions ?? 0);
    }
    othersSessions = sessions;
    for (const [index, id] of nodes.entries()) {
      if (beats[index] === null) await takeOver(id);
    }
  };

  const tick = () => {
    if (closed) return;
    if (!scanning) {
      scanning = true;
      scan()
        .catch((error: unknown) => logger.debug({ err: String(error) }, 'node scan failed'))
        .finally(() => {
          scanning = false;
        });
    }
    timer = clock.setTimeout(tick, options.intervalMs);
  };

  return {
    start() {
      tick();
    },

    /** Keeps the node's working set in Redis in step (deduplicated here). */
    markWorking(sessionId: SessionId, isWorking: boolean): void {
      if (isWorking === working.has(sessionId) || closed) return;
      if (isWorking) working.add(sessionId);
      else working.delete(sessionId);
      onCommand(1);
      const done = isWorking ? redis.sadd(redisKeys.working(nodeId), sessionId) : redis.srem(redisKeys.working(nodeId), sessionId);
      done.catch(() => {
        // Redis down: the set is rewritten when it is back (see resync).
        resyncNeeded = true;
      });
    },

    /** After Redis came back: the working set as this node knows it. */
    async resync(): Promise<void> {
      if (!resyncNeeded) return;
      resyncNeeded = false;
      const key = redisKeys.working(nodeId);
      const members = [...working];
      onCommand(2);
      const multi = redis.multi().del(key);
      if (members.length > 0) multi.sadd(key, ...members);
      await multi.exec().catch(() => {
        resyncNeeded = true;
      });
    },

    /** Live sessions on the other nodes, as of their last heartbeats (the cluster-wide session cap). */
    get othersSessions(): number {
      return othersSessions;
    },

    /** Every registered node with its heartbeat (the inspector's cluster view). */
    async nodes(): Promise<NodeInfo[]> {
      const ids = await redis.smembers(redisKeys.nodes);
      if (ids.length === 0) return [];
      const beats = await redis.mget(...ids.map((id) => redisKeys.node(id)));
      return ids
        .map((id, index) => {
          const beat = beats[index];
          return beat ? { id, alive: true, ...(JSON.parse(beat) as Record<string, unknown>) } : { id, alive: false };
        })
        .sort((a, b) => (a.id < b.id ? -1 : 1));
    },

    async close(): Promise<void> {
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      await redis.del(redisKeys.working(nodeId)).catch(() => {});
    },
  };
}

export type NodeWatch = ReturnType<typeof createNodeWatch>;
