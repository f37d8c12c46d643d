// @ts-check
/*
 * The heartbeat of one node, in a thread of its own with its own Redis
 * connection: an overloaded main event loop (measured: lease timers 8.1 s
 * late, heartbeat round trips 6.9 s, at 30,000 sessions on 2 cores) no longer
 * delays the renewal of every lease it holds. What the main thread needs
 * synchronously lives in the SharedArrayBuffer (slots: heartbeatShared.ts).
 *
 * Plain JavaScript on purpose: a TypeScript worker needs tsx's hooks
 * registered in the thread, which starts an esbuild service per thread and
 * took 2–11 s per start on the loaded 2-core machine (server start-ups in the
 * cluster tests timed out). Everything it needs (the Lua script, the slots,
 * the connection settings) comes in workerData from heartbeatThread.ts,
 * whose HeartbeatWorkerData type describes it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';

/** @type {import('./heartbeatShared.ts').HeartbeatWorkerData} */
const data = workerData;
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);
const { SLOT } = data;
const state = new BigInt64Array(data.shared);
/** @param {import('./heartbeatShared.ts').ToMain} message */
const post = (message) => port.postMessage(message);
/** @param {'debug' | 'info' | 'warn' | 'error'} level @param {Record<string, unknown>} fields @param {string} message */
const log = (level, fields, message) => post({ type: 'log', level, fields, message });

// As openRedis (src/infra/redisConnection.ts) and the node's other connections: no offline queue,
// retried forever at most a second apart; a beat unanswered for half a lease (at least 1 s: a busy
// Redis on the loaded machine is not a dead one) fails, so the next one goes out within the lease.
const redis = new Redis(data.redisUrl, {
  connectionName: `llm-chat:${data.nodeId}:heartbeat`,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: Math.max(1000, Math.floor(data.leaseMs / 2)),
  connectTimeout: 2000,
  retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
});
let down = false;
redis.on('error', (error) => {
  if (!down) log('warn', { err: String(error) }, 'heartbeat connection failed; retrying');
  down = true;
});
redis.on('ready', () => {
  down = false;
});
redis.defineCommand('heartbeat', { numberOfKeys: 2, lua: data.heartbeatLua });
/** @type {(key: string, nodes: string, body: string, leaseMs: number, node: string) => Promise<number>} */
const heartbeat = /** @type {any} */ (redis).heartbeat.bind(redis);

let description = '{}';
/** @type {Promise<void> | undefined} */
let inFlight;
let lastStarted = 0;
/** @type {NodeJS.Timeout | undefined} */
let timer;
let closed = false;
let wedged = false;

const send = async () => {
  const started = Date.now();
  const sinceTick = started - Number(Atomics.load(state, SLOT.mainTick));
  if (sinceTick > data.wedgeMs) {
    // The main thread is stuck, not merely slow: let its leases lapse so another node can serve them.
    if (!wedged) log('error', { sinceTickMs: sinceTick, boundMs: data.wedgeMs }, 'the main thread has not ticked: heartbeat stopped, leases will lapse');
    wedged = true;
    return;
  }
  if (wedged) log('warn', {}, 'the main thread ticks again: heartbeat resumed');
  wedged = false;
  const body = description.length > 2 ? `{"at":${started},${description.slice(1)}` : `{"at":${started}}`;
  Atomics.add(state, SLOT.beats, 1n);
  let existed;
  try {
    existed = await heartbeat(data.heartbeatKey, data.nodesKey, body, data.leaseMs, data.nodeId);
  } catch (error) {
    log('debug', { err: String(error) }, 'heartbeat failed');
    return;
  }
  const roundTrip = BigInt(Date.now() - started);
  if (roundTrip > Atomics.load(state, SLOT.maxRoundTrip)) Atomics.store(state, SLOT.maxRoundTrip, roundTrip);
  if (existed === 0) {
    // Presumed dead meanwhile: the main thread checks which leases are still ours before acting on them again.
    Atomics.store(state, SLOT.expiredAt, BigInt(started));
    post({ type: 'expired' });
    return;
  }
  if (Atomics.load(state, SLOT.expiredAt) !== 0n) return;
  const until = BigInt(started + data.leaseMs - data.marginMs);
  if (until > Atomics.load(state, SLOT.validUntil)) Atomics.store(state, SLOT.validUntil, until);
};

const beat = () => {
  lastStarted = Date.now();
  inFlight ??= send().finally(() => {
    inFlight = undefined;
  });
  return inFlight;
};

const loop = () => {
  if (closed) return;
  if (!inFlight && Date.now() - lastStarted >= data.renewEveryMs) void beat();
  timer = setTimeout(loop, Math.max(10, Math.floor(data.renewEveryMs / 4)));
};

port.on('message', (/** @type {import('./heartbeatShared.ts').ToWorker} */ message) => {
  if (message.type === 'describe') description = message.json;
  else if (message.type === 'beat') void beat().then(() => post({ type: 'beaten', id: message.id }));
  else if (message.type === 'close') {
    closed = true;
    clearTimeout(timer);
    redis.disconnect();
    // Ends this thread only; its event loop would otherwise linger on the closed socket (~1 s, measured).
    process.exit(0);
  }
});

// The first beat once connected (or after the start-up bound: then it fails, as an in-loop first beat would).
const ready = new Promise((resolve) => {
  const bound = setTimeout(resolve, data.connectTimeoutMs);
  redis.once('ready', () => {
    clearTimeout(bound);
    resolve(undefined);
  });
});
void ready
  .then(() => (closed ? undefined : beat()))
  .then(() => {
    if (closed) return;
    post({ type: 'started' });
    loop();
  });
