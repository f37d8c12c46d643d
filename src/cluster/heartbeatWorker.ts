import { parentPort, workerData } from 'node:worker_threads';
import type { Logger } from '../domain/ports.ts';
import { connectRedis, openRedis } from '../infra/redisConnection.ts';
import { withScripts } from '../infra/redisScripts.ts';
import { SLOT } from './heartbeatShared.ts';
import type { HeartbeatWorkerData, ToMain, ToWorker } from './heartbeatShared.ts';

/*
 * The heartbeat of one node, in a thread of its own with its own Redis
 * connection: an overloaded main event loop (measured: lease timers 8.1 s
 * late, heartbeat round trips 6.9 s, at 30,000 sessions on 2 cores) no longer
 * delays the renewal of every lease it holds. What the main thread needs
 * synchronously lives in the SharedArrayBuffer (see heartbeatShared.ts).
 */
const data = workerData as HeartbeatWorkerData;
const port = parentPort!;
const state = new BigInt64Array(data.shared);
const post = (message: ToMain) => port.postMessage(message);
const forward = (level: 'debug' | 'info' | 'warn' | 'error') => (fields: Record<string, unknown>, message: string) => post({ type: 'log', level, fields, message });
const logger: Logger = { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };

// A beat unanswered for half a lease fails, so the next one goes out well within the lease.
const redis = withScripts(openRedis({ url: data.redisUrl, logger, name: `llm-chat:${data.nodeId}:heartbeat`, commandTimeoutMs: Math.max(200, Math.floor(data.leaseMs / 2)) }));
let description = '{}';
let inFlight: Promise<void> | undefined;
let lastStarted = 0;
let timer: NodeJS.Timeout | undefined;
let closed = false;
let wedged = false;

const send = async (): Promise<void> => {
  const started = Date.now();
  const sinceTick = started - Number(Atomics.load(state, SLOT.mainTick));
  if (sinceTick > data.wedgeMs) {
    // The main thread is stuck, not merely slow: let its leases lapse so another node can serve them.
    if (!wedged) logger.error({ sinceTickMs: sinceTick, boundMs: data.wedgeMs }, 'the main thread has not ticked: heartbeat stopped, leases will lapse');
    wedged = true;
    return;
  }
  if (wedged) logger.warn({}, 'the main thread ticks again: heartbeat resumed');
  wedged = false;
  const body = description.length > 2 ? `{"at":${started},${description.slice(1)}` : `{"at":${started}}`;
  Atomics.add(state, SLOT.beats, 1n);
  let existed: number;
  try {
    existed = await redis.heartbeat(data.heartbeatKey, data.nodesKey, body, data.leaseMs, data.nodeId);
  } catch (error) {
    logger.debug({ err: String(error) }, 'heartbeat failed');
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

const beat = (): Promise<void> => {
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

port.on('message', (message: ToWorker) => {
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

connectRedis(redis, data.connectTimeoutMs)
  .catch((error: unknown) => logger.warn({ err: String(error) }, 'heartbeat connection not ready at start; retrying'))
  .then(() => (closed ? undefined : beat()))
  .then(() => {
    if (closed) return;
    post({ type: 'started' });
    loop();
  });
