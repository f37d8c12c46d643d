import { Worker } from 'node:worker_threads';
import type { Logger } from '../domain/ports.ts';
import { HEARTBEAT_LUA } from '../infra/redisScripts.ts';
import { SLOT, SLOTS } from './heartbeatShared.ts';
import type { HeartbeatWorkerData, ToMain, ToWorker } from './heartbeatShared.ts';

export interface HeartbeatThreadOptions extends Omit<HeartbeatWorkerData, 'shared' | 'SLOT' | 'heartbeatLua'> {
  logger: Logger;
  /** A beat found this node's heartbeat key expired (see `expiredAt`). */
  onExpired: () => void;
}

// Plain JavaScript, so a thread needs no TypeScript hooks of its own (see the file's header).
const workerUrl = new URL('./heartbeatWorker.mjs', import.meta.url);

/**
 * The heartbeat thread as the main thread sees it. Started: after its first
 * beat was tried (sent or failed, as an in-loop first beat was). Rejects,
 * with the thread gone, when the thread cannot start at all.
 */
export async function startHeartbeatThread(options: HeartbeatThreadOptions) {
  const { logger, onExpired, ...rest } = options;
  const shared = new SharedArrayBuffer(SLOTS * BigInt64Array.BYTES_PER_ELEMENT);
  const state = new BigInt64Array(shared);
  Atomics.store(state, SLOT.mainTick, BigInt(Date.now()));
  const data: HeartbeatWorkerData = { ...rest, shared, SLOT, heartbeatLua: HEARTBEAT_LUA };
  const worker = new Worker(workerUrl, { workerData: data, name: `llm-chat heartbeat ${rest.nodeId}` });
  // The thread must not keep a process alive that is otherwise done.
  worker.unref();
  const waiting = new Map<number, () => void>();
  let nextId = 0;
  let exited = false;
  const exit = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  void exit.then(() => {
    exited = true;
    for (const resolve of waiting.values()) resolve();
    waiting.clear();
  });
  const send = (message: ToWorker) => {
    if (!exited) worker.postMessage(message);
  };

  worker.on('message', (message: ToMain) => {
    if (message.type === 'beaten') {
      waiting.get(message.id)?.();
      waiting.delete(message.id);
    } else if (message.type === 'expired') onExpired();
    else if (message.type === 'log') logger[message.level](message.fields, message.message);
  });
  let fail: ((error: unknown) => void) | undefined;
  let failedAtStart: ((code: number) => void) | undefined;
  let onStarted: ((message: ToMain) => void) | undefined;
  await new Promise<void>((resolve, reject) => {
    fail = (error) => reject(error instanceof Error ? error : new Error(String(error)));
    failedAtStart = (code) => reject(new Error(`the heartbeat thread exited at start (code ${code})`));
    onStarted = (message) => {
      if (message.type === 'started') resolve();
    };
    worker.once('error', fail);
    worker.once('exit', failedAtStart);
    worker.on('message', onStarted);
  })
    .catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    })
    .finally(() => {
      worker.off('error', fail!);
      worker.off('exit', failedAtStart!);
      worker.off('message', onStarted!);
    });
  worker.on('error', (error) => logger.error({ err: String(error) }, 'the heartbeat thread failed: leases will lapse'));

  const read = (slot: number) => Number(Atomics.load(state, slot));

  return {
    validUntil: () => read(SLOT.validUntil),
    expiredAt: () => read(SLOT.expiredAt),
    beats: () => read(SLOT.beats),
    maxRoundTripMs: () => read(SLOT.maxRoundTrip),
    /** The main loop runs: the heartbeat may go on. */
    stamp(now: number) {
      Atomics.store(state, SLOT.mainTick, BigInt(now));
    },
    describe(json: string) {
      send({ type: 'describe', json });
    },
    /** The expiry seen at `at` was dealt with (leases reclaimed): valid until `until`, unless a newer expiry came meanwhile. */
    settleExpired(at: number, until: number): boolean {
      if (Atomics.compareExchange(state, SLOT.expiredAt, BigInt(at), 0n) !== BigInt(at)) return false;
      if (BigInt(until) > Atomics.load(state, SLOT.validUntil)) Atomics.store(state, SLOT.validUntil, BigInt(until));
      return true;
    },
    /** Beats now (or joins the beat in flight); resolves once it was answered or failed. */
    beatNow(): Promise<void> {
      if (exited) return Promise.resolve();
      const id = (nextId += 1);
      return new Promise<void>((resolve) => {
        waiting.set(id, resolve);
        send({ type: 'beat', id });
      });
    },
    /** Stops the thread and its connection: asked first, terminated if it has not gone within a second. */
    async close(): Promise<void> {
      if (exited) return;
      send({ type: 'close' });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), 1000);
      });
      const outcome = await Promise.race([exit, late]);
      clearTimeout(timer);
      if (outcome === 'late') await worker.terminate();
    },
  };
}

export type HeartbeatThread = Awaited<ReturnType<typeof startHeartbeatThread>>;
