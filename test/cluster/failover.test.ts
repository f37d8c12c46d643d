import { afterEach, describe, expect, it } from 'vitest';
import { clusterServicesAvailable, TestCluster, wsUrlOf } from '../support/cluster.ts';
import { api, SseClient, WsClient } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';

const available = await clusterServicesAvailable();
const LEASE_MS = 1000;
let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const seqsOf = (frames: readonly Json[]) => frames.filter((frame) => frame.type === 'chunk').map((frame) => Number(frame['seq']));

describe.skipIf(!available)('a node dies or stalls', () => {
  it('kill -9 the owner mid-stream: the survivors\' watchers get interrupted within lease + 1 s, a survivor answers next, no seq reused', async () => {
    cluster = await TestCluster.start(3, { leaseMs: LEASE_MS, simChunks: 40, simIntervalMs: 50 });
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const { client: onA, sessionId } = await WsClient.session(wsUrlOf(a));
    onA.send('first');
    await onA.waitFor((frame) => frame.type === 'completed', 10_000);
    const onB = await WsClient.open(wsUrlOf(b, `?sessionId=${sessionId}`));
    await onB.waitFor((frame) => frame.type === 'session');
    const onC = await SseClient.open(`${c.url}/sse/${sessionId}`);
    onA.send('second');
    await onB.waitForCount((frame) => frame.type === 'chunk', 5);
    const replyId = onB.frames.find((frame) => frame.type === 'accepted')!['messageId'];

    await a.stop('SIGKILL');
    const killedAt = Date.now();
    const interruptedOnB = await onB.waitFor((frame) => frame.type === 'interrupted', LEASE_MS + 4000);
    const onBAfter = Date.now() - killedAt;
    await onC.waitFor(() => onC.messages.some((message) => message.event === 'message.interrupted'), LEASE_MS + 4000);
    const onCAfter = Date.now() - killedAt;
    expect(interruptedOnB['messageId']).toBe(replyId);
    expect(onBAfter).toBeLessThan(LEASE_MS + 1000);
    expect(onCAfter).toBeLessThan(LEASE_MS + 1000);

    // The next message is answered by a survivor, with the history intact.
    const seenBefore = Math.max(...seqsOf(onB.frames), ...seqsOf(onC.chunks));
    const sent = await api(c.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'third' });
    expect(sent.status).toBe(202);
    await onB.waitFor((frame) => frame.type === 'completed' && frame['messageId'] === sent.body['messageId'], 10_000);
    const third = onB.frames.filter((frame) => frame.type === 'chunk' && frame['messageId'] === sent.body['messageId']);
    expect(third.length).toBe(40);
    expect(Math.min(...seqsOf(third))).toBeGreaterThan(seenBefore);
    const history = await api(b.url, 'GET', `/api/sessions/${sessionId}`);
    expect((history.body['messages'] as Json[]).map((m) => [m['role'], m['status']])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
      ['user', 'complete'],
      ['assistant', 'interrupted'],
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
    // Every watcher saw seqs strictly rising across the failover.
    for (const seqs of [seqsOf(onB.frames), seqsOf(onC.chunks)]) {
      for (let index = 1; index < seqs.length; index += 1) expect(seqs[index]!).toBeGreaterThan(seqs[index - 1]!);
    }
    onA.close();
    onB.close();
    onC.close();
  });

  it('two nodes race to activate the same session 100 times: one owner each time, replies one after another, seqs rising, nothing duplicated', async () => {
    cluster = await TestCluster.start(2, { leaseMs: LEASE_MS, simChunks: 3, simIntervalMs: 20 });
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    // Sessions that exist only in the store: nobody owns them yet.
    const ids = Array.from({ length: 100 }, (_, index) => `race${String(index).padStart(18, '0')}`);
    const now = Date.now();
    await cluster.query(
      `INSERT INTO sessions (id, created_at, last_active_at, last_seq, stopped) SELECT id, $2, $2, 0, false FROM unnest($1::text[]) AS id`,
      [ids, now],
    );
    const raceOne = async (sessionId: string) => {
      const [fromA, fromB] = await Promise.all([
        api(a.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'from A' }),
        api(b.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'from B' }),
      ]);
      expect([fromA.status, fromB.status]).toEqual([202, 202]);
      const deadline = Date.now() + 10_000;
      let messages: Json[] = [];
      for (;;) {
        messages = (await api(a.url, 'GET', `/api/sessions/${sessionId}`)).body['messages'] as Json[];
        if (messages.length === 4 && messages.every((m) => m['status'] === 'complete')) break;
        if (Date.now() > deadline) throw new Error(`session ${sessionId} did not finish: ${JSON.stringify(messages)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // One conversation took both messages: alternating turns, the second reply started after the first ended.
      expect(messages.map((m) => m['role'])).toEqual(['user', 'assistant', 'user', 'assistant']);
      expect(Number(messages[3]!['createdAt'])).toBeGreaterThanOrEqual(Number(messages[1]!['updatedAt']));
      expect(new Set(messages.map((m) => m['id'])).size).toBe(4);
      const [first, second] = [messages[0]!['content'], messages[2]!['content']];
      expect(messages[1]!['content']).toBe([1, 2, 3].map((n) => `chunk ${n}: ${first}`).join(''));
      expect(messages[3]!['content']).toBe([1, 2, 3].map((n) => `chunk ${n}: ${second}`).join(''));
      // The store follows (its writes are behind the live state): one sequence, 1…6, no seq taken twice.
      for (;;) {
        const stored = await cluster!.query<{ last_seq: string }>('SELECT last_seq FROM sessions WHERE id = $1', [sessionId]);
        if (Number(stored[0]!.last_seq) === 6) break;
        if (Date.now() > deadline) throw new Error(`stored last_seq of ${sessionId} is ${stored[0]!.last_seq}, not 6`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    for (let index = 0; index < ids.length; index += 10) await Promise.all(ids.slice(index, index + 10).map(raceOne));
    // Exactly one holder per session in Redis.
    const redis = cluster.redis.client();
    const holders = await Promise.all(ids.map((id) => redis.get(`llm-chat:{s:${id}}:lease`)));
    expect(holders.every((holder) => holder !== null)).toBe(true);
  }, 120_000);

  it('a paused owner whose lease was taken has its late writes refused by the fencing token', async () => {
    cluster = await TestCluster.start(2, { leaseMs: LEASE_MS, simChunks: 60, simIntervalMs: 50, flushIntervalMs: 50 });
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const { client: onA, sessionId } = await WsClient.session(wsUrlOf(a));
    const onB = await WsClient.open(wsUrlOf(b, `?sessionId=${sessionId}`));
    await onB.waitFor((frame) => frame.type === 'session');
    onA.send('paused');
    await onB.waitForCount((frame) => frame.type === 'chunk', 5);
    const replyId = onB.frames.find((frame) => frame.type === 'accepted')!['messageId'];

    a.child.kill('SIGSTOP');
    // The lease lapses in Redis while A sleeps; B takes the session over on the next command.
    await new Promise((resolve) => setTimeout(resolve, LEASE_MS + 300));
    const sent = await api(b.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'after' });
    expect(sent.status, JSON.stringify(sent.body) + b.log()).toBe(202);
    await onB.waitFor((frame) => frame.type === 'completed' && frame['messageId'] === sent.body['messageId'], 15_000);
    const storedBefore = await cluster.query<{ content: string; status: string }>('SELECT content, status FROM messages WHERE id = $1', [replyId]);
    expect(storedBefore[0]!.status).toBe('interrupted');
    const chunksOfPausedBefore = onB.frames.filter((frame) => frame.type === 'chunk' && frame['messageId'] === replyId).length;

    a.child.kill('SIGCONT');
    // A wakes with its timers overdue: its flushes and its stop of the session all write with the old token.
    await new Promise((resolve) => setTimeout(resolve, 800));
    const storedAfter = await cluster.query<{ content: string; status: string }>('SELECT content, status FROM messages WHERE id = $1', [replyId]);
    expect(storedAfter).toEqual(storedBefore);
    const history = await api(b.url, 'GET', `/api/sessions/${sessionId}`);
    expect((history.body['messages'] as Json[]).map((m) => m['status'])).toEqual(['complete', 'interrupted', 'complete', 'complete']);
    expect(a.log()).toMatch(/store refused a write|leases (could not be renewed|taken by another node)/);
    // Nothing A streamed after waking reached B's watcher (its lease no longer matches in Redis).
    expect(onB.frames.filter((frame) => frame.type === 'chunk' && frame['messageId'] === replyId).length).toBe(chunksOfPausedBefore);
    onA.close();
    onB.close();
  }, 30_000);

  it('kill -9 of an owner with 150 replies in flight: every watcher elsewhere gets interrupted within lease + 1 s, and the survivors share the takeover', async () => {
    cluster = await TestCluster.start(3, { leaseMs: LEASE_MS, simChunks: 200, simIntervalMs: 50 });
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const ids: string[] = [];
    for (let index = 0; index < 150; index += 1) ids.push(String((await api(a.url, 'POST', '/api/sessions')).body['sessionId']));
    const watchers = await Promise.all(ids.map(async (sessionId, index) => {
      const watcher = await WsClient.open(wsUrlOf(index % 2 === 0 ? b : c, `?sessionId=${sessionId}`));
      await watcher.waitFor((frame) => frame.type === 'session');
      return watcher;
    }));
    for (const sessionId of ids) expect((await api(a.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'long' })).status).toBe(202);
    await Promise.all(watchers.map((watcher) => watcher.waitForCount((frame) => frame.type === 'chunk', 2, 10_000)));

    await a.stop('SIGKILL');
    const killedAt = Date.now();
    const after = await Promise.all(watchers.map(async (watcher) => {
      await watcher.waitFor((frame) => frame.type === 'interrupted', LEASE_MS + 5000);
      return Date.now() - killedAt;
    }));
    expect(Math.max(...after)).toBeLessThan(LEASE_MS + 1000);
    // Taken over without anyone's next command, and by both survivors (a few sessions each at least).
    const { Redis } = await import('ioredis');
    const redis = new Redis(cluster.redis.url);
    try {
      const holders = await redis.mget(...ids.map((sessionId) => `llm-chat:{s:${sessionId}}:lease`));
      const nodesOf = new Map<string, number>();
      for (const holder of holders) {
        expect(holder).not.toBeNull();
        const node = holder!.slice(0, holder!.lastIndexOf(' '));
        nodesOf.set(node, (nodesOf.get(node) ?? 0) + 1);
      }
      const [statusB, statusC] = await Promise.all([api(b.url, 'GET', '/api/status'), api(c.url, 'GET', '/api/status')]);
      expect([...nodesOf.keys()].sort()).toEqual([String(statusB.body['node']), String(statusC.body['node'])].sort());
    } finally {
      redis.disconnect();
    }
    for (const watcher of watchers) watcher.close();
  }, 60_000);
});
