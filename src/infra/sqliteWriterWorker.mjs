// @ts-check
/*
 * The SQLite writer thread: group commits of session updates (and the health
 * probe, which takes the same write lock) run here, on a connection of its
 * own, so a commit no longer holds the main event loop. better-sqlite3 is
 * synchronous: in the saturate bench its statements and COMMITs were 37% of
 * the main thread's busy time, and a batch of 5,000 sessions stopped the loop
 * for 100+ ms at a time. Everything else (reads, new sessions, deletes,
 * claims, keys, usage) stays on the main thread's connection; SQLite orders
 * the two writers with its lock, as it orders other processes.
 *
 * Plain JavaScript, like heartbeatWorker.mjs: a TypeScript thread would
 * start tsx's hooks of its own. What it runs comes from the main thread:
 * the statements in workerData, the plans in each message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { prepareCommit } from './sqliteCommitter.mjs';

/** @type {import('./sqliteWriterThread.ts').WriterWorkerData} */
const data = workerData;
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

const db = new Database(data.path, { timeout: data.busyTimeoutMs });
// Per connection (journal_mode is the file's, set by the main thread when it opened it).
db.pragma('synchronous = NORMAL');
db.pragma('foreign_keys = ON');
db.pragma(`wal_autocheckpoint = ${Math.max(1, Math.floor(data.checkpointPages))}`);
// As the main thread's connection: whichever connection resets the log cuts a grown one back (sqliteStore.ts).
db.pragma(`journal_size_limit = ${Math.max(1, Math.floor(data.checkpointPages)) * 2 * Number(db.pragma('page_size', { simple: true }))}`);
const probe = new Database(data.path, { timeout: data.probeTimeoutMs });
const commit = prepareCommit(db, data.sql);

/** @param {unknown} error */
const failure = (error) => ({
  message: error instanceof Error ? error.message : String(error),
  code: /** @type {{ code?: unknown }} */ (error)?.code,
});

port.on('message', (/** @type {import('./sqliteWriterThread.ts').ToWriter} */ message) => {
  if (message.type === 'close') {
    db.close();
    probe.close();
    port.close();
    return;
  }
  try {
    if (message.type === 'commit') {
      port.postMessage({ type: 'done', id: message.id, result: commit(message.plans) });
    } else {
      // Takes (and gives back) the write lock: proves writes can happen now.
      probe.exec('BEGIN IMMEDIATE');
      probe.exec('ROLLBACK');
      port.postMessage({ type: 'done', id: message.id });
    }
  } catch (error) {
    port.postMessage({ type: 'failed', id: message.id, error: failure(error) });
  }
});
