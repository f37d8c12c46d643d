import { describe, expect, it } from 'vitest';
import { fakeUpstreamPerTest, openAiClient } from '../support/fakeUpstreamPerTest.ts';
import { api, SseClient } from '../support/harness.ts';
import type { Json } from '../support/harness.ts';

const fixture = fakeUpstreamPerTest();

const TOOLS = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
const WEATHER = { id: 'call_w1', name: 'get_weather', arguments: ['{"ci', 'ty":"Pa', 'ris"}'] };
const TIME = { id: 'call_t1', name: 'get_time', arguments: ['{"tz":', '"CET"}'] };
const whole = (spec: typeof WEATHER) => ({ id: spec.id, type: 'function', function: { name: spec.name, arguments: spec.arguments.join('') } });

describe('an SSE watcher of a named session sees the tool calls a /v1 caller gets', () => {
  it('message.tool_calls events carry delta.tool_calls fragments; message.completed has finishReason tool_calls and the whole calls', async () => {
    const running = await fixture.start();
    const created = await api(running.url, 'POST', '/api/sessions');
    const sessionId = String(created.body['sessionId']);
    const sse = await SseClient.open(`${running.url}/sse/${sessionId}`);
    fixture.closeAfter(() => sse.close());
    // Two parallel calls, interleaved, as OpenAI streams them.
    fixture.upstream.enqueue({ kind: 'stream', pieces: [], toolCalls: [WEATHER, TIME], interleave: true, intervalMs: 5 });
    const client = openAiClient(running.url, { 'X-Session-Id': sessionId });
    const stream = await client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'Weather and time?' }], tools: TOOLS, stream: true });
    for await (const _chunk of stream) void _chunk;

    const completedEvent = await sse.waitFor(() => sse.messages.find((message) => message.event === 'message.completed'));
    const completed = JSON.parse(completedEvent.data) as Json;
    expect(completed).toMatchObject({ type: 'completed', sessionId, finishReason: 'tool_calls', toolCalls: [whole(WEATHER), whole(TIME)], model: 'fake-model' });

    const toolEvents = sse.messages.filter((message) => message.event === 'message.tool_calls');
    expect(toolEvents.length).toBeGreaterThan(0);
    // Named events only: an EventSource's onmessage (unnamed chunks) never sees them, and they carry no id (not replayed).
    expect(sse.bytes).not.toMatch(/id: [^\n]*\nevent: message\.tool_calls/);
    const frames = toolEvents.map((message) => JSON.parse(message.data) as Json);
    expect(frames.every((frame) => frame['type'] === 'tool_calls' && frame['sessionId'] === sessionId && frame['messageId'] === completed['messageId'])).toBe(true);
    // Joined by index, the fragments are the two calls: the first fragment of each names its id, type and function.
    const byIndex = new Map<number, { id?: string; type?: string; name?: string; arguments: string }>();
    for (const delta of frames.flatMap((frame) => frame['toolCalls'] as Json[])) {
      const index = Number(delta['index']);
      const fn = delta['function'] as Json;
      const entry = byIndex.get(index) ?? { arguments: '' };
      if (delta['id'] !== undefined) Object.assign(entry, { id: delta['id'], type: delta['type'] });
      if (fn['name'] !== undefined) entry.name = String(fn['name']);
      entry.arguments += String(fn['arguments'] ?? '');
      byIndex.set(index, entry);
    }
    expect([...byIndex.entries()]).toEqual([
      [0, { id: 'call_w1', type: 'function', name: 'get_weather', arguments: '{"city":"Paris"}' }],
      [1, { id: 'call_t1', type: 'function', name: 'get_time', arguments: '{"tz":"CET"}' }],
    ]);
    // Before the reply's is_last chunk, which comes before completed.
    const order = sse.messages.map((message) => message.event ?? (JSON.parse(message.data) as Json)['is_last']);
    const lastChunk = order.indexOf(true);
    expect(lastChunk).toBeGreaterThan(order.lastIndexOf('message.tool_calls'));
    expect(order.indexOf('message.completed')).toBeGreaterThan(lastChunk);
  });
});
