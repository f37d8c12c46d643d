import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterServicesAvailable, TestCluster, wsUrlOf } from '../support/cluster.ts';
import { api, SseClient, WsClient } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';

const available = await clusterServicesAvailable();
let cluster: TestCluster;

beforeAll(async () => {
  if (available) cluster = await TestCluster.start(3, { simChunks: 6, simIntervalMs: 40 });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

const chunksOf = (frames: Json[], messageId?: unknown) =>
  frames.filter((frame) => frame.type === 'chunk' && (messageId === undefined || frame['messageId'] === messageId)).map((frame) => [frame['seq'], frame['chunk']]);

describe.skipIf(!available)('three nodes on one Redis and one PostgreSQL', () => {
  it('a WebSocket on A, SSE on B and a message over REST to C all see the same chunks with the same seqs; B resumes from A\'s position', async () => {
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const { client: onA, sessionId } = await WsClient.session(wsUrlOf(a));
    const onB = await SseClient.open(`${b.url}/sse/${sessionId}`);
    expect(onB.status).toBe(200);
    const sent = await api(c.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'across' });
    expect(sent.status).toBe(202);
    const replyId = sent.body['messageId'];

    const completedOnA = await onA.waitFor((frame) => frame.type === 'completed' && frame['messageId'] === replyId);
    expect(completedOnA).toBeTruthy();
    await onB.waitFor(() => onB.messages.some((message) => message.event === 'message.completed'));
    const expected = Array.from({ length: 6 }, (_, index) => [index + 1, `chunk ${index + 1}: across`]);
    expect(chunksOf(onA.frames, replyId)).toEqual(expected);
    expect(chunksOf(onB.chunks, replyId)).toEqual(expected);
    // Each watcher got every chunk once, and the acceptance first.
    expect(onB.messages.map((message) => message.event ?? 'chunk')).toEqual(['message.accepted', ...expected.map(() => 'chunk'), 'message.completed']);

    // The history reads the same from any node.
    const fromA = await api(a.url, 'GET', `/api/sessions/${sessionId}`);
    const fromC = await api(c.url, 'GET', `/api/sessions/${sessionId}`);
    expect(fromC.body['messages']).toEqual(fromA.body['messages']);
    expect((fromA.body['messages'] as Json[]).map((m) => [m['role'], m['status'], m['content']])).toEqual([
      ['user', 'complete', 'across'],
      ['assistant', 'complete', expected.map(([, text]) => text).join('')],
    ]);

    // A client that watched on A resumes on B from its Last-Event-ID: B is not the owner, the chunks come from Redis.
    const resumed = await SseClient.open(`${b.url}/sse/${sessionId}`, { 'last-event-id': '2' });
    const replayed = await resumed.waitFor(() => (resumed.chunks.length >= 4 ? resumed.chunks : undefined));
    expect(chunksOf(replayed)).toEqual(expected.slice(2));
    // The same over a WebSocket on B with ?lastSeq=.
    const resumedWs = await WsClient.open(wsUrlOf(b, `?sessionId=${sessionId}&lastSeq=3`));
    await resumedWs.waitForCount((frame) => frame.type === 'chunk', 3);
    expect(chunksOf(resumedWs.frames)).toEqual(expected.slice(3));
    resumedWs.close();
    resumed.close();
    onB.close();
    onA.close();
  });

  it('cancel on B stops a generation owned by A: no chunk after the cancelled frame, on any node', async () => {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const { client: onA, sessionId } = await WsClient.session(wsUrlOf(a));
    const onB = await WsClient.open(wsUrlOf(b, `?sessionId=${sessionId}`));
    await onB.waitFor((frame) => frame.type === 'session');
    onA.send('long');
    await onA.waitForCount((frame) => frame.type === 'chunk', 2);
    const cancelled = await api(b.url, 'POST', `/api/sessions/${sessionId}/cancel`);
    expect(cancelled.status).toBe(200);
    expect((cancelled.body['cancelled'] as string[]).length).toBe(1);
    await onA.waitFor((frame) => frame.type === 'cancelled');
    await onB.waitFor((frame) => frame.type === 'cancelled');
    // Longer than two chunk intervals: a generation still running would have sent more.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const watcher of [onA, onB]) {
      const cancelAt = watcher.frames.findIndex((frame) => frame.type === 'cancelled');
      expect(watcher.frames.slice(cancelAt).filter((frame) => frame.type === 'chunk')).toEqual([]);
    }
    const history = await api(b.url, 'GET', `/api/sessions/${sessionId}`);
    expect((history.body['messages'] as Json[]).map((m) => m['status'])).toEqual(['complete', 'cancelled']);
    onA.close();
    onB.close();
  });

  it("delete on C closes A's and B's watchers", async () => {
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const { client: onA, sessionId } = await WsClient.session(wsUrlOf(a));
    const onB = await WsClient.open(wsUrlOf(b, `?sessionId=${sessionId}`));
    await onB.waitFor((frame) => frame.type === 'session');
    const sseOnB = await SseClient.open(`${b.url}/sse/${sessionId}`);
    const removed = await api(c.url, 'DELETE', `/api/sessions/${sessionId}`);
    expect(removed.status).toBe(204);
    for (const watcher of [onA, onB]) {
      await watcher.waitFor((frame) => frame.type === 'stopped' && frame['reason'] === 'deleted');
      expect((await watcher.closed()).code).toBe(4410);
    }
    await sseOnB.waitFor(() => sseOnB.ended);
    expect(sseOnB.messages.at(-1)?.event).toBe('session.stopped');
    for (const node of [a, b, c]) expect((await api(node.url, 'GET', `/api/sessions/${sessionId}`)).status).toBe(404);
  });

  it('a delete on C of a session A owns answers 204 only once its rows are gone, and A stops it; again: 404 from every node', async () => {
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    for (let round = 0; round < 10; round += 1) {
      const { client: onA, sessionId } = await WsClient.session(wsUrlOf(a));
      onA.send('some history');
      await onA.waitFor((frame) => frame.type === 'completed');
      // Rows to delete: wait for the history to reach the store.
      for (let tries = 0; ; tries += 1) {
        const [stored] = await cluster.query<{ n: string }>('SELECT count(*) AS n FROM messages WHERE session_id = $1', [sessionId]);
        if (Number(stored?.n) >= 2) break;
        expect(tries).toBeLessThan(100);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // The store delete and the trip to the owner overlap; the 204 still waits for the delete to commit.
      const removed = await api(c.url, 'DELETE', `/api/sessions/${sessionId}`);
      expect(removed.status).toBe(204);
      const [rows] = await cluster.query<{ sessions: string; messages: string }>(
        'SELECT (SELECT count(*) FROM sessions WHERE id = $1) AS sessions, (SELECT count(*) FROM messages WHERE session_id = $1) AS messages',
        [sessionId],
      );
      expect(rows).toEqual({ sessions: '0', messages: '0' });
      expect((await onA.waitFor((frame) => frame.type === 'stopped'))['reason']).toBe('deleted');
      for (const node of [a, b, c]) expect((await api(node.url, 'DELETE', `/api/sessions/${sessionId}`)).status).toBe(404);
    }
  });

  it('a /v1 request with X-Session-Id on B runs on the owner A and streams back', async () => {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const { client: onA, sessionId } = await WsClient.session(wsUrlOf(a));
    const response = await api(b.url, 'POST', '/v1/chat/completions', { model: 'simulated', messages: [{ role: 'user', content: 'v1' }] }, { 'x-session-id': sessionId });
    expect(response.status).toBe(200);
    const choices = response.body['choices'] as { message: { content: string } }[];
    expect(choices[0]!.message.content).toBe(Array.from({ length: 6 }, (_, index) => `chunk ${index + 1}: v1`).join(''));
    await onA.waitFor((frame) => frame.type === 'completed');
    onA.close();
  });
});
