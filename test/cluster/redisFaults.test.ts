import { afterAll, describe, expect, it } from 'vitest';
import { clusterServicesAvailable, TestCluster, wsUrlOf } from '../support/cluster.ts';
import { startFaultProxy } from '../support/faultProxy.ts';
import type { FaultProxy } from '../support/faultProxy.ts';
import { api, WsClient } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';

const available = await clusterServicesAvailable();
const LEASE_MS = 1000;
let cluster: TestCluster | undefined;
let proxy: FaultProxy | undefined;
// Every cluster a test starts is stopped, not only the last one assigned.
const clusters: TestCluster[] = [];
afterAll(async () => {
  for (const started of clusters) await started.stop().catch(() => {});
  await proxy?.close();
});
const startCluster = async (...args: Parameters<typeof TestCluster.start>) => {
  const started = await TestCluster.start(...args);
  clusters.push(started);
  return started;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe().catch(() => undefined);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.skipIf(!available)('Redis killed and restarted mid-stream', () => {
  it('the node survives, tells watchers it cannot keep clearly, and serves again within 5 s of Redis coming back', async () => {
    cluster = await startCluster(2, { leaseMs: LEASE_MS, simChunks: 60, simIntervalMs: 50 });
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const { client: onA, sessionId } = await WsClient.session(wsUrlOf(a));
    const onB = await WsClient.open(wsUrlOf(b, `?sessionId=${sessionId}`));
    await onB.waitFor((frame) => frame.type === 'session');
    onA.send('through the outage');
    await onA.waitForCount((frame) => frame.type === 'chunk', 3);

    await cluster.redis.kill();
    const killedAt = Date.now();
    const chunksAtKill = onA.frames.filter((frame) => frame.type === 'chunk').length;

    // A watcher on another node cannot be kept: it is told so and closed with 1013 (reconnect and resume).
    const stoppedOnB = await onB.waitFor((frame) => frame.type === 'stopped', 3000);
    expect(stoppedOnB['reason']).toBe('unavailable');
    expect((await onB.closed()).code).toBe(1013);

    // The owner keeps serving its own watchers while its lease can still be trusted (lease − margin)...
    await sleep(300);
    expect(onA.frames.filter((frame) => frame.type === 'chunk').length).toBeGreaterThan(chunksAtKill);
    // ...then stops the session before anyone could take it over: the reply ends interrupted, the socket closes 1013.
    const interrupted = await onA.waitFor((frame) => frame.type === 'interrupted', 3000);
    expect(Date.now() - killedAt).toBeLessThan(LEASE_MS);
    expect(interrupted['messageId']).toBe(onA.frames.find((frame) => frame.type === 'accepted')!['messageId']);
    expect((await onA.waitFor((frame) => frame.type === 'stopped'))['reason']).toBe('unavailable');
    expect((await onA.closed()).code).toBe(1013);

    // Meanwhile: no crash, and a clear answer.
    expect(a.child.exitCode).toBeNull();
    expect(b.child.exitCode).toBeNull();
    const refused = await api(a.url, 'POST', '/api/sessions');
    expect(refused.status).toBe(503);
    expect((refused.body['error'] as Json)['code']).toBe('unavailable');
    expect(refused.headers.get('retry-after')).not.toBeNull();
    const unready = await api(b.url, 'GET', '/readyz');
    expect(unready.status).toBe(503);
    expect(unready.body['reason']).toBe('redis_unreachable');
    // What was stored stays readable only through its owner; nobody can own it now: the answer says so.
    const blocked = await api(b.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'now?' });
    expect(blocked.status).toBe(503);
    // A WebSocket that cannot be opened now is told to try again later.
    const refusedSocket = await WsClient.open(wsUrlOf(b));
    expect((await refusedSocket.waitFor((frame) => frame.type === 'error'))['code']).toBe('unavailable');
    expect((await refusedSocket.closed()).code).toBe(1013);

    await cluster.redis.restart();
    const backAt = Date.now();
    // Served again without a restart: a new session on each node, and the old one on the other node.
    const created = await until(async () => {
      const response = await api(a.url, 'POST', '/api/sessions');
      return response.status === 201 ? response : undefined;
    }, 5000, 'a new session on A');
    expect(Date.now() - backAt).toBeLessThan(5000);
    const newId = String(created.body['sessionId']);
    // B reconnects on its own, up to a second after A: until then it answers `unavailable` and closes.
    const watcher = await until(async () => {
      const client = await WsClient.open(wsUrlOf(b, `?sessionId=${newId}`));
      const first = await client.waitFor(() => true);
      if (first.type === 'session') return client;
      client.close();
      return undefined;
    }, 5000, 'a watcher on B');
    expect(Date.now() - backAt).toBeLessThan(5000);
    expect((await api(a.url, 'POST', `/api/sessions/${newId}/messages`, { text: 'after' })).status).toBe(202);
    await watcher.waitFor((frame) => frame.type === 'chunk', 5000);

    // Each node reconnects on its own (at most a second apart): B answers too within the 5 s.
    await until(async () => {
      const response = await api(b.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'again' });
      return response.status === 202 ? response : undefined;
    }, 5000 - (Date.now() - backAt), 'the old session taking a message on B');
    const history = await until(async () => {
      const response = await api(a.url, 'GET', `/api/sessions/${sessionId}`);
      const messages = response.body['messages'] as Json[] | undefined;
      return messages?.length === 4 && messages[3]!['status'] === 'complete' ? messages : undefined;
    }, 10_000, 'the old session answering again');
    expect(history.map((m) => m['status'])).toEqual(['complete', 'interrupted', 'complete', 'complete']);
    expect(Date.now() - backAt).toBeLessThan(5000 + 60 * 50 + 2000);
    expect((await api(b.url, 'GET', '/readyz')).status).toBe(200);
    watcher.close();
  }, 60_000);
});

describe.skipIf(!available)('Redis holds its replies (a fault proxy)', () => {
  it('a WebSocket handshake is still answered, `unavailable` within the bound, and served again once Redis answers', async () => {
    cluster = await startCluster(1, { leaseMs: LEASE_MS });
    proxy = await startFaultProxy({ host: '127.0.0.1', port: cluster.redis.port });
    // Per-IP connection counts in Redis: the upgrade itself asks Redis.
    const node = await cluster.startNode(['--conn-rate-per-ip', '50'], { REDIS_URL: proxy.through(cluster.redis.url) });
    const { client: before } = await WsClient.session(wsUrlOf(node));
    before.close();

    proxy.hang();
    const heldAt = Date.now();
    const clients = await Promise.all(Array.from({ length: 5 }, () => WsClient.open(wsUrlOf(node))));
    for (const client of clients) {
      const first = await client.waitFor((frame) => frame.type === 'error' || frame.type === 'session', 8000);
      expect(first.type).toBe('error');
      expect(first['code']).toBe('unavailable');
      expect((await client.closed()).code).toBe(1013);
    }
    expect(Date.now() - heldAt).toBeLessThan(5000);
    expect(node.child.exitCode).toBeNull();

    proxy.restore();
    const backAt = Date.now();
    await until(async () => {
      const client = await WsClient.open(wsUrlOf(node));
      const first = await client.waitFor((frame) => frame.type === 'error' || frame.type === 'session', 3000);
      client.close();
      return first.type === 'session' ? first : undefined;
    }, 8000, 'a session once Redis answers');
    expect(Date.now() - backAt).toBeLessThan(5000);
  }, 40_000);
});

describe.skipIf(!available)('Redis paused past the lease (CLIENT PAUSE)', () => {
  it('the owner stops its session, then takes it back under a higher fencing token and answers again, history intact', async () => {
    const paused = await startCluster(1, { leaseMs: LEASE_MS });
    const [a] = paused.nodes as [typeof paused.nodes[0]];
    const created = await api(a.url, 'POST', '/api/sessions');
    expect(created.status).toBe(201);
    const sessionId = String(created.body['sessionId']);
    expect((await api(a.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'before' })).status).toBe(202);
    const completed = async (count: number) => {
      const response = await api(a.url, 'GET', `/api/sessions/${sessionId}`);
      const messages = response.body['messages'] as Json[] | undefined;
      return messages?.length === count && messages[count - 1]!['status'] === 'complete' ? messages : undefined;
    };
    await until(() => completed(2), 10_000, 'the first reply');
    const redisClient = paused.redis.client();
    const leaseKey = `llm-chat:{s:${sessionId}}:lease`;
    const before = String(await redisClient.get(leaseKey));
    expect(before).toMatch(/ \d+$/);

    // Every command waits for 2.5 leases: the heartbeat cannot renew, the node gives the session up.
    await paused.redis.client().call('CLIENT', 'PAUSE', String(LEASE_MS * 2.5), 'ALL');
    await sleep(LEASE_MS * 2.5 + 200);

    // The lease may still name this node; the next command is served here again, under a new token.
    const sent = await until(async () => {
      const response = await api(a.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'after' });
      return response.status === 202 ? response : undefined;
    }, LEASE_MS + 2000, 'the session taking a message again');
    expect(sent.status).toBe(202);
    const history = await until(() => completed(4), 10_000, 'the second reply');
    expect(history.map((m) => m['status'])).toEqual(['complete', 'complete', 'complete', 'complete']);
    const after = String(await redisClient.get(leaseKey));
    const tokenOf = (holder: string) => Number(holder.slice(holder.lastIndexOf(' ') + 1));
    expect(tokenOf(after)).toBeGreaterThan(tokenOf(before));
  }, 60_000);
});
