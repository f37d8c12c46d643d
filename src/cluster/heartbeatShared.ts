/**
 * What the main thread and the heartbeat thread share: slots of a
 * BigInt64Array over a SharedArrayBuffer (read and written with Atomics, so
 * the main thread reads them synchronously, however late its event loop
 * runs), and the messages they exchange. Times are `Date.now()` milliseconds.
 */
export const SLOT = {
  /** Until when this node may act on its leases: the last good beat's send time + lease − margin. */
  validUntil: 0,
  /** The main thread's last tick: the heartbeat stops when it is older than the wedge bound. */
  mainTick: 1,
  /** Send time of a beat that found this node's heartbeat key expired (0: none pending). */
  expiredAt: 2,
  /** Heartbeats sent (Redis commands). */
  beats: 3,
  /** Longest heartbeat round trip seen (ms). */
  maxRoundTrip: 4,
} as const;
export const SLOTS = 5;

export interface HeartbeatWorkerData {
  shared: SharedArrayBuffer;
  SLOT: typeof SLOT;
  /** The heartbeat script (src/infra/redisScripts.ts): KEYS heartbeat, nodes; ARGV description, lease ms, node. */
  heartbeatLua: string;
  redisUrl: string;
  nodeId: string;
  heartbeatKey: string;
  nodesKey: string;
  leaseMs: number;
  marginMs: number;
  renewEveryMs: number;
  wedgeMs: number;
  connectTimeoutMs: number;
}

export type ToWorker = { type: 'describe'; json: string } | { type: 'beat'; id: number } | { type: 'close' };
export type ToMain =
  | { type: 'started' }
  | { type: 'beaten'; id: number }
  | { type: 'expired' }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; fields: Record<string, unknown>; message: string };
