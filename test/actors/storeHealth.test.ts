import { once } from 'node:events';
import { connect } from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { createStoreHealth, reportingTo } from '../../src/actors/storeHealth.ts';
import type { StoreHealth } from '../../src/actors/storeHealth.ts';
import type { StoredKey } from '../../src/domain/apiKeys.ts';
import type { ConversationRecord } from '../../src/domain/conversationRecord.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { systemClock } from '../../src/infra/systemClock.ts';
import { flaky } from '../support/flakyStore.ts';
import { ManualClock } from '../support/manualClock.ts';

const T0 = 1_700_000_000_000;
const sid = (n: number) => `health${String(n).padStart(16, '0')}`;
const record = (n: number, owner?: string): ConversationRecord => ({
  sessionId: sid(n),
  createdAt: T0 + n,
  lastActiveAt: T0 + n,
  lastSeq: 0,
  seqReserved: 0,
  stopped: false,
  messages: [],
  ...(owner ? { owner } : {}),
});
const key = (n: number): StoredKey => ({ id: `key_${n}`, name: `key ${n}`, hash: String(n).padStart(64, 'b'), limits: {}, createdAt: T0, lastUsedAt: null, revokedAt: null });

let health: StoreHealth | undefined;
afterEach(() => health?.close());

describe('reportingTo: the store as the sessions see it, every answer reported to its health', () => {
  it('forwards what identity and access added: idle sessions, the owner filter and the keys in the same database', async () => {
    const inner = flaky(createMemoryStore());
    health = createStoreHealth({ ping: () => inner.ping(), clock: new ManualClock(T0), logger: silentLogger });
    const store = reportingTo(health, inner);
    await store.create(record(1, 'key_a'));
    await store.create(record(2, 'key_b'));
    await store.create(record(3));
    expect((await store.listSessions({ limit: 10, owner: 'key_a' })).sessions.map((session) => session.sessionId)).toEqual([sid(1)]);
    expect((await store.listSessions({ limit: 10 })).sessions).toHaveLength(3);
    expect(await store.idleSessions(T0 + 3, 10)).toEqual([sid(1), sid(2)]);
    expect(store.keys).toBeDefined();
    await store.keys!.create(key(1));
    expect((await store.keys!.findByHash(key(1).hash))?.id).toBe('key_1');
    expect(await store.keys!.hasActive()).toBe(true);
  });

  it('a key lookup that finds the database gone takes the store down at once; a committed key write brings it back', async () => {
    const inner = flaky(createMemoryStore());
    // Probes far apart: what changes the health here is the keys' own answers.
    health = createStoreHealth({ ping: () => inner.ping(), clock: new ManualClock(T0), logger: silentLogger, intervalMs: 3_600_000, recoveryIntervalMs: 3_600_000 });
    const store = reportingTo(health, inner);
    await store.keys!.create(key(1));
    inner.down = true;
    await expect(store.keys!.findByHash(key(1).hash)).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(health.healthy).toBe(false);
    // Sessions go by the same health: work that needs the store is refused without asking it.
    expect(() => health!.assertHealthy()).toThrow(expect.objectContaining({ code: 'store_unavailable' }));
    await expect(store.idleSessions(T0, 10)).rejects.toMatchObject({ code: 'store_unavailable' });
    inner.down = false;
    // A read does not prove writes can happen; a committed write does.
    await store.keys!.findByHash(key(1).hash);
    expect(health.healthy).toBe(false);
    await store.keys!.touch('key_1', T0 + 1);
    expect(health.healthy).toBe(true);
  });

  it('a key the store does not have is an answer, not an outage', async () => {
    const inner = flaky(createMemoryStore());
    health = createStoreHealth({ ping: () => inner.ping(), clock: new ManualClock(T0), logger: silentLogger });
    const store = reportingTo(health, inner);
    expect(await store.keys!.findByHash('c'.repeat(64))).toBeUndefined();
    expect(await store.keys!.update('key_none', { name: 'x' })).toBeUndefined();
    expect(health.healthy).toBe(true);
  });
});

/** A store stand-in in another thread: answers each byte it gets with one (or never, when `silent`). */
async function remoteAnswerer(silent: boolean): Promise<{ ping: () => Promise<void>; close: () => Promise<void> }> {
  const thread = new Worker(
    `const net = require('node:net'); const { parentPort, workerData } = require('node:worker_threads');
     const server = net.createServer((socket) => socket.on('data', (data) => { if (!workerData.silent) socket.write(data); }));
     server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));`,
    { eval: true, workerData: { silent } },
  );
  const port = await new Promise<number>((resolve) => thread.once('message', resolve));
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return {
    ping: () => {
      socket.write('p');
      return once(socket, 'data').then(() => undefined);
    },
    close: async () => {
      socket.destroy();
      await thread.terminate();
    },
  };
}

const blockFor = (ms: number) => {
  const until = Date.now() + ms;
  while (Date.now() < until);
};

describe('createStoreHealth: a probe times the store, not this thread\'s event loop', () => {
  it('an answer that came while the loop was blocked past the deadline is an answer, not an outage', async () => {
    const answerer = await remoteAnswerer(false);
    try {
      health = createStoreHealth({ ping: answerer.ping, clock: systemClock, logger: silentLogger, timeoutMs: 200, intervalMs: 3_600_000 });
      const probed = health.check();
      // Busy past the deadline: the answer waits in the socket while the deadline comes due.
      blockFor(600);
      expect(await probed).toBe(true);
      expect(health.healthy).toBe(true);
    } finally {
      await answerer.close();
    }
  });

  it('a store that never answers is still found out on a loop keeping time', async () => {
    const answerer = await remoteAnswerer(true);
    try {
      health = createStoreHealth({ ping: answerer.ping, clock: systemClock, logger: silentLogger, timeoutMs: 200, intervalMs: 3_600_000, recoveryIntervalMs: 3_600_000 });
      const started = Date.now();
      const probed = health.check();
      blockFor(600);
      expect(await probed).toBe(false);
      expect(health.healthy).toBe(false);
      // The late deadline looked again once the loop kept time, and found no answer.
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await answerer.close();
    }
  });
});

describe('createStoreHealth: a probe waiting behind busy connections meets a busy store, not a gone one', () => {
  it('while writes commit, a slow probe does not take the store down; a timeout after the last commit, it does', async () => {
    const clock = new ManualClock(T0);
    let answerProbe: (() => void) | undefined;
    health = createStoreHealth({
      ping: () => new Promise<void>((resolve) => (answerProbe = resolve)),
      clock,
      logger: silentLogger,
      timeoutMs: 1000,
      intervalMs: 3_600_000,
      recoveryIntervalMs: 3_600_000,
    });
    const probed = health.check();
    await clock.advance(500);
    health.answered();
    // Past the probe's deadline, but a write committed 600 ms ago: busy, not gone.
    await clock.advance(600);
    expect(health.healthy).toBe(true);
    await clock.advance(300);
    health.answered();
    await clock.advance(100);
    expect(health.healthy).toBe(true);
    answerProbe!();
    expect(await probed).toBe(true);

    // The next probe waits as long, and the last commit is older than a timeout: down.
    const second = health.check();
    await clock.advance(1000);
    expect(await second).toBe(false);
    expect(health.healthy).toBe(false);
  });
});
