import OpenAI, { APIError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { api, startServer, WsClient } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';
import { startFakeUpstream } from '../support/fakeUpstream.ts';
import type { FakeUpstream } from '../support/fakeUpstream.ts';

let running: RunningServer | undefined;
let upstream: FakeUpstream | undefined;
const clients: WsClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await running?.close();
  running = undefined;
  await upstream?.close();
  upstream = undefined;
});

function sdk(base: string, headers: Record<string, string> = {}) {
  return new OpenAI({ baseURL: `${base}/v1`, apiKey: 'anything', maxRetries: 0, defaultHeaders: headers });
}

async function failure(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof APIError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('/v1 with the simulated model, driven by the official openai SDK', () => {
  it('streams chunks the SDK parses, ending with finish_reason stop', async () => {
    running = await startServer();
    const stream = await sdk(running.url).chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk' && chunk.model === 'simulated')).toBe(true);
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(['chunk 1: hi', 'chunk 2: hi', 'chunk 3: hi', 'chunk 4: hi', 'chunk 5: hi'].join(''));
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('stop');
    expect(chunks.slice(0, -1).every((chunk) => chunk.choices[0]?.finish_reason === null)).toBe(true);
  });

  it('writes data-only SSE frames (never an event: line) ending in data: [DONE]', async () => {
    running = await startServer();
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'simulated', messages: [{ role: 'user', content: 'hi' }], stream: true }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const body = await response.text();
    expect(body).not.toMatch(/^event:/m);
    expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
    for (const block of body.split('\n\n').filter(Boolean)) expect(block).toMatch(/^data: /);
  });

  it('answers stream: false with one chat.completion', async () => {
    running = await startServer();
    const completion = await sdk(running.url).chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'yo' }] });
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]?.message).toMatchObject({ role: 'assistant', content: 'chunk 1: yochunk 2: yochunk 3: yochunk 4: yochunk 5: yo' });
    expect(completion.choices[0]?.finish_reason).toBe('stop');
  });

  it('lists the served model', async () => {
    running = await startServer();
    const client = sdk(running.url);
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models).toEqual([expect.objectContaining({ id: 'simulated', object: 'model', owned_by: 'llm-chat' })]);
    expect(await client.models.retrieve('simulated')).toMatchObject({ id: 'simulated' });
    expect((await failure(client.models.retrieve('gpt-9'))).status).toBe(404);
  });

  it('reports errors in OpenAI shape, which the SDK raises as typed errors', async () => {
    running = await startServer();
    const client = sdk(running.url);
    const wrongShape = await failure(client.chat.completions.create({ model: 'simulated', messages: [{ role: 'assistant', content: 'no question' }] }));
    expect(wrongShape.status).toBe(400);
    expect(wrongShape.error).toEqual({ message: 'The last message must be a user message or a tool result.', type: 'invalid_request_error', param: null, code: 'bad_request' });
    const raw = await api(running.url, 'POST', '/v1/chat/completions', '{not json');
    expect(raw.status).toBe(400);
    expect(raw.body).toEqual({ error: { message: 'The body is not valid JSON.', type: 'invalid_request_error', param: null, code: 'bad_request' } });
    const missing = await api(running.url, 'GET', '/v1/nothing');
    expect(missing.body).toEqual({ error: { message: 'No such endpoint.', type: 'invalid_request_error', param: null, code: 'not_found' } });
    const tools = await api(running.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] });
    expect(tools.status).toBe(400);
    expect(tools.body['error']).toMatchObject({ code: 'bad_request', message: expect.stringMatching(/^Invalid chat completion request at tools\.0/) });
  });

  it('runs on a named session with X-Session-Id: the conversation continues there and its watchers see it', async () => {
    running = await startServer();
    const { client: watcher, sessionId } = await WsClient.session(running.wsUrl);
    clients.push(watcher);
    const client = sdk(running.url, { 'X-Session-Id': sessionId });
    const first = await client.chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'one' }] });
    const stream = await client.chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'two' }], stream: true });
    for await (const _chunk of stream) void _chunk;
    await watcher.waitForCount((frame) => frame.type === 'completed', 2);
    expect(watcher.frames.filter((frame) => frame.type === 'accepted').map((frame) => frame['text'])).toEqual(['one', 'two']);
    expect(first.id).toBe(`chatcmpl-${String(watcher.frames.find((frame) => frame.type === 'accepted')?.['messageId'])}`);
    const view = await api(running.url, 'GET', `/api/sessions/${sessionId}`);
    expect((view.body['messages'] as Json[]).map((message) => [message['role'], message['status']])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
    const unknown = await failure(sdk(running.url, { 'X-Session-Id': 'A'.repeat(22) }).chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'hi' }] }));
    expect(unknown.status).toBe(404);
    expect(unknown.code).toBe('session_not_found');
  });

  it('an ephemeral session lives only as long as its request', async () => {
    running = await startServer();
    await sdk(running.url).chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'hi' }] });
    await new Promise((resolve) => setImmediate(resolve));
    expect(running.server.registry.activeCount).toBe(0);
  });

  it('a cancel on the named session ends the /v1 stream with a cancelled error the SDK raises', async () => {
    running = await startServer({ simIntervalMs: 50, simChunks: 50 });
    const { client: watcher, sessionId } = await WsClient.session(running.wsUrl);
    clients.push(watcher);
    const stream = await sdk(running.url, { 'X-Session-Id': sessionId }).chat.completions.create({
      model: 'simulated',
      messages: [{ role: 'user', content: 'long' }],
      stream: true,
    });
    const texts: string[] = [];
    const error = await failure(
      (async () => {
        for await (const chunk of stream) {
          texts.push(chunk.choices[0]?.delta.content ?? '');
          if (texts.join('').includes('chunk 1:')) watcher.send(JSON.stringify({ type: 'cancel' }));
        }
      })(),
    );
    expect(error.code).toBe('cancelled');
    expect(texts.join('')).toContain('chunk 1: long');
  });
});

describe('/v1 with a fake OpenAI-compatible upstream behind it', () => {
  async function startBehindFake(options = {}) {
    upstream = await startFakeUpstream();
    running = await startServer({ llmProvider: 'openai', llmBaseUrl: upstream.baseUrl, llmModel: 'fake-model', llmRetries: 0, ...options });
    return { server: running, fake: upstream };
  }

  it('streams with usage when stream_options.include_usage is set, and forwards the whole conversation', async () => {
    const { server, fake } = await startBehindFake();
    const messages = [
      { role: 'system' as const, content: 'Be kind.' },
      { role: 'user' as const, content: 'q1' },
      { role: 'assistant' as const, content: 'a1' },
      { role: 'user' as const, content: 'q2' },
    ];
    const stream = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages, stream: true, stream_options: { include_usage: true }, temperature: 0.5 });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('Hello, world');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } });
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
    expect(fake.requests[0]?.body).toMatchObject({ model: 'fake-model', messages, temperature: 0.5 });
  });

  it('leaves usage out of the stream unless asked, and always puts it on a non-streamed answer', async () => {
    const { server } = await startBehindFake();
    const stream = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.some((chunk) => 'usage' in chunk)).toBe(false);
    const completion = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.choices[0]?.message.content).toBe('Hello, world');
    expect(completion.usage).toEqual({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
  });

  it('an upstream failure before the first token is an HTTP error with the typed code', async () => {
    const { server, fake } = await startBehindFake();
    fake.enqueue({ kind: 'status', status: 500 });
    const streamed = await failure(sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true }));
    expect(streamed.status).toBe(502);
    expect(streamed.error).toEqual({ message: "The model's server answered with HTTP 500.", type: 'server_error', param: null, code: 'upstream_error' });
  });

  it('an upstream failure mid-stream ends the SDK stream with an APIError after the text already sent', async () => {
    const { server, fake } = await startBehindFake();
    fake.enqueue({ kind: 'drop', pieces: ['half '] });
    const stream = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const texts: string[] = [];
    const error = await failure(
      (async () => {
        for await (const chunk of stream) texts.push(chunk.choices[0]?.delta.content ?? '');
      })(),
    );
    expect(texts.join('')).toBe('half ');
    expect(error.code).toBe('upstream_error');
  });

  it('while the breaker is open: 503 upstream_unavailable at once', async () => {
    const { server, fake } = await startBehindFake({ breakerFailures: 1, breakerCooldownMs: 60_000 });
    fake.enqueue({ kind: 'status', status: 500 });
    await failure(sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }));
    const refused = await failure(sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] }));
    expect(refused.status).toBe(503);
    expect(refused.code).toBe('upstream_unavailable');
    expect(fake.requests).toHaveLength(1);
  });

  it('a client that hangs up on an ephemeral request cancels the upstream call', async () => {
    const { server, fake } = await startBehindFake();
    fake.enqueue({ kind: 'stream', pieces: Array.from({ length: 50 }, () => 'x'), intervalMs: 40 });
    const controller = new AbortController();
    const stream = await sdk(server.url).chat.completions.create(
      { model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true },
      { signal: controller.signal },
    );
    for await (const _chunk of stream) {
      controller.abort();
      break;
    }
    await fake.requests[0]!.aborted;
  });
});
