import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { api, startServer, WsClient } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';
import { startFakeUpstream } from '../support/fakeUpstream.ts';
import type { Behaviour, FakeUpstream } from '../support/fakeUpstream.ts';
import type { ChatServerOptions } from '../../src/server.ts';

let upstream: FakeUpstream;
let running: RunningServer | undefined;
const clients: WsClient[] = [];

beforeEach(async () => {
  upstream = await startFakeUpstream();
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await running?.close();
  running = undefined;
  await upstream.close();
});

async function start(options: ChatServerOptions = {}) {
  running = await startServer({
    llmProvider: 'openai',
    llmBaseUrl: upstream.baseUrl,
    llmModel: 'fake-model',
    llmApiKey: 'sk-test',
    llmRetries: 0,
    retryBaseMs: 5,
    firstTokenTimeoutMs: 300,
    stallTimeoutMs: 300,
    ...options,
  });
  const opened = await WsClient.session(running.wsUrl);
  clients.push(opened.client);
  return { server: running, ...opened };
}

const ofReply = (id: unknown) => (frame: Json) => frame['messageId'] === id;
const chunkText = (client: WsClient, id: unknown) =>
  client.frames.filter((frame) => frame.type === 'chunk' && frame['messageId'] === id).map((frame) => frame['chunk']).join('');

async function sendAndWaitEnd(client: WsClient, text: string) {
  client.send(text);
  const accepted = await client.waitFor((frame) => frame.type === 'accepted' && frame['text'] === text);
  const end = await client.waitFor((frame) => ofReply(accepted['messageId'])(frame) && ['completed', 'error', 'cancelled'].includes(String(frame.type)));
  return { replyId: accepted['messageId'], end };
}

describe('a real model behind llm-chat (fake OpenAI-compatible upstream)', () => {
  it('streams a reply: chunks, is_last on the last, completed with usage, usage on the stored message', async () => {
    const { client, sessionId, server } = await start({ llmSystemPrompt: 'You are terse.' });
    const { replyId, end } = await sendAndWaitEnd(client, 'hello');
    expect(end).toEqual({ type: 'completed', sessionId, messageId: replyId, usage: { inputTokens: 7, outputTokens: 3 }, finishReason: 'stop', model: 'fake-model' });
    const chunks = client.frames.filter((frame) => frame.type === 'chunk');
    expect(chunks.map((frame) => frame['chunk']).join('')).toBe('Hello, world');
    expect(chunks.at(-1)?.['is_last']).toBe(true);
    expect(chunks.slice(0, -1).every((frame) => frame['is_last'] === false)).toBe(true);
    const view = await api(server.url, 'GET', `/api/sessions/${sessionId}`);
    expect((view.body['messages'] as Json[]).at(-1)).toMatchObject({ id: replyId, status: 'complete', content: 'Hello, world', usage: { inputTokens: 7, outputTokens: 3 } });
    expect(upstream.requests[0]?.body.messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'hello' },
    ]);
  });

  it('carries the session history into the next request (multi-turn)', async () => {
    const { client } = await start();
    await sendAndWaitEnd(client, 'first');
    await sendAndWaitEnd(client, 'second');
    expect(upstream.requests[1]?.body.messages).toEqual([
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'Hello, world' },
      { role: 'user', content: 'second' },
    ]);
  });

  const failures: [string, Behaviour, Json][] = [
    // A 429 with no retry or fallback left tells the client to slow down, and when to come back.
    // (Retry-After, and the breaker holding calls for it, are tested in models.test.ts.)
    ['HTTP 429', { kind: 'status', status: 429 }, { code: 'rate_limited', upstreamStatus: 429, retryAfterMs: expect.any(Number), message: "The model's server is rate limiting requests; try again in 1 s." }],
    ['HTTP 500', { kind: 'status', status: 500 }, { code: 'upstream_error', upstreamStatus: 500 }],
    ['an error payload', { kind: 'errorPayload', pieces: ['par'], error: { message: 'internal detail', type: 'server_error' } }, { code: 'upstream_error', message: "The model's server reported an error in its stream." }],
    ['a stall', { kind: 'stall', pieces: ['par'] }, { code: 'upstream_timeout', message: "The model's server stopped sending for 300 ms." }],
    ['a dropped connection', { kind: 'drop', pieces: ['par'] }, { code: 'upstream_error' }],
    ['a slow first byte', { kind: 'stream', pieces: ['late'], firstByteDelayMs: 1_500 }, { code: 'upstream_timeout', message: "The model's server sent no first token within 300 ms." }],
  ];
  for (const [name, behaviour, expected] of failures) {
    it(`${name}: every watcher gets a typed error frame, the reply is kept as failed, the session goes on without a restart`, async () => {
      const { client, sessionId, server } = await start();
      const watcher = await WsClient.open(`${server.wsUrl}?sessionId=${sessionId}`);
      clients.push(watcher);
      upstream.enqueue(behaviour);
      const { replyId, end } = await sendAndWaitEnd(client, 'go');
      expect(end).toMatchObject({ type: 'error', sessionId, messageId: replyId, ...expected });
      if (!('upstreamStatus' in expected)) expect(end['upstreamStatus']).toBeUndefined();
      expect(JSON.stringify(end)).not.toContain('internal detail');
      await watcher.waitFor((frame) => frame.type === 'error' && frame['messageId'] === replyId);
      const view = await api(server.url, 'GET', `/api/sessions/${sessionId}`);
      const reply = (view.body['messages'] as Json[]).find((message) => message['id'] === replyId);
      expect(reply).toMatchObject({ status: 'failed', errorCode: expected['code'] });
      expect(reply?.['content']).toBe(chunkText(client, replyId));
      expect(view.body['status']).toBe('idle');
      const next = await sendAndWaitEnd(client, 'again');
      expect(next.end.type).toBe('completed');
      expect(client.frames.some((frame) => frame.type === 'restarted')).toBe(false);
    });
  }

  it('retries before the first token: a 503 then a good stream is one clean reply', async () => {
    const { client } = await start({ llmRetries: 2 });
    upstream.enqueue({ kind: 'status', status: 503 });
    const { replyId, end } = await sendAndWaitEnd(client, 'go');
    expect(end.type).toBe('completed');
    expect(chunkText(client, replyId)).toBe('Hello, world');
    expect(upstream.requests).toHaveLength(2);
  });

  it('opens the breaker after consecutive failures: fast upstream_unavailable, visible on /api/status', async () => {
    const { client, server } = await start({ breakerFailures: 2, breakerCooldownMs: 60_000 });
    const healthy = await api(server.url, 'GET', '/api/status');
    expect(healthy.body).toMatchObject({ provider: { name: 'openai', model: 'fake-model', breaker: { state: 'closed', consecutiveFailures: 0 } } });
    upstream.enqueue({ kind: 'status', status: 500 }, { kind: 'status', status: 500 });
    await sendAndWaitEnd(client, 'one');
    await sendAndWaitEnd(client, 'two');
    const { end } = await sendAndWaitEnd(client, 'three');
    expect(end).toMatchObject({ type: 'error', code: 'upstream_unavailable' });
    expect(upstream.requests).toHaveLength(2);
    const status = await api(server.url, 'GET', '/api/status');
    expect(status.body['provider']).toMatchObject({ breaker: { state: 'open', consecutiveFailures: 2 } });
    expect(client.frames.some((frame) => frame.type === 'restarted' || frame.type === 'stopped')).toBe(false);
  });
});

describe('cancellation reaches the upstream', () => {
  const slow: Behaviour = { kind: 'stream', pieces: Array.from({ length: 50 }, (_, index) => `w${index} `), intervalMs: 40 };

  async function streaming() {
    const started = await start();
    upstream.enqueue(slow);
    started.client.send('long answer please');
    const accepted = await started.client.waitFor((frame) => frame.type === 'accepted');
    await started.client.waitFor((frame) => frame.type === 'chunk');
    return { ...started, replyId: accepted['messageId'] };
  }

  it('a WebSocket cancel closes the upstream connection, keeps the partial reply as cancelled, tells every watcher', async () => {
    const { client, sessionId, server, replyId } = await streaming();
    const watcher = await WsClient.open(`${server.wsUrl}?sessionId=${sessionId}`);
    clients.push(watcher);
    client.send(JSON.stringify({ type: 'cancel' }));
    await upstream.requests[0]!.aborted;
    await client.waitFor((frame) => frame.type === 'cancelled' && frame['messageId'] === replyId);
    await watcher.waitFor((frame) => frame.type === 'cancelled' && frame['messageId'] === replyId);
    const view = await api(server.url, 'GET', `/api/sessions/${sessionId}`);
    const reply = (view.body['messages'] as Json[]).find((message) => message['id'] === replyId);
    expect(reply?.['status']).toBe('cancelled');
    expect(String(reply?.['content'])).toMatch(/^w0 /);
    expect(String(reply?.['content']).length).toBeLessThan(slow.kind === 'stream' ? slow.pieces.join('').length : 0);
  });

  it('POST /api/sessions/:id/cancel closes the upstream connection', async () => {
    const { sessionId, server, replyId } = await streaming();
    const response = await api(server.url, 'POST', `/api/sessions/${sessionId}/cancel`);
    expect(response.body).toEqual({ cancelled: [replyId] });
    await upstream.requests[0]!.aborted;
  });

  it('deleting the session closes the upstream connection', async () => {
    const { sessionId, server } = await streaming();
    expect((await api(server.url, 'DELETE', `/api/sessions/${sessionId}`)).status).toBe(204);
    await upstream.requests[0]!.aborted;
  });

  it('a client disconnect does not cancel: the reply completes upstream and in history', async () => {
    const started = await start();
    upstream.enqueue({ kind: 'stream', pieces: ['a ', 'b ', 'c'], intervalMs: 40 });
    started.client.send('keep going');
    const accepted = await started.client.waitFor((frame) => frame.type === 'accepted');
    await started.client.waitFor((frame) => frame.type === 'chunk');
    started.client.close();
    const deadline = Date.now() + 5_000;
    let reply: Json | undefined;
    while (Date.now() < deadline) {
      const view = await api(started.server.url, 'GET', `/api/sessions/${started.sessionId}`);
      reply = (view.body['messages'] as Json[]).find((message) => message['id'] === accepted['messageId']);
      if (reply?.['status'] !== 'streaming') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(reply).toMatchObject({ status: 'complete', content: 'a b c' });
    expect(upstream.requests[0]?.abortedAt).toBeUndefined();
  });
});
