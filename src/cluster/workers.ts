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
 * The primary of `--workers N`: forks N copies of this program, which share
 * the port (node:cluster hands connections out round-robin) and each other's
 * sessions through Redis. A worker that dies is replaced (its sessions move
 * to the others once their leases expire); SIGTERM / SIGINT go to every
 * worker, which drain as one node would, and the primary exits when they
 * have.
 */
export function runWorkers(options: WorkersOptions): void {
  const { logger } = options;
  const count = options.count === 0 ? availableParallelism() : options.count;
  let stopping = false;
  let announced = false;
  const listening = new Set<number>();

  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on('message', (message: WorkerMessage) => {
      if (message?.type !== 'llm-chat:listening') return;
      listening.add(worker.id);
      if (!announced && listening.size >= count) {
        announced = true;
        options.onListening(message.url, count);
      }
    });
    return worker;
  };

  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        logger.info({}, 'all workers stopped');
        process.exit(0);
      }
      return;
    }
    logger.warn({ pid: worker.process.pid, code, signal }, 'worker died; starting another');
    fork();
  });

  const stop = (signal: NodeJS.Signals) => {
    const again = stopping;
    stopping = true;
    logger.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, again ? 'stopping workers now' : 'stopping workers');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
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

export const isWorker = (): boolean => cluster.isWorker;
