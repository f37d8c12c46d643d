import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterServicesAvailable, TestCluster, wsUrlOf } from '../support/cluster.ts';
import { SseClient, WsClient } from '../support/harness.ts';

const available = await clusterServicesAvailable();
const CHUNKS = 400;
let cluster: TestCluster;
beforeAll(async () => {
  // The Redis stream keeps 5 to about 105 chunks (MAXLEN ~ trims whole stream nodes, 100 entries by default).
  if (available) cluster = await TestCluster.start(2, { simChunks: CHUNKS, simIntervalMs: 10, flushIntervalMs: 50, args: ['--replay-log-size', '5'] });
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

describe.skipIf(!available)('resume on another node, older than what Redis keeps', () => {
  it('the store fills the gap: every chunk once, in order, on B for a reply streaming on A', async () => {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const { client: onA, sessionId } = await WsClient.session(wsUrlOf(a));
    onA.send('long');
    await onA.waitForCount((frame) => frame.type === 'chunk', 250, 15_000);
    // The gap exists: Redis no longer holds the first chunks.
    const [first] = (await cluster.redis.client().xrange(`llm-chat:{s:${sessionId}}:log`, '-', '+', 'COUNT', 1))[0] ?? [];
    expect(Number(String(first).split('-')[0])).toBeGreaterThan(1);

    const onB = await SseClient.open(`${b.url}/sse/${sessionId}`, { 'last-event-id': '0' });
    await onB.waitFor(() => onB.messages.some((message) => message.event === 'message.completed'), 15_000);
    const chunks = onB.chunks.filter((chunk) => chunk['seq'] !== undefined);
    expect(chunks.map((chunk) => chunk['seq'])).toEqual(Array.from({ length: CHUNKS }, (_, index) => index + 1));
    expect(chunks.map((chunk) => chunk['chunk']).join('')).toBe(Array.from({ length: CHUNKS }, (_, index) => `chunk ${index + 1}: long`).join(''));
    onB.close();
    onA.close();
  }, 40_000);
});
