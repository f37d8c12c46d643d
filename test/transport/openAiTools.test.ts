import { APIError } from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { describe, expect, it } from 'vitest';
import type { ChatServerOptions } from '../../src/server.ts';
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
