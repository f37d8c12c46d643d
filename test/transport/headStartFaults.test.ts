import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startFakeUpstream } from '../support/fakeUpstream.ts';
import type { FakeUpstream } from '../support/fakeUpstream.ts';
import type { FaultProxy } from '../support/faultProxy.ts';
import { startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { dropSchemas, postgresReachable, storeBehindProxy } from '../support/postgres.ts';

/**
 * The head start (src/actors/headStart.ts) on the real path: a WebSocket
 * client, PostgreSQL behind a TCP fault proxy, a fake OpenAI upstream
 * speaking the real wire format.
 */
const servers: RunningServer[] = [];
const proxies: FaultProxy[] = [];
const upstreams: FakeUpstream[] = [];
const clients: WsClient[] = [];
const schemas: string[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const proxy of proxies) proxy.restore();
  for (const server of servers.splice(0)) await server.close();
  for (const proxy of proxies.splice(0)) await proxy.close();
  for (const upstream of upstreams.splice(0)) await upstream.close();
});
const reachable = await postgresReachable();
afterAll(() => (reachable ? dropSchemas(schemas) : undefined));

async function start() {
  const { proxy, store, schema } = await storeBehindProxy('llm_chat_head_start', 1000);
  proxies.push(proxy);
  schemas.push(schema);
  const upstream = await startFakeUpstream();
  upstreams.push(upstream);
  const server = await startServer({
    store,
    llmProvider: 'openai',
    llmBaseUrl: upstream.baseUrl,
    llmModel: 'fake-model',
    llmRetries: 0,
    messagesPerMinute: 0,
  });
  servers.push(server);
  const { client, sessionId } = await WsClient.session(server.wsUrl);
  clients.push(client);
  return { proxy, upstream, client, sessionId };
}

describe.skipIf(!reachable)('a reply’s head start (PostgreSQL behind a fault proxy, fake OpenAI upstream)', () => {
  it('with the database 200 ms away each way: the model is asked before the commit answers, and nothing of its reply goes out before `accepted`', async () => {
    const { proxy, upstream, client } = await start();
    proxy.delay(200);
    const sentAt = Date.now();
    client.send('hello');
    const [request] = await upstream.waitForRequests(1);
    const accepted = await client.waitFor((frame) => frame.type === 'accepted');
    const acceptedAt = Date.now();
    // The commit is at least a round trip, 200 ms each way; the request arrived well before it was over
    // (after `accepted`, without the head start), with room for a loaded machine…
    expect(acceptedAt - sentAt).toBeGreaterThanOrEqual(400);
    expect(acceptedAt - request!.receivedAt).toBeGreaterThan(200);
    expect(request!.body.messages?.at(-1)).toMatchObject({ role: 'user', content: 'hello' });
    const completed = await client.waitFor((frame) => frame.type === 'completed' && frame['messageId'] === accepted['messageId']);
    expect(completed).toMatchObject({ finishReason: 'stop' });
    // …and what the model sent meanwhile followed the acceptance, in order, once.
    const ofReply = client.frames.filter((frame) => frame['messageId'] === accepted['messageId']);
    expect(ofReply[0]?.type).toBe('accepted');
    expect(ofReply.at(-1)?.type).toBe('completed');
    expect(ofReply.slice(1, -1).every((frame) => frame.type === 'chunk')).toBe(true);
    expect(ofReply.filter((frame) => frame.type === 'chunk').map((frame) => frame['chunk']).join('')).toBe('Hello, world');
    expect(upstream.requests).toHaveLength(1);
  });

  it('with the database hung: the message is refused when the store times out, and the model’s request is aborted then', async () => {
    const { proxy, upstream, client } = await start();
    // A model that answers a piece and then keeps its stream open: only an abort from llm-chat ends it.
    upstream.enqueue({ kind: 'stall', pieces: ['never shown'] });
    proxy.hang();
    client.send('lost');
    const [request] = await upstream.waitForRequests(1);
    const refusal = await client.waitFor((frame) => frame.type === 'error', 5_000);
    expect(refusal).toMatchObject({ code: 'store_unavailable' });
    const refusedAt = Date.now();
    const abortedAt = await request!.aborted;
    expect(Math.abs(abortedAt - refusedAt)).toBeLessThan(500);
    expect(client.frames.some((frame) => frame.type === 'accepted' || frame.type === 'chunk')).toBe(false);
  });
});
