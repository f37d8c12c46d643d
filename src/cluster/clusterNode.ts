import type { Redis } from 'ioredis';
import type { SessionRegistry } from '../actors/sessionRegistry.ts';
import type { IdGenerator } from '../domain/ids.ts';
import type { Clock, Logger, SessionStore } from '../domain/ports.ts';
import { createRedisBus } from '../infra/redisBus.ts';
import type { RedisBus } from '../infra/redisBus.ts';
import { checkRedisServer, connectRedis, openRedis } from '../infra/redisConnection.ts';
import { createClusterSessions } from './clusterSessions.ts';
import type { ClusterSessions } from './clusterSessions.ts';
import { createCommandRouter } from './commandRouter.ts';
import type { CommandOp } from './commandRouter.ts';
import { fenceStore } from './fencedStore.ts';
import { createLeases } from './leases.ts';
import type { Leases } from './leases.ts';
import { createNodeWatch } from './nodeWatch.ts';
import { redisKeys } from '../infra/redisKeys.ts';
import { withScripts } from '../infra/redisScripts.ts';
import type { NodeInfo } from './nodeWatch.ts';

export interface ClusterNodeOptions {
  redisUrl: string;
  nodeId: string;
  leaseMs: number;
  clock: Clock;
  logger: Logger;
  /** Chunks kept per session in its Redis stream (`--replay-log-size`). */
  replayLogSize: number;
  /** Bytes of chunk text this node keeps per session for its own watchers' resume (`--replay-log-bytes`; default 1 MiB). */
  replayLogBytes?: number;
  /** A session's stream expires after this long without a chunk. */
  logTtlMs: number;
  /** How long start-up waits for Redis (default 10 s). */
  connectTimeoutMs?: number;
  /** The store this node uses (see storeIdentity): every node must name the same one. */
  storeIdentity: string;
}

/** Another node registered a different store: this one must not join. */
export class StoreMismatchError extends Error {
  override name = 'StoreMismatchError';
}

/** What the cluster counts, for metrics (set by the server once metrics exist). */
export interface ClusterCounters {
  redisCommand?: (count: number) => void;
  routed?: (op: CommandOp, outcome: 'local' | 'remote' | 'waited' | 'failed') => void;
  leasesLost?: (count: number, reason: 'moved' | 'unavailable') => void;
  fencedWrite?: () => void;
  publishFailed?: () => void;
}

export interface ClusterAttachment {
  registry: SessionRegistry;
  store: SessionStore;
  ids: IdGenerator;
  /** This node's own numbers for its heartbeat (inspector, cluster-wide counts). */
  describe: () => Record<string, unknown>;
  /** The cluster-wide session cap (`--max-sessions`); absent: none. */
  maxSessions?: number;
}

export interface ClusterNode {
  readonly nodeId: string;
  readonly leaseMs: number;
  readonly bus: RedisBus;
  readonly leases: Leases;
  /** The command connection. */
  readonly redis: Redis;
  /** The rate limiters' store (a connection of its own, without auto-pipelining). */
  readonly limiterRedis: Redis;
  readonly counters: ClusterCounters;
  /** The store as this node must use it: every write fenced by its lease's token. */
  fence(store: SessionStore): SessionStore;
  /** Wires the node's registry in; returns the sessions the transports use. */
  attach(attachment: ClusterAttachment): Promise<ClusterSessions>;
  /** Every registered node with its heartbeat. */
  nodes(): Promise<NodeInfo[]>;
  /** Resolves when Redis answers (readiness). */
  ping(): Promise<void>;
  /** Releases the leases (after the registry closed and flushed) and disconnects. */
  close(): Promise<void>;
}

/**
 * One node of a cluster: its Redis connections (commands, the bus's
 * subscriber, the command router's subscriber), its leases, the bus, the
 * watch over other nodes. Connects at once: a node does not start without
 * Redis (later outages it rides out).
 */
export async function openClusterNode(options: ClusterNodeOptions): Promise<ClusterNode> {
  const { nodeId, leaseMs, clock, logger } = options;
  const counters: ClusterCounters = {};
  // Commands by what issued them, also in the heartbeat (the cluster bench reads publishes per chunk there).
  const tally = { publish: 0, subscribe: 0, replay: 0, lease: 0, watch: 0, route: 0 };
  const lostTally = { moved: 0, unavailable: 0 };
  const countAs = (kind: keyof typeof tally) => (n: number) => {
    tally[kind] += n;
    counters.redisCommand?.(n);
  };
  // A command unanswered for half a lease fails: long enough that a node starved of CPU (its timers
  // run before its replies are read) does not take a busy Redis for a dead one, short enough that
  // renewals retry well within the lease.
  const connection = (role: string, autoPipelining = true) =>
    openRedis({ url: options.redisUrl, logger, name: `llm-chat:${nodeId}:${role}`, commandTimeoutMs: Math.max(1000, Math.floor(leaseMs / 2)), autoPipelining });
  const redis = connection('commands');
  const busSubscriber = connection('events');
  const rpcSubscriber = connection('rpc');
  // The rate limiters' own, without auto-pipelining: rate-limiter-flexible defines its Lua command on
  // the client in every limiter's constructor, and a key's limiters are made at its first request; an
  // auto-pipeline begun in that tick then lacks the command and ioredis throws, uncaught, "results[i]
  // is not iterable" (ioredis #1931), leaving the request unanswered (3 in ~25 runs of keyLimits.test.ts).
  const limiterRedis = connection('limits', false);
  const clients = [redis, busSubscriber, rpcSubscriber, limiterRedis];
  // Any start-up failure below leaves no connection behind.
  const disconnectAll = () => {
    for (const client of clients) client.disconnect();
  };
  try {
    await Promise.all(clients.map((client) => connectRedis(client, options.connectTimeoutMs)));
  } catch (error) {
    disconnectAll();
    throw new Error(`cannot reach Redis at start-up: ${String(error)}`);
  }
  const scripted = withScripts(redis);
  try {
    await checkRedisServer(redis, logger);
    const registered = await scripted.registerStore(redisKeys.store, options.storeIdentity, leaseMs * 3);
    if (registered !== null) {
      throw new StoreMismatchError(
        `another node of this cluster uses a different store (${registered}; this node: ${options.storeIdentity}). ` +
          'Every node must share one store: one PostgreSQL database (and schema), or, for worker processes on one machine, one SQLite file.',
      );
    }
  } catch (error) {
    disconnectAll();
    throw error;
  }
  // Kept while any node lives; it lapses once they have all gone.
  const storeRefresh = setInterval(() => {
    scripted.registerStore(redisKeys.store, options.storeIdentity, leaseMs * 3).catch(() => {});
  }, leaseMs);
  storeRefresh.unref();
  let sessions: ClusterSessions | undefined;
  let describe: () => Record<string, unknown> = () => ({});
  const leases = createLeases({
    redis,
    redisUrl: options.redisUrl,
    connectTimeoutMs: options.connectTimeoutMs,
    nodeId,
    leaseMs,
    clock,
    logger,
    describe: () => ({ ...describe(), redisCommands: tally, leasesLost: lostTally, ...leases.lateness() }),
    onCommand: countAs('lease'),
    onLost: (sessionIds, reason) => {
      lostTally[reason] += sessionIds.length;
      counters.leasesLost?.(sessionIds.length, reason);
      sessions?.lost(sessionIds, reason);
    },
  });
  const bus = createRedisBus({
    commands: redis,
    subscriber: busSubscriber,
    nodeId,
    logger,
    holderOf: (sessionId) => leases.holderOf(sessionId),
    replayLogSize: options.replayLogSize,
    ...(options.replayLogBytes !== undefined ? { replayLogBytes: options.replayLogBytes } : {}),
    logTtlMs: options.logTtlMs,
    onCommand: (kind) => countAs(kind)(1),
    onPublishFailed: () => counters.publishFailed?.(),
    onListenerError: (error, event) => logger.error({ event: event.type, err: String(error) }, 'bus listener failed'),
  });
  const nodeWatch = createNodeWatch({
    redis,
    nodeId,
    clock,
    logger,
    // A dead node is noticed at most this long after its heartbeat expired (250 ms at the
    // default lease, against 500 before): 8 Redis calls a second per node, idle.
    intervalMs: Math.max(50, Math.floor(leases.marginMs / 4)),
    onCommand: countAs('watch'),
    onOrphans: async (sessionIds) => sessions?.adopt(sessionIds),
  });
  redis.on('ready', () => void nodeWatch.resync());

  return {
    nodeId,
    leaseMs,
    bus,
    leases,
    redis,
    limiterRedis,
    counters,
    fence(store) {
      return fenceStore(store, {
        tokenOf: (sessionId) => leases.tokenOf(sessionId),
        onFenced: (sessionId) => {
          counters.fencedWrite?.();
          sessions?.fenced(sessionId);
        },
      });
    },
    async attach(attachment) {
      describe = attachment.describe;
      sessions = createClusterSessions({
        ...attachment,
        bus,
        leases,
        nodeWatch,
        nodeId,
        clock,
        logger,
        leaseMs,
        onRouted: (op, outcome) => counters.routed?.(op, outcome),
      });
      const router = createCommandRouter({ commands: redis, subscriber: rpcSubscriber, nodeId, logger, handle: (request) => sessions!.serve(request), onCommand: countAs('route') });
      await router.start();
      sessions.attachRouter(router);
      await leases.start();
      nodeWatch.start();
      const attached = sessions;
      const close = attached.close;
      attached.close = () => {
        close();
        router.close();
      };
      return attached;
    },
    nodes: () => nodeWatch.nodes(),
    async ping() {
      await redis.ping();
    },
    async close() {
      clearInterval(storeRefresh);
      sessions?.close();
      await nodeWatch.close();
      await leases.close();
      for (const client of clients) client.disconnect();
    },
  };
}
