import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { requestTokens } from '../../src/domain/historyBudget.ts';
import type { Turn } from '../../src/domain/message.ts';
import { countTokens } from '../../src/infra/tokenizer.ts';
import type { ChatServerOptions } from '../../src/server.ts';
import { startFakeUpstream } from '../support/fakeUpstream.ts';
import type { FakeUpstream } from '../support/fakeUpstream.ts';
import { api, SseClient, startServer, WsClient } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';

let running: RunningServer | undefined;
let upstream: FakeUpstream | undefined;
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await running?.close();
  running = undefined;
  await upstream?.close();
  upstream = undefined;
});

const sdk = (base: string) => new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
const simulatedReply = (text: string) => [1, 2, 3, 4, 5].map((n) => `chunk ${n}: ${text}`).join('');

/** One reply through WebSocket with an SSE watcher beside it: the `completed` frame of each, and the stored reply. */
async function replyEverywhere(server: RunningServer, text: string) {
  const { client, sessionId } = await WsClient.session(server.wsUrl);
  closers.push(() => client.close());
  const sse = await SseClient.open(`${server.url}/sse/${sessionId}`);
  closers.push(() => sse.close());
  client.send(text);
  const completed = await client.waitFor((frame) => frame.type === 'completed');
  await sse.waitFor(() => sse.messages.find((message) => message.event === 'message.completed'));
  const sseCompleted = JSON.parse(sse.messages.find((message) => message.event === 'message.completed')!.data) as Json;
  const view = await api(server.url, 'GET', `/api/sessions/${sessionId}`);
  const stored = (view.body['messages'] as Json[]).find((message) => message['id'] === completed['messageId']);
  return { ws: completed['usage'], sse: sseCompleted['usage'], stored: stored?.['usage'] };
}

/** The same prompt over /v1, streamed with include_usage and not streamed. */
async function replyOverV1(server: RunningServer, model: string, text: string) {
  const client = sdk(server.url);
  const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: text }], stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const completion = await client.chat.completions.create({ model, messages: [{ role: 'user', content: text }] });
  return { streamed: chunks.at(-1), usage: completion.usage };
}

const openAiUsage = (input: number, output: number) => ({ prompt_tokens: input, completion_tokens: output, total_tokens: input + output });

describe('usage on every reply', () => {
  it('the simulated model reports usage counted with the tokenizer: WS, SSE, REST and /v1', async () => {
    running = await startServer();
    const expected = { inputTokens: requestTokens([{ role: 'user', content: 'count me' }], countTokens), outputTokens: countTokens(simulatedReply('count me')) };
    expect(expected.inputTokens).toBe(3 + 3 + 2); // framing, and "count me" is two o200k tokens
    const surfaces = await replyEverywhere(running, 'count me');
    expect(surfaces).toEqual({ ws: expected, sse: expected, stored: expected });

    const v1 = await replyOverV1(running, 'simulated', 'count me');
    expect(v1.streamed).toMatchObject({ choices: [], usage: openAiUsage(expected.inputTokens, expected.outputTokens) });
    expect(v1.usage).toEqual(openAiUsage(expected.inputTokens, expected.outputTokens));
  });

  async function behindFake(options: ChatServerOptions = {}) {
    upstream = await startFakeUpstream();
    running = await startServer({ llmProvider: 'openai', llmBaseUrl: upstream.baseUrl, llmModel: 'fake-model', llmRetries: 0, ...options });
    return { server: running, fake: upstream };
  }

  it("a model that reports usage: its own figures, on every surface", async () => {
    const { server, fake } = await behindFake();
    fake.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'stream' as const, pieces: ['Hello', ', ', 'world'], usage: { prompt_tokens: 11, completion_tokens: 4 } })));
    const surfaces = await replyEverywhere(server, 'hi');
    expect(surfaces).toEqual({ ws: { inputTokens: 11, outputTokens: 4 }, sse: { inputTokens: 11, outputTokens: 4 }, stored: { inputTokens: 11, outputTokens: 4 } });
    const v1 = await replyOverV1(server, 'fake-model', 'hi');
    expect(v1.streamed).toMatchObject({ choices: [], usage: openAiUsage(11, 4) });
    expect(v1.usage).toEqual(openAiUsage(11, 4));
  });

  it('a model that reports none: counted from what was sent and what came back, on every surface', async () => {
    const { server, fake } = await behindFake({ llmSystemPrompt: 'Be brief.' });
    fake.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'stream' as const, pieces: ['Bonjour', ' le', ' monde'] })));
    const surfaces = await replyEverywhere(server, 'say hello in French');
    // Counted over the messages the upstream really received (system prompt included).
    const sent = fake.requests[0]!.body.messages!;
    const turns = sent.filter((message) => message.role !== 'system') as Turn[];
    const expected = { inputTokens: requestTokens(turns, countTokens, 'Be brief.'), outputTokens: countTokens('Bonjour le monde') };
    expect(sent[0]).toEqual({ role: 'system', content: 'Be brief.' });
    expect(expected.outputTokens).toBe(3);
    expect(surfaces).toEqual({ ws: expected, sse: expected, stored: expected });
    const v1 = await replyOverV1(server, 'fake-model', 'say hello in French');
    expect(v1.streamed).toMatchObject({ choices: [], usage: openAiUsage(expected.inputTokens, expected.outputTokens) });
    expect(v1.usage).toEqual(openAiUsage(expected.inputTokens, expected.outputTokens));
  });
});
