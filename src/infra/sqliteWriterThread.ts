import { Worker } from 'node:worker_threads';
import type { CommitPlan, CommitSql } from './sqliteCommitPlan.ts';

export interface WriterWorkerData {
  path: string;
  busyTimeoutMs: number;
  /** How long the probe waits for the write lock (the main thread's own short writes may hold it). */
  probeTimeoutMs: number;
  /** WAL pages at which this connection checkpoints (SQLite's wal_autocheckpoint). */
  checkpointPages: number;
  sql: CommitSql;
}

export type ToWriter = { type: 'commit'; id: number; plans: readonly CommitPlan[] } | { type: 'probe'; id: number } | { type: 'close' };

type FromWriter =
  | { type: 'done'; id: number; result?: { absent: string[]; fenced: string[] } }
  | { type: 'failed'; id: number; error: { message: string; code?: unknown } };

export interface SqliteWriterThread {
  /** One transaction for all the plans: the sessions not stored, and those refused for an older fencing token. */
  commit(plans: readonly CommitPlan[]): Promise<{ absent: string[]; fenced: string[] }>;
  /** Takes and gives back the write lock in the thread. */
  probe(): Promise<void>;
  /** Closes the thread's connections once the requests sent before are answered. */
  close(): Promise<void>;
}

// Plain JavaScript, so a thread needs no TypeScript hooks of its own (see the file's header).
const workerUrl = new URL('./sqliteWriterWorker.mjs', import.meta.url);

interface Pending {
  resolve: (result: { absent: string[]; fenced: string[] } | undefined) => void;
  reject: (error: Error) => void;
}

/** The thread's answer to a commit; none is the same as nothing absent or fenced. */
const orNothing = (result: { absent: string[]; fenced: string[] } | undefined) => result ?? { absent: [], fenced: [] };

/**
 * The writer thread as the main thread sees it. A thread that dies (it
 * cannot open the file, or crashed) fails what it was asked, as a failed
 * commit does, and the next request starts a new one: the store's health
 * then goes by what that one answers. It starts with the store, and keeps
 * the process alive only while a request waits on it.
 */
export function startSqliteWriterThread(data: WriterWorkerData): SqliteWriterThread {
  const pending = new Map<number, Pending>();
  let nextId = 0;
  let worker: Worker | undefined;
  let closed = false;

  const spawn = (): Worker => {
    const thread = new Worker(workerUrl, { workerData: data, name: 'llm-chat sqlite writer' });
    thread.unref();
    thread.on('message', (message: FromWriter) => {
      const waiting = pending.get(message.id);
      if (!waiting) return;
      pending.delete(message.id);
      if (pending.size === 0) thread.unref();
      if (message.type === 'done') waiting.resolve(message.result);
      else waiting.reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
    });
    // 'error' comes before 'exit': whatever was asked fails with it.
    let cause: Error | undefined;
    thread.on('error', (error) => (cause = error));
    thread.on('exit', (code) => {
      if (worker === thread) worker = undefined;
      const error = cause ?? new Error(`the SQLite writer thread stopped (exit code ${code})`);
      for (const waiting of pending.values()) waiting.reject(error);
      pending.clear();
    });
    return thread;
  };

  // Started with the store, not at its first write: a thread that cannot
  // start shows at once, and its memory (about 10 MB, an isolate of its own)
  // is the process's, not the first connections'.
  worker = spawn();

  const ask = (message: { type: 'commit'; plans: readonly CommitPlan[] } | { type: 'probe' }) =>
    new Promise<{ absent: string[]; fenced: string[] } | undefined>((resolve, reject) => {
      if (closed) {
        reject(new Error('store closed'));
        return;
      }
      worker ??= spawn();
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...message, id } satisfies ToWriter);
    });

  return {
    // Not an async function: its frame would hold the plans (cloned already) until the thread answers,
    // so each outlived the scavenges of the commit's wait (bench/liveAllocations.ts --promoted).
    commit: (plans) => ask({ type: 'commit', plans }).then(orNothing),
    probe: async () => {
      await ask({ type: 'probe' });
    },
    async close() {
      closed = true;
      const thread = worker;
      if (!thread) return;
      const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
      thread.postMessage({ type: 'close' } satisfies ToWriter);
      thread.ref();
      await exited;
    },
  };
}
