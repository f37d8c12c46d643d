import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from '../domain/ports.ts';

export interface WorkersOptions {
  /** 0: one per core. */
  count: number;
  logger: Logger;
  /** The URL the workers listen on, once they all do. */
  onListening: (url: string, workers: number) => void;
}

/** What a worker tells the primary. */
export type WorkerMessage = { type: 'llm-chat:listening'; url: string };

/**
 * What the primary tells a worker: drain (`now: false`) or exit at once.
 * A message, not a signal: Ctrl-C (or `timeout`, or systemd's KillMode) sends
 * the signal to the whole process group, so a worker already has it; a
 * forwarded signal would arrive as its *second* one and make it exit without
 * draining.
 */
export type PrimaryMessage = { type: 'llm-chat:shutdown'; signal: NodeJS.Signals; now: boolean };

/**
 * The primary of `--workers N`: forks N copies of this program, which share
 * the port (each accepts from the one listening socket) and each other's
 * sessions through Redis. A worker that dies is replaced (its sessions move
 * to the others once their leases expire); SIGTERM / SIGINT tell every
 * worker to drain as one node would (a second signal: to exit at once), and
 * the primary exits when they have.
 */
export function runWorkers(options: WorkersOptions): void {
  const { logger } = options;
  const count = options.count === 0 ? availableParallelism() : options.count;
  let stopping = false;
  let lastShutdown: PrimaryMessage | undefined;
  let announced = false;
  const listening = new Set<number>();
  // The workers accept from the shared socket themselves. With node:cluster's round-robin the
  // primary accepts every connection and hands it over IPC to one worker at a time: in the
  // 100,000-session bench that handoff fell behind 400 connections/s, the primary held 8,395 sockets
  // unread at 30,000 and ran out of files (20,000) at 14,228, after which nobody connected.
  // Accepting in the workers, 96,356 connected. NODE_CLUSTER_SCHED_POLICY=rr still chooses it.
  if (process.env['NODE_CLUSTER_SCHED_POLICY'] === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;

  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on('message', (message: WorkerMessage) => {
      if (message?.type !== 'llm-chat:listening') return;
      // A worker still starting when the primary was told to stop (a replacement forked just before)
      // had no listener for the request yet and dropped it: the cluster bench's primary then waited
      // for it for good. Told again now that it listens.
      if (stopping && lastShutdown) worker.send(lastShutdown);
      listening.add(worker.id);
      if (!announced && listening.size >= count) {
        announced = true;
        options.onListening(message.url, count);
      }
    });
    return worker;
  };

  cluster.on('exit', (worker, code, signal) => {
    // Exit code 2 before it listened: it refused its start-up (one that listened is replaced as any other).
    const refusedStart = code === 2 && !listening.has(worker.id);
    listening.delete(worker.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        logger.info({}, 'all workers stopped');
        process.exit(0);
      }
      return;
    }
    if (refusedStart) {
      // It refused its start-up (a bad setting, a store or Redis the cluster cannot use, exit code 2;
      // it said why on stderr): another would too, and starting one would loop.
      if (listening.size > 0) {
        // A replacement, beside workers that serve: they go on, one fewer.
        logger.error({ pid: worker.process.pid, workers: listening.size }, 'a replacement worker refused to start (exit code 2); not starting another');
        return;
      }
      stopping = true;
      logger.error({ pid: worker.process.pid }, 'a worker refused to start (exit code 2); stopping');
      // None of them serves yet: nothing to drain.
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGKILL');
      process.exit(2);
    }
    logger.warn({ pid: worker.process.pid, code, signal }, 'worker died; starting another');
    fork();
  });

  const stop = (signal: NodeJS.Signals) => {
    const again = stopping;
    stopping = true;
    logger.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, again ? 'stopping workers now' : 'stopping workers');
    const message: PrimaryMessage = { type: 'llm-chat:shutdown', signal, now: again };
    lastShutdown = message;
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (!worker) continue;
      // A worker whose IPC channel is gone cannot be told: the signal is all that is left.
      if (worker.isConnected()) worker.send(message);
      else worker.process.kill(again ? 'SIGKILL' : signal);
    }
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  logger.info({ workers: count }, 'starting workers');
  for (let index = 0; index < count; index += 1) fork();
}

/** In a worker: tells the primary this worker listens. */
export function announceListening(url: string): void {
  const message: WorkerMessage = { type: 'llm-chat:listening', url };
  process.send?.(message);
}

/** In a worker: calls `onShutdown` for each shutdown the primary asks for. Returns the unsubscribe. */
export function onPrimaryShutdown(onShutdown: (signal: NodeJS.Signals, now: boolean) => void): () => void {
  const listener = (message: unknown) => {
    const shutdown = message as Partial<PrimaryMessage> | null;
    if (shutdown?.type !== 'llm-chat:shutdown' || typeof shutdown.signal !== 'string') return;
    onShutdown(shutdown.signal, shutdown.now === true);
  };
  process.on('message', listener);
  return () => void process.off('message', listener);
}

export const isWorker = (): boolean => cluster.isWorker;
