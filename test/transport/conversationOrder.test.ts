import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { startFakeUpstream } from '../support/fakeUpstream.ts';
import type { FakeUpstream } from '../support/fakeUpstream.ts';
import { api, startServer, WsClient } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';

const directory = mkdtempSync(join(tmpdir(), 'llm-chat-order-'));
let upstream: FakeUpstream | undefined;
const servers: RunningServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
  await upstream?.close();
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function start(path: string, fake: FakeUpstream) {
  const server = await startServer({
    store: openSqliteStore({ path }),
    llmProvider: 'openai',
    llmBaseUrl: fake.baseUrl,
    llmModel: 'fake-model',
    llmApiKey: 'sk-test',
    llmRetries: 0,
  });
  servers.push(server);
  return server;
}

const turns = (body: Json) => (body['messages'] as { role: string; content: string }[]).map((message) => `${message.role}:${message.content}`);

describe('the model sees the conversation in order, and history is stored in that order', () => {
  it('with messages queued, each request carries every earlier complete turn (q1 a1 q2 a2 q3), and paging follows', async () => {
    upstream = await startFakeUpstream();
    // The first reply is slow, so q2 and q3 wait in the queue while it streams.
    upstream.enqueue(
      { kind: 'stream', pieces: ['a', '1'], intervalMs: 150 },
      { kind: 'stream', pieces: ['a', '2'] },
      { kind: 'stream', pieces: ['a', '3'] },
      { kind: 'stream', pieces: ['a', '4'] },
    );
    const path = join(directory, 'order.sqlite');
    const server = await start(path, upstream);
    const sessionId = String((await api(server.url, 'POST', '/api/sessions')).body['sessionId']);
    const watcher = await WsClient.open(`${server.wsUrl}?sessionId=${sessionId}`);
    const positions: number[] = [];
    for (const text of ['q1', 'q2', 'q3']) {
      const sent = await api(server.url, 'POST', `/api/sessions/${sessionId}/messages`, { text });
      expect(sent.status).toBe(202);
      positions.push(Number(sent.body['position']));
    }
    expect(positions).toEqual([0, 1, 2]);
    await watcher.waitForCount((frame) => frame.type === 'completed', 3);
    const requests = await upstream.waitForRequests(3);
    expect(requests.map((request) => turns(request.body))).toEqual([
      ['user:q1'],
      ['user:q1', 'assistant:a1', 'user:q2'],
      ['user:q1', 'assistant:a1', 'user:q2', 'assistant:a2', 'user:q3'],
    ]);
    const expected = ['q1', 'a1', 'q2', 'a2', 'q3', 'a3'];
    const page = await api(server.url, 'GET', `/api/sessions/${sessionId}/messages`);
    expect((page.body['messages'] as Json[]).map((message) => message['content'])).toEqual(expected);
    const newestFirst = await api(server.url, 'GET', `/api/sessions/${sessionId}/messages?order=desc&limit=4`);
    expect((newestFirst.body['messages'] as Json[]).map((message) => message['content'])).toEqual(['a3', 'q3', 'a2', 'q2']);
    const view = await api(server.url, 'GET', `/api/sessions/${sessionId}`);
    expect((view.body['messages'] as Json[]).map((message) => message['content'])).toEqual(expected);
    // No internal ordering key leaks into what clients see.
    expect((view.body['messages'] as Json[]).every((message) => !('order' in message))).toBe(true);
    watcher.close();

    // Re-activated from the store after a restart, the context is still in conversation order.
    await server.close();
    servers.splice(0);
    const again = await start(path, upstream);
    const resumed = await WsClient.open(`${again.wsUrl}?sessionId=${sessionId}`);
    expect((await api(again.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'q4' })).status).toBe(202);
    await resumed.waitFor((frame) => frame.type === 'completed');
    const [, , , fourth] = await upstream.waitForRequests(4);
    expect(turns(fourth!.body)).toEqual(['user:q1', 'assistant:a1', 'user:q2', 'assistant:a2', 'user:q3', 'assistant:a3', 'user:q4']);
    resumed.close();
  });
});
