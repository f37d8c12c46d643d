import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMIT_SQL, commitPlanOf } from '../../src/infra/sqliteCommitPlan.ts';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { startSqliteWriterThread } from '../../src/infra/sqliteWriterThread.ts';
import type { SessionId } from '../../src/domain/ids.ts';

const directory = mkdtempSync(join(tmpdir(), 'llm-chat-writer-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const touch = (sessionId: string) =>
  commitPlanOf({ sessionId: sessionId as SessionId, lastSeq: 3, seqReserved: 64, lastActiveAt: 1, stopped: false, messages: [] });

describe('SQLite writer thread', () => {
  it('a thread that cannot open its file fails what it was asked, and the next request starts a new one', async () => {
    const path = join(directory, 'later.sqlite');
    // A directory where the file should be: the thread cannot open it and exits.
    mkdirSync(path);
    const writer = startSqliteWriterThread({ path, busyTimeoutMs: 1000, probeTimeoutMs: 200, checkpointPages: 1000, sql: COMMIT_SQL });
    try {
      await expect(writer.commit([touch('s1')])).rejects.toThrow();
      await expect(writer.probe()).rejects.toThrow();
      // The file appears (migrated, with the session): the next request's thread commits.
      rmSync(path, { recursive: true });
      const store = openSqliteStore({ path });
      await store.create({ sessionId: 's1' as SessionId, createdAt: 1, lastActiveAt: 1, lastSeq: 0, seqReserved: 0, stopped: false, messages: [] });
      await store.close();
      await expect(writer.probe()).resolves.toBeUndefined();
      await expect(writer.commit([touch('s1'), touch('gone')])).resolves.toEqual({ absent: ['gone'], fenced: [] });
    } finally {
      await writer.close();
    }
    await expect(writer.commit([touch('s1')])).rejects.toThrow('store closed');
  });

  it('a write refused for its content comes back with the driver’s code (the batcher isolates it by that)', async () => {
    const path = join(directory, 'content.sqlite');
    const store = openSqliteStore({ path });
    await store.create({ sessionId: 's1' as SessionId, createdAt: 1, lastActiveAt: 1, lastSeq: 0, seqReserved: 0, stopped: false, messages: [] });
    await store.close();
    const writer = startSqliteWriterThread({ path, busyTimeoutMs: 1000, probeTimeoutMs: 200, checkpointPages: 1000, sql: COMMIT_SQL });
    try {
      const message = { id: 'm1', order: 1, role: 'user' as const, content: 'hi', status: 'complete' as const, createdAt: 1, updatedAt: 1 };
      // Two messages of one session in the same place: the unique (session_id, ord) index refuses the second.
      const plan = commitPlanOf({ sessionId: 's1' as SessionId, lastSeq: 0, seqReserved: 0, lastActiveAt: 1, stopped: false, messages: [message, { ...message, id: 'm2' }] });
      await expect(writer.commit([plan])).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_CONSTRAINT/) });
    } finally {
      await writer.close();
    }
  });

  it('the health probe waits out a short hold of the write lock (a write of this process) but not a long one', async () => {
    const path = join(directory, 'probe.sqlite');
    const store = openSqliteStore({ path });
    const other = new Database(path);
    try {
      await expect(store.ping()).resolves.toBeUndefined();
      // Held 50 ms, as the main thread's own short writes hold it: not an outage.
      other.exec('BEGIN IMMEDIATE');
      setTimeout(() => other.exec('COMMIT'), 50);
      await expect(store.ping()).resolves.toBeUndefined();
      // Held past the probe's 200 ms wait, as another process would: the probe fails.
      other.exec('BEGIN IMMEDIATE');
      const released = new Promise((resolve) => setTimeout(resolve, 600)).then(() => other.exec('COMMIT'));
      await expect(store.ping()).rejects.toMatchObject({ code: 'store_unavailable' });
      await released;
      await expect(store.ping()).resolves.toBeUndefined();
    } finally {
      other.close();
      await store.close();
    }
  });
});

describe('SQLite WAL checkpoints (checkpointPages)', () => {
  const PAGE = 4096;
  const walPages = (path: string) => (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size / PAGE : 0);
  /** A message of about two pages: each commit grows the log by a few pages. */
  const bulky = (id: string, order: number) => ({ id, order, role: 'user' as const, content: 'x'.repeat(2 * PAGE), status: 'complete' as const, createdAt: 1, updatedAt: 1 });
  const record = (id: string) => ({ sessionId: id as SessionId, createdAt: 1, lastActiveAt: 1, lastSeq: 0, seqReserved: 0, stopped: false, messages: [bulky(`${id}-m`, 1)] });

  it('the writer thread checkpoints once the log holds checkpointPages pages; the log stays near that size', async () => {
    const path = join(directory, 'checkpoint-writer.sqlite');
    const store = openSqliteStore({ path, checkpointPages: 40 });
    try {
      await store.create({ ...record('s1'), messages: [] });
      // ~600 pages written by the writer thread, one commit at a time.
      for (let order = 1; order <= 200; order += 1) {
        await store.save({ sessionId: 's1' as SessionId, lastSeq: 0, seqReserved: 0, lastActiveAt: order, stopped: false, messages: [bulky(`m${order}`, order)] });
      }
      expect(walPages(path)).toBeGreaterThan(10);
      expect(walPages(path)).toBeLessThan(40 + 20);
    } finally {
      await store.close();
    }
    // Nothing lost by the checkpoints.
    const db = new Database(path, { readonly: true });
    expect((db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n).toBe(200);
    db.close();
  });

  it('the main thread’s connection checkpoints only at twice that, so the writer thread does it while it writes', async () => {
    const path = join(directory, 'checkpoint-main.sqlite');
    const store = openSqliteStore({ path, checkpointPages: 40 });
    try {
      // New sessions are written by the main thread: ~600 pages of them.
      for (let n = 1; n <= 200; n += 1) await store.create(record(`s${n}`));
      // Past the writer's 40 pages (the main thread did not checkpoint there), bounded by its own 80.
      expect(walPages(path)).toBeGreaterThan(60);
      expect(walPages(path)).toBeLessThan(80 + 20);
    } finally {
      await store.close();
    }
  });

  it('a reader that holds the log back lets it grow; once the reader is gone the log file is cut back to twice that', async () => {
    const path = join(directory, 'checkpoint-reader.sqlite');
    const store = openSqliteStore({ path, checkpointPages: 40 });
    const reader = new Database(path, { readonly: true });
    try {
      // A long read (another process, a backup) keeps its snapshot: no checkpoint can reset the log meanwhile.
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM sessions').get();
      for (let n = 1; n <= 100; n += 1) await store.create(record(`r${n}`));
      expect(walPages(path)).toBeGreaterThan(200);
      reader.exec('COMMIT');
      for (let n = 101; n <= 150; n += 1) await store.create(record(`r${n}`));
      // Reset and truncated: not left at its high-water mark for the life of the file.
      expect(walPages(path)).toBeLessThan(80 + 20);
    } finally {
      reader.close();
      await store.close();
    }
  });
});
