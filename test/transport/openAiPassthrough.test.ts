import { describe, expect, it } from 'vitest';
import type { ChatServerOptions } from '../../src/server.ts';
import { fakeUpstreamPerTest, openAiClient } from '../support/fakeUpstreamPerTest.ts';
import { api, SseClient } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';

const fixture = fakeUpstreamPerTest();
const start = (options?: ChatServerOptions) => fixture.start(options);
const sdk = openAiClient;

describe('finish_reason content_filter', () => {
  it('reaches the client streamed and not, and the completed frame of an SSE watcher', async () => {
    const server = await start();
    const filtered = { kind: 'stream' as const, pieces: ['I can'], finishReason: 'content_filter' };
    fixture.upstream.enqueue(filtered, filtered, filtered);
    const stream = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('content_filter');
    const plain = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }] });
    expect(plain.choices[0]).toMatchObject({ finish_reason: 'content_filter', message: { content: 'I can' } });

    const created = await api(server.url, 'POST', '/api/sessions');
    const sessionId = String(created.body['sessionId']);
    const sse = await SseClient.open(`${server.url}/sse/${sessionId}`);
    fixture.closeAfter(() => sse.close());
    await api(server.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'x' });
    const completed = await sse.waitFor(() => sse.messages.find((message) => message.event === 'message.completed'));
    expect(JSON.parse(completed.data)).toMatchObject({ type: 'completed', finishReason: 'content_filter' });
    const view = await api(server.url, 'GET', `/api/sessions/${sessionId}`);
    expect((view.body['messages'] as Json[]).at(-1)).toMatchObject({ role: 'assistant', finishReason: 'content_filter' });
  });
});

describe('the newer request fields README lists as passed through', () => {
  it('reasoning and caching options, custom tools and tool_choice objects reach the model’s server as sent; developer and system messages become its system prompt; a message’s name is dropped', async () => {
    const server = await start({ llmSystemPrompt: 'The flag prompt, replaced for this reply.' });
    const passthrough = {
      reasoning_effort: 'low',
      verbosity: 'high',
      service_tier: 'flex',
      prompt_cache_key: 'cache-1',
      safety_identifier: 'user-hash',
      store: false,
      prediction: { type: 'content', content: 'Hello' },
      tools: [{ type: 'custom', custom: { name: 'run_sql', description: 'Runs SQL' } }],
      tool_choice: { type: 'custom', custom: { name: 'run_sql' } },
    };
    const response = await api(server.url, 'POST', '/v1/chat/completions', {
      model: 'fake-model',
      messages: [
        { role: 'developer', content: 'Answer in French.' },
        { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
        { role: 'user', content: 'hi', name: 'alice' },
      ],
      ...passthrough,
    });
    expect(response.status).toBe(200);
    const body = fixture.upstream.requests[0]!.body;
    expect(body).toMatchObject(passthrough);
    expect(body.messages).toEqual([
      { role: 'system', content: 'Answer in French.\n\nBe brief.' },
      { role: 'user', content: 'hi' },
    ]);
  });

  it('refuses more than 128 tools before calling the model', async () => {
    const server = await start();
    const tools = Array.from({ length: 129 }, (_, index) => ({ type: 'function', function: { name: `f${index}` } }));
    const response = await api(server.url, 'POST', '/v1/chat/completions', { model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], tools });
    expect(response.status).toBe(400);
    expect(response.body['error']).toMatchObject({ code: 'bad_request', message: expect.stringMatching(/at tools/) });
    expect(fixture.upstream.requests).toHaveLength(0);
  });
});

describe('the /v1 body limit by default (--max-v1-body-bytes 16 MiB)', () => {
  it('takes a 3 MiB image while REST keeps its 64 KiB, and refuses a body just past 16 MiB with 413', async () => {
    const server = await start();
    const image = `data:image/png;base64,${'A'.repeat(3 * 1024 * 1024)}`;
    const big = await api(server.url, 'POST', '/v1/chat/completions', { model: 'fake-model', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: image } }] }] });
    expect(big.status).toBe(200);
    expect((await api(server.url, 'POST', '/api/sessions', { title: 'x'.repeat(65 * 1024) })).status).toBe(413);
    const prefix = JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: '' }] });
    const filler = 'A'.repeat(16 * 1024 * 1024 - prefix.length + 1);
    const tooBig = await api(server.url, 'POST', '/v1/chat/completions', JSON.stringify({ model: 'fake-model', messages: [{ role: 'user', content: filler }] }), { 'content-type': 'application/json' });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body).toMatchObject({ error: { code: 'payload_too_large' } });
    expect(fixture.upstream.requests).toHaveLength(1);
  });
});
