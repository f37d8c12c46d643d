/**
 * `npm run bench -- --scenario tools`: what a tool call costs per reply
 * through `/v1`, next to a plain text reply of the same size. The server runs
 * in its own process (its CPU is measured alone) with the fake
 * OpenAI-compatible upstream of the tests behind it (here, in the bench's
 * process); requests go through /v1 on loopback, non-streamed and streamed.
 */
import { performance } from 'node:perf_hooks';
import { startFakeUpstream } from '../test/support/fakeUpstream.ts';
import type { Behaviour } from '../test/support/fakeUpstream.ts';
import { startServer } from './processes.ts';
import type { ServerUnderTest } from './processes.ts';
import { summarize } from './stats.ts';

export interface ToolCallFigures {
  kind: string;
  replies: number;
  cpuMsPerReply: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

// Twelve fragments each way: the same bytes as text or as a call's arguments.
const FRAGMENTS = ['{"loc', 'ation"', ':"Par', 'is, F', 'rance', '","un', 'it":"', 'celsi', 'us","', 'days"', ':3', '}'];
const TOOLS = [
  { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string' }, days: { type: 'integer' } } } } },
  { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
];
const QUESTION = { role: 'user', content: 'What is the weather in Paris for the next three days?' };
const CALL = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: FRAGMENTS.join('') } };

interface Kind {
  name: string;
  behaviour: Behaviour;
  body: Record<string, unknown>;
}

const KINDS: Kind[] = [
  { name: 'plain text', behaviour: { kind: 'stream', pieces: FRAGMENTS }, body: { messages: [QUESTION] } },
  { name: 'one tool call', behaviour: { kind: 'stream', pieces: [], toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: FRAGMENTS }] }, body: { messages: [QUESTION], tools: TOOLS } },
  {
    name: 'two parallel tool calls',
    behaviour: {
      kind: 'stream',
      pieces: [],
      interleave: true,
      toolCalls: [
        { id: 'call_1', name: 'get_weather', arguments: FRAGMENTS.slice(0, 6) },
        { id: 'call_2', name: 'get_time', arguments: FRAGMENTS.slice(6) },
      ],
    },
    body: { messages: [QUESTION], tools: TOOLS, parallel_tool_calls: true },
  },
  {
    name: 'tool result → text',
    behaviour: { kind: 'stream', pieces: FRAGMENTS },
    body: { messages: [QUESTION, { role: 'assistant', content: null, tool_calls: [CALL] }, { role: 'tool', tool_call_id: 'call_1', content: '{"sky":"sunny","high":21}' }], tools: TOOLS },
  },
];

async function drive(url: string, body: Record<string, unknown>, stream: boolean): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fake-model', ...body, ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}) }),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`);
  return performance.now() - started;
}

export async function runToolCalls(options: { replies: number; concurrency: number; log: (line: string) => void; servers: ServerUnderTest[] }): Promise<ToolCallFigures[]> {
  const upstream = await startFakeUpstream();
  const server = await startServer('llm-chat', { llmProvider: 'openai', llmBaseUrl: upstream.baseUrl, llmModel: 'fake-model', llmRetries: 0, messagesPerMinute: 0, shedLagMs: 0 });
  options.servers.push(server);
  const url = `http://127.0.0.1:${server.port}`;
  const figures: ToolCallFigures[] = [];
  try {
    for (const stream of [false, true]) {
      for (const kind of KINDS) {
        const label = `${kind.name}${stream ? ', streamed' : ''}`;
        // Warm up (JIT, connection pool), then measure.
        upstream.enqueue(...Array.from({ length: 50 }, () => kind.behaviour));
        await Promise.all(Array.from({ length: 50 }, () => drive(url, kind.body, stream)));
        upstream.enqueue(...Array.from({ length: options.replies }, () => kind.behaviour));
        const before = await server.stats(true);
        const latencies: number[] = [];
        let next = 0;
        await Promise.all(
          Array.from({ length: options.concurrency }, async () => {
            while (next < options.replies) {
              next += 1;
              latencies.push(await drive(url, kind.body, stream));
            }
          }),
        );
        const after = await server.stats();
        const latency = summarize(latencies);
        figures.push({ kind: label, replies: latencies.length, cpuMsPerReply: (after.cpuMs - before.cpuMs) / latencies.length, latencyP50Ms: latency.p50, latencyP99Ms: latency.p99 });
        options.log(`tools: ${label}: ${latencies.length} replies, ${((after.cpuMs - before.cpuMs) / latencies.length).toFixed(3)} ms CPU each`);
      }
    }
  } finally {
    await server.stop();
    await upstream.close();
  }
  return figures;
}
