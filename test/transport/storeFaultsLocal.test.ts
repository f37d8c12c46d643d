import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { flaky } from '../support/flakyStore.ts';
import { api, startServer, WsClient } from '../support/harness.ts';
import { ADMIN_TOKEN, createKey } from '../support/keys.ts';
import { ManualClock } from '../support/manualClock.ts';
import type { Json, RunningServer } from '../support/harness.ts';
import { history, Ledger, within } from './storeFaultsSupport.ts';

const servers: RunningServer[] = [];
const directory = mkdtempSync(join(tmpdir(), 'llm-chat-faults-'));
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** A real server on a SQLite file of its own, with one session, and a second connection to that file that holds its write lock (BEGIN IMMEDIATE) until released. */
async function sqliteServerWithLock(file: string) {
  const path = join(directory, file);
  const server = await startServer({ store: openSqliteStore({ path }), simIntervalMs: 0 });
  servers.push(server);
  const sessionId = String((await api(server.url, 'POST', '/api/sessions')).body['sessionId']);
  // Another writer (like a migration or a tool with a transaction open), not holding the lock yet.
  const other = new Database(path);
  const lock = () => void other.exec('BEGIN IMMEDIATE');
  const release = () => {
    other.exec('COMMIT');
    other.close();
  };
  return { server, sessionId, lock, release };
}

describe('SQLite with its file locked by another process', () => {
  it('refuses while the lock is held, acknowledges nothing it did not commit, and serves within 5 s of the lock going', async () => {
    const { server, sessionId, lock, release } = await sqliteServerWithLock('locked.sqlite');
    const ledger = new Ledger();
    const watcher = await WsClient.open(`${server.wsUrl}?sessionId=${sessionId}`);
    expect(await ledger.send(server.url, sessionId, 'before')).toBe(202);
    await watcher.waitFor((frame) => frame.type === 'completed');
    lock();
    try {
      expect(await ledger.send(server.url, sessionId, 'locked out')).toBe(503);
      expect((await api(server.url, 'GET', '/readyz')).status).toBe(503);
      expect(await ledger.send(server.url, sessionId, 'still locked out')).toBe(503);
    } finally {
      release();
    }
    const back = await within(5000, async () => ((await ledger.send(server.url, sessionId, 'after')) === 202 ? true : undefined));
    expect(back.tookMs).toBeLessThan(5000);
    await watcher.waitForCount((frame) => frame.type === 'completed', 2);
    const texts = (await history(server.url, sessionId)).filter((m) => m['role'] === 'user').map((m) => m['content']);
    expect(texts).toEqual(['before', 'after']);
    expect((await api(server.url, 'GET', '/readyz')).status).toBe(200);
    watcher.close();
  });
});

describe('SQLite writes off the event loop', () => {
  it('a commit waiting for another process’s lock does not stall the event loop (it waits in the writer thread)', async () => {
    const { server, sessionId, lock, release } = await sqliteServerWithLock('waiting.sqlite');
    const ledger = new Ledger();
    lock();
    // The loop's lateness while the commit waits out the lock (better-sqlite3 waits
    // synchronously: inline, the loop would stop for the whole 1 s busy timeout).
    let worst = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last - 10);
      last = now;
    }, 10);
    try {
      const started = performance.now();
      expect(await ledger.send(server.url, sessionId, 'waits for the lock')).toBe(503);
      expect(performance.now() - started).toBeGreaterThan(900); // it did wait the busy timeout out
    } finally {
      clearInterval(ticker);
      release();
    }
    expect(worst).toBeLessThan(300);
    const back = await within(5000, async () => ((await ledger.send(server.url, sessionId, 'after')) === 202 ? true : undefined));
    expect(back.tookMs).toBeLessThan(5000);
  });
});

describe('API keys kept in the store’s own database', () => {
  it('a key lookup that finds the database gone tells the sessions’ health at once; the next probe that answers brings both back', async () => {
    const store = flaky(createMemoryStore());
    // The health's probes run on this clock: only the key lookup below can have taken the store down.
    const clock = new ManualClock();
    const server = await startServer({ store, clock, auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, simIntervalMs: 0 });
    servers.push(server);
    const known = await createKey(server.url, 'known');
    expect((await api(server.url, 'GET', '/api/sessions', undefined, known.headers)).status).toBe(200); // now cached
    const fresh = await createKey(server.url, 'fresh');
    store.down = true;
    const refused = await api(server.url, 'GET', '/api/sessions', undefined, fresh.headers);
    expect([refused.status, (refused.body['error'] as Json)['code']]).toEqual([503, 'store_unavailable']);
    store.down = false;
    // The store answers again, but the sessions learnt from the key lookup that it went away: refused without asking it.
    const before = store.saved.length;
    const meanwhile = await api(server.url, 'POST', '/api/sessions', {}, known.headers);
    expect([meanwhile.status, (meanwhile.body['error'] as Json)['code']]).toEqual([503, 'store_unavailable']);
    expect(store.saved.length).toBe(before);
    await clock.advance(300); // one recovery probe
    expect((await api(server.url, 'POST', '/api/sessions', {}, known.headers)).status).toBe(201);
    expect((await api(server.url, 'GET', '/api/sessions', undefined, fresh.headers)).status).toBe(200);
  });
});
