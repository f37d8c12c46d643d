import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLeases } from '../../src/cluster/leases.ts';
import { connectRedis, openRedis } from '../../src/infra/redisConnection.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { systemClock } from '../../src/infra/systemClock.ts';
import { redisServerAvailable, startRedis } from '../support/redisServer.ts';
import type { OwnRedis } from '../support/redisServer.ts';

const available = redisServerAvailable();
const LEASE_MS = 600;
let redis: OwnRedis;
const opened: { disconnect(): void }[] = [];
const closing: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  if (available) redis = await startRedis();
});
afterAll(async () => {
  for (const leases of closing) await leases.close();
  for (const client of opened) client.disconnect();
  await redis?.stop();
});

async function leasesOf(nodeId: string, extra: { wedgeMs?: number } = {}) {
  const client = openRedis({ url: redis.url, logger: silentLogger, name: `${nodeId}:leases` });
  opened.push(client);
  await connectRedis(client);
  const lost: [string[], string][] = [];
  const leases = createLeases({ redis: client, redisUrl: redis.url, nodeId, leaseMs: LEASE_MS, clock: systemClock, logger: silentLogger, onLost: (ids, reason) => lost.push([ids, reason]), ...extra });
  closing.push(leases);
  await leases.start();
  return { leases, lost };
}

/** Blocks this (the main) thread: no timer, no I/O callback runs meanwhile. */
const busyWait = (ms: number) => {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spinning on purpose
  }
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!available)('the heartbeat thread (own redis-server)', () => {
  it('a main thread blocked for over three leases keeps its leases: the heartbeat goes on in its own thread', async () => {
    const { leases, lost } = await leasesOf('H1');
    const other = await leasesOf('H2');
    const sessionId = 'beat000000000000000001';
    expect(await leases.acquire(sessionId)).toEqual({ acquired: true, token: 1 });
    busyWait(LEASE_MS * 3 + 200);
    // Read at once, before any timer of this thread ran: still valid.
    expect(leases.holderOf(sessionId)).toBe('H1 1');
    expect(leases.healthy).toBe(true);
    const contender = await other.leases.acquire(sessionId);
    expect(contender.acquired).toBe(false);
    await sleep(LEASE_MS);
    expect(lost).toEqual([]);
    expect(leases.holderOf(sessionId)).toBe('H1 1');
  });

  it('a main thread wedged past the bound stops the heartbeat: its leases lapse in Redis and locally, and go to another node', async () => {
    const { leases, lost } = await leasesOf('W1', { wedgeMs: 400 });
    const other = await leasesOf('W2');
    const sessionId = 'beat000000000000000002';
    expect(await leases.acquire(sessionId)).toEqual({ acquired: true, token: 1 });
    busyWait(400 + LEASE_MS + 300);
    // Still wedged (a synchronous child): this node's heartbeat key is gone from Redis.
    const pttl = execFileSync('redis-cli', ['-p', String(redis.port), 'PTTL', 'llm-chat:{n:W1}:alive'], { encoding: 'utf8' }).trim();
    expect(pttl).toBe('-2');
    expect(leases.holderOf(sessionId)).toBeUndefined();
    expect(lost).toEqual([[[sessionId], 'unavailable']]);
    // The lease names W1 still, but W1's heartbeat had lapsed: W2 may take it, with a higher token,
    // unless W1 (ticking again) beat first and released or retook it, each with a higher token too.
    const taken = await other.leases.acquire(sessionId);
    if (taken.acquired) expect(taken.token).toBeGreaterThan(1);
    else expect(taken.holder.token).toBeGreaterThan(1);
  });

  it('a node that lost its leases (Redis paused past the lease) takes them back with a higher token', async () => {
    const { leases, lost } = await leasesOf('R1');
    const sessionId = 'beat000000000000000003';
    expect(await leases.acquire(sessionId)).toEqual({ acquired: true, token: 1 });
    // Every client's commands wait (DEBUG SLEEP is not enabled on the machine's redis-server).
    await redis.client().call('CLIENT', 'PAUSE', String(LEASE_MS * 2.5), 'ALL');
    await sleep(LEASE_MS * 2.5 + 100);
    expect(lost).toEqual([[[sessionId], 'unavailable']]);
    expect(leases.holderOf(sessionId)).toBeUndefined();
    // The lease key still names this node (only its heartbeat expired): taken again, under a new token.
    const client = redis.client();
    expect(await client.get(`llm-chat:{s:${sessionId}}:lease`)).toBe('R1 1');
    expect(await leases.acquire(sessionId)).toEqual({ acquired: true, token: 2 });
    expect(leases.holderOf(sessionId)).toBe('R1 2');
  });

  it('close stops the thread and its connection, and removes the heartbeat', async () => {
    const { leases } = await leasesOf('C1');
    const client = redis.client();
    const connections = () => client.client('LIST').then((list) => String(list).split('\n').filter((line) => line.includes('name=llm-chat:C1:heartbeat')).length);
    expect(await connections()).toBe(1);
    await leases.close();
    await sleep(100);
    expect(await connections()).toBe(0);
    expect(await client.exists('llm-chat:{n:C1}:alive')).toBe(0);
  });
});
