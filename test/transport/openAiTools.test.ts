import { APIError } from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { describe, expect, it } from 'vitest';
import type { ChatServerOptions } from '../../src/server.ts';
import { fakeLogprob } from '../support/fakeUpstream.ts';
import { fakeUpstreamPerTest, openAiClient } from '../support/fakeUpstreamPerTest.ts';
import { api, WsClient } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';

const fixture = fakeUpstreamPerTest();
const start = (options?: ChatServerOptions) => fixture.start(options);
const sdk = openAiClient;

async function failure(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof APIError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

const TOOLS: ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
      strict: true,
    },
  },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
];
const WEATHER = { id: 'call_w1', name: 'get_weather', arguments: ['{"ci', 'ty":"Pa', 'ris"}'] };
const TIME = { id: 'call_t1', name: 'get_time', arguments: ['{"tz":', '"CET"}'] };
const call = (spec: typeof WEATHER) => ({ id: spec.id, type: 'function' as const, function: { name: spec.name, arguments: spec.arguments.join('') } });
const QUESTION: ChatCompletionMessageParam = { role: 'user', content: 'Weather and time in Paris?' };

describe('tool calls through /v1, with the official openai SDK as the caller', () => {
  it('streams a tool call as delta.tool_calls fragments (index, id, name, arguments) with finish_reason tool_calls', async () => {
    const server = await start();
    fixture.upstream.enqueue({ kind: 'stream', pieces: [], toolCalls: [WEATHER] });
    const stream = await sdk(server.url).chat.completions.create({
      model: 'fake-model',
      messages: [QUESTION],
      tools: TOOLS,
      tool_choice: 'auto',
      parallel_tool_calls: false,
      stream: true,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const fragments = chunks.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []);
    expect(fragments[0]).toMatchObject({ index: 0, id: 'call_w1', type: 'function', function: { name: 'get_weather' } });
    expect(fragments.every((fragment) => fragment.index === 0)).toBe(true);
    expect(fragments.map((fragment) => fragment.function?.arguments ?? '').join('')).toBe('{"city":"Paris"}');
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('tool_calls');
    // tools, tool_choice and parallel_tool_calls reached the model's server exactly as sent.
    expect(fixture.upstream.requests[0]?.body).toMatchObject({ tools: TOOLS, tool_choice: 'auto', parallel_tool_calls: false });
  });

  it("the SDK's stream helper assembles the same calls as a non-streamed answer carries", async () => {
    const server = await start();
    fixture.upstream.enqueue({ kind: 'stream', pieces: [], toolCalls: [WEATHER] }, { kind: 'stream', pieces: [], toolCalls: [WEATHER] });
    const helper = sdk(server.url).chat.completions.stream({ model: 'fake-model', messages: [QUESTION], tools: TOOLS });
    const streamed = await helper.finalChatCompletion();
    const plain = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [QUESTION], tools: TOOLS });
    for (const completion of [streamed, plain]) {
      expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
      // (the helper adds `parsed_arguments` for a strict tool)
      expect(completion.choices[0]?.message.tool_calls).toMatchObject([call(WEATHER)]);
    }
    expect(plain.choices[0]?.message.tool_calls).toEqual([call(WEATHER)]);
    expect(plain.choices[0]?.message.content).toBeNull();
  });

  it('parallel tool calls: two calls streamed interleaved arrive whole and in order, streamed and not', async () => {
    const server = await start();
    const parallel = { kind: 'stream' as const, pieces: [], toolCalls: [WEATHER, TIME], interleave: true };
    fixture.upstream.enqueue(parallel, parallel);
    const stream = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [QUESTION], tools: TOOLS, parallel_tool_calls: true, stream: true });
    const byIndex = new Map<number, { id?: string; name?: string; arguments: string }>();
    for await (const chunk of stream) {
      for (const fragment of chunk.choices[0]?.delta.tool_calls ?? []) {
        const entry = byIndex.get(fragment.index) ?? { arguments: '' };
        if (fragment.id) entry.id = fragment.id;
        if (fragment.function?.name) entry.name = fragment.function.name;
        entry.arguments += fragment.function?.arguments ?? '';
        byIndex.set(fragment.index, entry);
      }
    }
    expect([...byIndex.entries()]).toEqual([
      [0, { id: 'call_w1', name: 'get_weather', arguments: '{"city":"Paris"}' }],
      [1, { id: 'call_t1', name: 'get_time', arguments: '{"tz":"CET"}' }],
    ]);
    const plain = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [QUESTION], tools: TOOLS, parallel_tool_calls: true });
    expect(plain.choices[0]?.message.tool_calls).toEqual([call(WEATHER), call(TIME)]);
    expect(fixture.upstream.requests[1]?.body['parallel_tool_calls']).toBe(true);
  });

  it('a full round trip, ephemerally: tool call, tool results in the next request, final answer', async () => {
    const server = await start();
    fixture.upstream.enqueue({ kind: 'stream', pieces: [], toolCalls: [WEATHER, TIME] }, { kind: 'stream', pieces: ['Sunny, ', '21°C, noon.'] });
    const client = sdk(server.url);
    const first = await client.chat.completions.create({ model: 'fake-model', messages: [QUESTION], tools: TOOLS });
    const assistant = first.choices[0]!.message;
    const messages: ChatCompletionMessageParam[] = [
      QUESTION,
      { role: 'assistant', content: assistant.content, tool_calls: assistant.tool_calls! },
      { role: 'tool', tool_call_id: 'call_w1', content: '{"sky":"sunny","temp":21}' },
      { role: 'tool', tool_call_id: 'call_t1', content: '12:00' },
    ];
    const second = await client.chat.completions.create({ model: 'fake-model', messages, tools: TOOLS });
    expect(second.choices[0]).toMatchObject({ finish_reason: 'stop', message: { role: 'assistant', content: 'Sunny, 21°C, noon.' } });
    // The model's server got the whole exchange in OpenAI's own shape.
    expect(fixture.upstream.requests[1]?.body.messages).toEqual([
      { role: 'user', content: 'Weather and time in Paris?' },
      { role: 'assistant', content: null, tool_calls: [call(WEATHER), call(TIME)] },
      { role: 'tool', tool_call_id: 'call_w1', content: '{"sky":"sunny","temp":21}' },
      { role: 'tool', tool_call_id: 'call_t1', content: '12:00' },
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(server.server.registry.activeCount).toBe(0);
  });

  it('a multi-step agent loop on a named session: watchers see tool-call frames, REST shows structured messages', async () => {
    const server = await start();
    const { client: watcher, sessionId } = await WsClient.session(server.wsUrl);
    fixture.closeAfter(() => watcher.close());
    fixture.upstream.enqueue({ kind: 'stream', pieces: ['Let me check. '], toolCalls: [WEATHER] }, { kind: 'stream', pieces: ['It is sunny.'] });
    const client = sdk(server.url, { 'X-Session-Id': sessionId });
    const first = await client.chat.completions.create({ model: 'fake-model', messages: [QUESTION], tools: TOOLS, stream: true });
    const fragments = [];
    for await (const chunk of first) fragments.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
    const completed = await watcher.waitFor((frame) => frame.type === 'completed');
    expect(completed).toMatchObject({ finishReason: 'tool_calls', toolCalls: [call(WEATHER)], model: 'fake-model' });
    const toolFrames = watcher.frames.filter((frame) => frame.type === 'tool_calls');
    expect(toolFrames.length).toBeGreaterThan(0);
    expect(toolFrames[0]).toMatchObject({ sessionId, messageId: completed['messageId'], toolCalls: [{ index: 0, id: 'call_w1', type: 'function', function: { name: 'get_weather' } }] });
    const streamedArguments = toolFrames.flatMap((frame) => frame['toolCalls'] as Json[]).map((delta) => (delta['function'] as Json)['arguments'] ?? '').join('');
    expect(streamedArguments).toBe('{"city":"Paris"}');

    // The client sends the whole conversation back, as OpenAI clients do: the session takes only the tool result.
    const second = await client.chat.completions.create({
      model: 'fake-model',
      tools: TOOLS,
      messages: [QUESTION, { role: 'assistant', content: 'Let me check. ', tool_calls: [call(WEATHER)] }, { role: 'tool', tool_call_id: 'call_w1', content: 'sunny' }],
    });
    expect(second.choices[0]?.message.content).toBe('It is sunny.');
    const accepted = watcher.frames.filter((frame) => frame.type === 'accepted');
    expect(accepted[1]).toMatchObject({ text: '', toolResults: [{ toolCallId: 'call_w1' }] });
    expect(fixture.upstream.requests[1]?.body.messages).toEqual([
      { role: 'user', content: 'Weather and time in Paris?' },
      { role: 'assistant', content: 'Let me check. ', tool_calls: [call(WEATHER)] },
      { role: 'tool', tool_call_id: 'call_w1', content: 'sunny' },
    ]);
    const view = await api(server.url, 'GET', `/api/sessions/${sessionId}`);
    expect((view.body['messages'] as Json[]).map(({ id: _id, createdAt: _c, updatedAt: _u, replyTo: _r, usage: _usage, ...rest }) => rest)).toEqual([
      { role: 'user', content: 'Weather and time in Paris?', status: 'complete' },
      { role: 'assistant', content: 'Let me check. ', status: 'complete', toolCalls: [call(WEATHER)], finishReason: 'tool_calls', model: 'fake-model' },
      { role: 'tool', content: 'sunny', status: 'complete', toolCallId: 'call_w1' },
      { role: 'assistant', content: 'It is sunny.', status: 'complete', finishReason: 'stop', model: 'fake-model' },
    ]);
  });

  it('refuses tool results that answer no call of the last reply, or leave one unanswered', async () => {
    const server = await start();
    const { client: watcher, sessionId } = await WsClient.session(server.wsUrl);
    fixture.closeAfter(() => watcher.close());
    fixture.upstream.enqueue({ kind: 'stream', pieces: [], toolCalls: [WEATHER, TIME] });
    const client = sdk(server.url, { 'X-Session-Id': sessionId });
    await client.chat.completions.create({ model: 'fake-model', messages: [QUESTION], tools: TOOLS });
    const wrong = await failure(client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'tool', tool_call_id: 'call_nope', content: 'x' }] }));
    expect(wrong.status).toBe(400);
    expect(wrong.message).toContain('The tool result for "call_nope" answers no tool call of the last reply.');
    const partial = await failure(client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'tool', tool_call_id: 'call_w1', content: 'x' }] }));
    expect(partial.message).toContain('missing: call_t1');
    expect(fixture.upstream.requests).toHaveLength(1);
  });

  it('a loop the client abandoned does not wedge the session: unanswered calls are left out of the next request', async () => {
    const server = await start();
    const { client: watcher, sessionId } = await WsClient.session(server.wsUrl);
    fixture.closeAfter(() => watcher.close());
    fixture.upstream.enqueue({ kind: 'stream', pieces: [], toolCalls: [WEATHER] });
    const client = sdk(server.url, { 'X-Session-Id': sessionId });
    await client.chat.completions.create({ model: 'fake-model', messages: [QUESTION], tools: TOOLS });
    await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'never mind, hello' }] });
    expect(fixture.upstream.requests[1]?.body.messages).toEqual([
      { role: 'user', content: 'Weather and time in Paris?' },
      { role: 'user', content: 'never mind, hello' },
    ]);
  });
});

describe('the rest of the request passes through; finish_reason is the upstream’s', () => {
  it('an image part (data: and https URLs), audio, a file and response_format reach the model’s server unchanged', async () => {
    const server = await start();
    const parts = [
      { type: 'text' as const, text: 'Describe these.' },
      { type: 'image_url' as const, image_url: { url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', detail: 'low' as const } },
      { type: 'image_url' as const, image_url: { url: 'https://example.com/cat.jpg' } },
      { type: 'input_audio' as const, input_audio: { data: 'UklGRiQAAABXQVZF', format: 'wav' as const } },
      { type: 'file' as const, file: { filename: 'notes.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' } },
    ];
    const responseFormat = {
      type: 'json_schema' as const,
      json_schema: { name: 'description', strict: true, schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false } },
    };
    const passthrough = {
      stop: ['\n\n', 'END'],
      seed: 42,
      top_p: 0.9,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { '50256': -100 },
      user: 'user-123',
      metadata: { team: 'qa' },
      max_completion_tokens: 200,
    };
    await sdk(server.url).chat.completions.create({
      model: 'fake-model',
      messages: [{ role: 'system', content: 'Be exact.' }, { role: 'user', content: parts }],
      response_format: responseFormat,
      ...passthrough,
    });
    const body = fixture.upstream.requests[0]!.body;
    expect(body.messages).toEqual([
      { role: 'system', content: 'Be exact.' },
      { role: 'user', content: parts },
    ]);
    expect(body).toMatchObject({ response_format: responseFormat, ...passthrough, model: 'fake-model', stream: true });
    expect(body['max_tokens']).toBeUndefined();
  });

  it('json_object mode passes through; fields llm-chat does not know are ignored, not refused', async () => {
    const server = await start();
    const response = await api(server.url, 'POST', '/v1/chat/completions', {
      model: 'fake-model',
      messages: [{ role: 'user', content: 'JSON please' }],
      response_format: { type: 'json_object' },
      some_future_field: { nested: true },
      modalities: ['text'],
    });
    expect(response.status).toBe(200);
    const body = fixture.upstream.requests[0]!.body;
    expect(body['response_format']).toEqual({ type: 'json_object' });
    expect(body).not.toHaveProperty('some_future_field');
    expect(body).not.toHaveProperty('modalities');
  });

  it('refuses malformed passthrough fields and content parts with a message that names the field', async () => {
    const server = await start();
    const ask = (extra: Json, content: unknown = 'hi') => api(server.url, 'POST', '/v1/chat/completions', { model: 'fake-model', messages: [{ role: 'user', content }], ...extra });
    const cases: [Promise<{ status: number; body: Json }>, RegExp][] = [
      [ask({ top_p: 3 }), /at top_p/],
      [ask({ response_format: { type: 'yaml' } }), /at response_format/],
      [ask({ stop: ['a', 'b', 'c', 'd', 'e'] }), /at stop/],
      [ask({}, [{ type: 'video', video: {} }]), /Content parts of type "video" are not supported in user messages \(messages\.0\.content\.0\)/],
      [ask({}, [{ type: 'image_url', image_url: { url: 'ftp://example.com/x.png' } }]), /at messages\.0\.content\.0\.image_url\.url/],
      [ask({ functions: [{ name: 'f' }] }), /deprecated/],
      [ask({ n: 2 }), /Only n = 1/],
    ];
    for (const [response, message] of cases) {
      const { status, body } = await response;
      expect(status).toBe(400);
      expect((body['error'] as Json)['code']).toBe('bad_request');
      expect(String((body['error'] as Json)['message'])).toMatch(message);
    }
    expect(fixture.upstream.requests).toHaveLength(0);
  });

  it("finish_reason length from the upstream reaches the client (streamed, not streamed) and the completed frame", async () => {
    const server = await start();
    const truncatedReply = { kind: 'stream' as const, pieces: ['Once upon'], finishReason: 'length' };
    fixture.upstream.enqueue(truncatedReply, truncatedReply, truncatedReply);
    const stream = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'tell a story' }], max_tokens: 2, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('length');
    const plain = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'tell a story' }], max_tokens: 2 });
    expect(plain.choices[0]?.finish_reason).toBe('length');
    expect(fixture.upstream.requests[1]?.body['max_tokens']).toBe(2);
    const { client, sessionId } = await WsClient.session(server.wsUrl);
    fixture.closeAfter(() => client.close());
    client.send('tell a story');
    expect(await client.waitFor((frame) => frame.type === 'completed')).toMatchObject({ sessionId, finishReason: 'length' });
  });

  it('logprobs are asked of the model and come back on the chunks and the body', async () => {
    const server = await start();
    const reply = { kind: 'stream' as const, pieces: ['Hi', ' there'] };
    fixture.upstream.enqueue(reply, reply);
    const stream = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], logprobs: true, top_logprobs: 2, stream: true });
    const entries = [];
    for await (const chunk of stream) entries.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    expect(entries).toEqual([fakeLogprob('Hi'), fakeLogprob(' there')]);
    const plain = await sdk(server.url).chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], logprobs: true });
    expect(plain.choices[0]?.logprobs?.content).toEqual([fakeLogprob('Hi'), fakeLogprob(' there')]);
    expect(fixture.upstream.requests[0]?.body).toMatchObject({ logprobs: true, top_logprobs: 2 });
  });
});

describe('/v1 has its own body limit', () => {
  it('takes a 1 MiB image on /v1 while other REST bodies keep theirs, and refuses a body past --max-v1-body-bytes', async () => {
    const server = await start({ maxBodyBytes: 64 * 1024, maxV1BodyBytes: 2 * 1024 * 1024 });
    const image = `data:image/png;base64,${'A'.repeat(1024 * 1024)}`;
    const big = await api(server.url, 'POST', '/v1/chat/completions', {
      model: 'fake-model',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: image } }] }],
    });
    expect(big.status).toBe(200);
    expect(((fixture.upstream.requests[0]?.body.messages?.[0]?.content as Json[])[1]!['image_url'] as Json)['url']).toBe(image);
    const rest = await api(server.url, 'POST', '/api/sessions', { title: 'x'.repeat(100 * 1024) });
    expect(rest.status).toBe(413);
    const tooBig = await api(server.url, 'POST', '/v1/chat/completions', {
      model: 'fake-model',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${'A'.repeat(3 * 1024 * 1024)}` } }] }],
    });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body).toMatchObject({ error: { code: 'payload_too_large', type: 'invalid_request_error' } });
    expect(fixture.upstream.requests).toHaveLength(1);
  });
});
