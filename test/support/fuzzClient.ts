import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface FuzzTarget {
  readonly url: string;
  readonly process: ChildProcess;
  /** The server's heap after a full collection (bytes). */
  heap(): Promise<number>;
  edge(): Promise<{ slots: number; ws: number; wsTracked: number; sse: number; bufferedBytes: number; sessions: number }>;
  close(): Promise<void>;
}

/** Starts test/support/fuzzTarget.ts in a child process (--expose-gc) and waits until it listens. */
export function startFuzzTarget(options: Record<string, number> = {}): Promise<FuzzTarget> {
  const child = fork(fileURLToPath(new URL('./fuzzTarget.ts', import.meta.url)), [JSON.stringify(options)], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = <T>(type: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: { type: string }) => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(message as T);
      };
      const onExit = (code: number | null) => reject(new Error(`fuzz target exited (${code})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ type });
    });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`fuzz target exited (${code}) before listening`)));
    child.on('message', function ready(message: { type: string; url?: string }) {
      if (message.type !== 'ready' || !message.url) return;
      child.off('message', ready);
      resolve({
        url: message.url,
        process: child,
        heap: async () => (await ask<{ heapUsed: number }>('heap')).heapUsed,
        edge: () => ask('edge'),
        close: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.send({ type: 'close' });
          }),
      });
    });
  });
}
