import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatEvent } from '../../src/domain/events.ts';
import { createLeases } from '../../src/cluster/leases.ts';
import { createRedisBus } from '../../src/infra/redisBus.ts';
import { connectRedis, openRedis } from '../../src/infra/redisConnection.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { systemClock } from '../../src/infra/systemClock.ts';
import { redisServerAvailable, startRedis } from '../support/redisServer.ts';
import type { OwnRedis } from '../support/redisServer.ts';

const available = redisServerAvailable();
let redis: OwnRedis;
const opened: { disconnect(): void }[] = [];
beforeAll(async () => {
  if (available) redis = await startRedis();
});
afterAll(async () => {
  for (const client of opened) client.disconnect();
  await redis?.stop();
});

async function connection(name: string) {
  const client = openRedis({ url: redis.url, logger: silentLogger, name });
  opened.push(client);
  await connectRedis(client);
  return client;
}

/** A node's bus with a lease table the test controls. */
async function node(nodeId: string, holders: Map<string, string>, options: { replayLogSize?: number; replayLogBytes?: number; logTtlMs?: number; onCommand?: (kind: 'publish' | 'subscribe' | 'replay') => void } = {}) {
  return createRedisBus({
    commands: await connection(`${nodeId}:commands`),
    subscriber: await connection(`${nodeId}:events`),
    nodeId,
    logger: silentLogger,
    holderOf: (sessionId) => holders.get(sessionId),
    ...options,
  });
}

const chunk = (sessionId: string, seq: number): ChatEvent => ({ type: 'chunk', sessionId, messageId: 'm1', seq, chunk: `c${seq}`, is_last: false });
const until = async (probe: () => boolean, what: string) => {
  const deadline = Date.now() + 3000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

describe.skipIf(!available)('the Redis bus (own redis-server)', () => {
  it('delivers an owner\'s events to watchers on another node once, and to its own watchers once, without an echo', async () => {
    const redisClient = redis.client();
    const sessionId = 'bus0000000000000000001';
    await redisClient.set(`llm-chat:{s:${sessionId}}:lease`, 'A 1');
    const busA = await node('A', new Map([[sessionId, 'A 1']]));
    const busB = await node('B', new Map());
    const onA: ChatEvent[] = [];
    const onB: ChatEvent[] = [];
    const nodeWideB: ChatEvent[] = [];
    const nodeWideA: ChatEvent[] = [];
    busA.subscribe(sessionId, (event) => onA.push(event));
    busA.subscribeAll((event) => nodeWideA.push(event));
    busB.subscribeAll((event) => nodeWideB.push(event));
    const stopB = busB.subscribe(sessionId, (event) => onB.push(event));
    await busB.ready!(sessionId);
    for (let seq = 1; seq <= 5; seq += 1) busA.publish(chunk(sessionId, seq));
    await until(() => onB.length === 5, 'five chunks on B');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(onB.map((event) => (event.type === 'chunk' ? event.seq : 0))).toEqual([1, 2, 3, 4, 5]);
    expect(onA.length).toBe(5);
    // Node-wide listeners count each event once, where it was produced.
    expect(nodeWideA.length).toBe(5);
    expect(nodeWideB.length).toBe(0);

    // Resume on B reads the stream by seq (B never held these chunks itself).
    expect((await busB.replay(sessionId, 2)).map((event) => event.seq)).toEqual([3, 4, 5]);
    expect(await busB.replay(sessionId, 5)).toEqual([]);
    const stream = await redisClient.xrange(`llm-chat:{s:${sessionId}}:log`, '-', '+');
    expect(stream.map(([id]) => id)).toEqual(['1-0', '2-0', '3-0', '4-0', '5-0']);
    expect(await redisClient.pttl(`llm-chat:{s:${sessionId}}:log`)).toBeGreaterThan(0);

    // The last watcher gone, B unsubscribes.
    stopB();
    await until(() => true, '');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await redisClient.call('PUBSUB', 'SHARDNUMSUB', `llm-chat:{s:${sessionId}}:events`)).toEqual([`llm-chat:{s:${sessionId}}:events`, 0]);
  });

  it("keeps a new session's session.started on its own node (no other can know the id yet); a resumed session's goes out", async () => {
    const redisClient = redis.client();
    const sessionId = 'bus0000000000000000009';
    await redisClient.set(`llm-chat:{s:${sessionId}}:lease`, 'A 1');
    const published: string[] = [];
    const owner = await node('A', new Map([[sessionId, 'A 1']]), { onCommand: (kind) => published.push(kind) });
    const watcher = await node('B', new Map());
    const onOwner: ChatEvent[] = [];
    const onWatcher: ChatEvent[] = [];
    owner.subscribe(sessionId, (event) => onOwner.push(event));
    watcher.subscribe(sessionId, (event) => onWatcher.push(event));
    await watcher.ready!(sessionId);
    owner.publish({ type: 'session.started', sessionId, resumed: false });
    owner.publish({ type: 'session.started', sessionId, resumed: true });
    await until(() => onWatcher.length === 1, 'the resumed session.started on B');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(onWatcher).toEqual([{ type: 'session.started', sessionId, resumed: true }]);
    expect(onOwner.map((event) => event.type === 'session.started' && event.resumed)).toEqual([false, true]);
    expect(published).toEqual(['publish']);
  });

  it('refuses events from a node whose lease is no longer the one in Redis', async () => {
    const redisClient = redis.client();
    const sessionId = 'bus0000000000000000002';
    await redisClient.set(`llm-chat:{s:${sessionId}}:lease`, 'C 3');
    const stale = await node('A', new Map([[sessionId, 'A 2']]));
    const watcher = await node('B', new Map());
    const seen: ChatEvent[] = [];
    watcher.subscribe(sessionId, (event) => seen.push(event));
    await watcher.ready!(sessionId);
    stale.publish(chunk(sessionId, 7));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toEqual([]);
    expect(await redisClient.exists(`llm-chat:{s:${sessionId}}:log`)).toBe(0);
  });

  it('publishes a chunk with one Redis command, into a stream capped near --replay-log-size that expires', async () => {
    const redisClient = redis.client();
    const sessionId = 'bus0000000000000000004';
    await redisClient.set(`llm-chat:{s:${sessionId}}:lease`, 'A 1');
    const owner = await node('A', new Map([[sessionId, 'A 1']]), { replayLogSize: 10, logTtlMs: 60_000 });
    const watcher = await node('B', new Map());
    const lastId = async () => (await redisClient.xrevrange(`llm-chat:{s:${sessionId}}:log`, '+', '-', 'COUNT', 1))[0]?.[0];
    const untilLast = async (id: string) => {
      for (let tries = 0; (await lastId()) !== id; tries += 1) {
        expect(tries).toBeLessThan(300);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    owner.publish(chunk(sessionId, 1)); // loads the script, outside the count
    await untilLast('1-0');
    // Every command Redis runs, with who sent it ("lua" for a script's inner calls).
    const monitor = await redisClient.monitor();
    const sent: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') sent.push(String(args[0]).toLowerCase());
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (let seq = 2; seq <= 300; seq += 1) owner.publish(chunk(sessionId, seq));
    await untilLast('300-0');
    // MONITOR's feed trails what Redis ran (28 lines behind once under the full suite): read it to the
    // 299th script call, then a little longer for any command that came with them.
    const calls = () => sent.filter((command) => command !== 'xrevrange').length;
    for (let tries = 0; calls() < 299 && tries < 500; tries += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 200));
    monitor.disconnect();
    // One script call a chunk, and no other command (leaving out this test's own polling).
    expect(sent.filter((command) => command !== 'xrevrange')).toEqual(Array.from({ length: 299 }, () => 'evalsha'));
    // MAXLEN ~ trims whole stream nodes (100 entries by default): far fewer than 300 kept, never fewer than 10.
    const length = await redisClient.xlen(`llm-chat:{s:${sessionId}}:log`);
    expect(length).toBeGreaterThanOrEqual(10);
    expect(length).toBeLessThanOrEqual(10 + 100);
    const ttl = await redisClient.pttl(`llm-chat:{s:${sessionId}}:log`);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect((await watcher.replay(sessionId, 0)).at(-1)?.seq).toBe(300);
  });

  it("keeps this node's copy of a session's chunks within --replay-log-bytes (2 bytes a UTF-16 unit), the newest one always", async () => {
    const sessionId = 'bus0000000000000000003';
    // No lease held here, so nothing goes to Redis: what replay answers is this node's own copy.
    const bus = await node('A', new Map(), { replayLogBytes: 100 });
    const sized = (seq: number, chars: number): ChatEvent => ({ type: 'chunk', sessionId, messageId: 'm1', seq, chunk: 'x'.repeat(chars), is_last: false });
    for (let seq = 1; seq <= 10; seq += 1) bus.publish(sized(seq, 20)); // 40 bytes each
    expect((await bus.replay(sessionId, 0)).map((event) => event.seq)).toEqual([9, 10]);
    bus.publish(sized(11, 500)); // larger than the cap on its own
    expect((await bus.replay(sessionId, 0)).map((event) => event.seq)).toEqual([11]);
  });
});

describe.skipIf(!available)('leases with fencing tokens (own redis-server)', () => {
  it('one holder at a time, tokens rising with each new holder, renewal keeps it, release frees it', async () => {
    const lost: string[][] = [];
    const make = async (nodeId: string) =>
      createLeases({ redisUrl: redis.url, redis: await connection(`${nodeId}:leases`), nodeId, leaseMs: 600, clock: systemClock, logger: silentLogger, onLost: (ids) => lost.push(ids) });
    const [a, b] = [await make('A'), await make('B')];
    await a.start();
    await b.start();
    const sessionId = 'lease000000000000000001';
    const first = await a.acquire(sessionId);
    expect(first).toEqual({ acquired: true, token: 1 });
    // The keys as the README's table has them: the lease names `node token` and lives by the node's heartbeat
    // (PX the lease), the fence keeps the token 24 h, the node's set lists its lease keys.
    const client = redis.client();
    const leaseKey = `llm-chat:{s:${sessionId}}:lease`;
    expect(await client.get(leaseKey)).toBe('A 1');
    expect(await client.pttl(leaseKey)).toBe(-1);
    expect(await client.get(`llm-chat:{s:${sessionId}}:fence`)).toBe('1');
    expect(await client.pttl(`llm-chat:{s:${sessionId}}:fence`)).toBeGreaterThan(86_400_000 - 60_000);
    const alive = await client.pttl('llm-chat:{n:A}:alive');
    expect(alive).toBeGreaterThan(0);
    expect(alive).toBeLessThanOrEqual(600);
    expect(await client.smembers('llm-chat:{n:A}:held')).toEqual([leaseKey]);
    expect(await client.sismember('llm-chat:nodes', 'A')).toBe(1);
    const contender = await b.acquire(sessionId);
    expect(contender.acquired).toBe(false);
    if (!contender.acquired) expect(contender.holder).toEqual({ node: 'A', token: 1 });
    // Renewed past several lease lengths.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(a.holderOf(sessionId)).toBe('A 1');
    expect((await b.acquire(sessionId)).acquired).toBe(false);
    await a.release(sessionId);
    expect(a.holderOf(sessionId)).toBeUndefined();
    expect(await b.acquire(sessionId)).toEqual({ acquired: true, token: 2 });
    // A floor from the store (Redis lost its counter) is respected.
    await b.release(sessionId);
    expect(await a.acquire(sessionId, 10)).toEqual({ acquired: true, token: 10 });
    expect(lost).toEqual([]);
    await a.close();
    await b.close();
  });

  it('a node whose heartbeat lapsed finds which of its leases were taken, and keeps the others', async () => {
    const lost: [string[], string][] = [];
    const leases = createLeases({ redisUrl: redis.url, redis: await connection('D:leases'), nodeId: 'D', leaseMs: 600, clock: systemClock, logger: silentLogger, onLost: (ids, reason) => lost.push([ids, reason]) });
    await leases.start();
    const [taken, kept] = ['lease000000000000000002', 'lease000000000000000003'];
    await leases.acquire(taken);
    await leases.acquire(kept);
    // The node was presumed dead (its heartbeat gone) and another node took one of its sessions.
    const client = redis.client();
    await client.del('llm-chat:{n:D}:alive');
    await client.set(`llm-chat:{s:${taken}}:lease`, 'E 7');
    await until(() => lost.length > 0, 'the lease reported lost');
    expect(lost).toEqual([[[taken], 'moved']]);
    expect(leases.holderOf(taken)).toBeUndefined();
    expect(leases.holderOf(kept)).toBe('D 1');
    expect(leases.tokenOf(taken)).toBe(1); // its writes still carry the old token (and are refused by the store)
    await leases.close();
  });

  it('a lease whose node stopped beating is free for others; a node takes leases only under a live heartbeat', async () => {
    const client = redis.client();
    const lost: string[][] = [];
    const live = createLeases({ redisUrl: redis.url, redis: await connection('F:leases'), nodeId: 'F', leaseMs: 600, clock: systemClock, logger: silentLogger, onLost: (ids) => lost.push(ids) });
    await live.start();
    const sessionId = 'lease000000000000000004';
    // A dead node's lease: its key names it, its heartbeat is gone.
    await client.set(`llm-chat:{s:${sessionId}}:lease`, 'gone 4');
    await client.set(`llm-chat:{s:${sessionId}}:fence`, '4');
    expect(await live.holder(sessionId)).toBeUndefined();
    expect(await live.acquire(sessionId)).toEqual({ acquired: true, token: 5 });
    expect((await live.holder(sessionId))?.holder).toEqual({ node: 'F', token: 5 });
    // A node not beating yet beats first: its lease is only ever held under a live heartbeat.
    const late = createLeases({ redisUrl: redis.url, redis: await connection('G:leases'), nodeId: 'G', leaseMs: 600, clock: systemClock, logger: silentLogger, onLost: () => {} });
    expect((await late.acquire('lease000000000000000005')).acquired).toBe(true);
    expect(await client.pttl('llm-chat:{n:G}:alive')).toBeGreaterThan(0);
    await live.close();
  });
});
