/**
 * A fast fake OpenAI-compatible upstream for the gateway figures, in its own
 * process (forked by bench/gateway.ts; tells its port over IPC). Every
 * `POST /v1/chat/completions` with `stream: true` is answered at once with
 * the real Chat Completions SSE wire format: a role delta, 20 content deltas,
 * a finish_reason, the usage chunk when `stream_options.include_usage` asks
 * for it, `data: [DONE]`, all in one write. Without `stream` it answers one
 * `chat.completion` body. So the upstream costs as little as it can, and what
 * a request costs more through llm-chat is llm-chat's.
 */
import { createServer } from 'node:http';
import { serveAsBenchChild } from './httpChild.ts';

export const UPSTREAM_DELTAS = 20;
const MODEL = 'fake-model';

const frame = (choices: unknown[], extra: Record<string, unknown> = {}) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-fast', object: 'chat.completion.chunk', created: 1_700_000_000, model: MODEL, choices, ...extra })}\n\n`;
const delta = (content: Record<string, unknown>, finishReason: string | null = null) =>
  frame([{ index: 0, delta: content, logprobs: null, finish_reason: finishReason }]);

const pieces = Array.from({ length: UPSTREAM_DELTAS }, (_, index) => `tok${index} `);
const usage = { prompt_tokens: 8, completion_tokens: UPSTREAM_DELTAS, total_tokens: 8 + UPSTREAM_DELTAS };
const streamBody = [delta({ role: 'assistant', content: '' }), ...pieces.map((text) => delta({ content: text })), delta({}, 'stop')].join('');
const bodies = {
  stream: `${streamBody}data: [DONE]\n\n`,
  streamWithUsage: `${streamBody}${frame([], { usage })}data: [DONE]\n\n`,
  whole: JSON.stringify({
    id: 'chatcmpl-fast',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: MODEL,
    choices: [{ index: 0, message: { role: 'assistant', content: pieces.join(''), refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage,
  }),
};

const server = createServer((request, response) => {
  if (request.method !== 'POST' || !request.url?.endsWith('/chat/completions')) {
    response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
    return;
  }
  const parts: Buffer[] = [];
  request.on('data', (part: Buffer) => parts.push(part));
  request.on('end', () => {
    let body: { stream?: boolean; stream_options?: { include_usage?: boolean } };
    try {
      body = JSON.parse(Buffer.concat(parts).toString()) as typeof body;
    } catch {
      response.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"bad json"}}');
      return;
    }
    if (!body.stream) {
      response.writeHead(200, { 'content-type': 'application/json' }).end(bodies.whole);
      return;
    }
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    response.end(body.stream_options?.include_usage ? bodies.streamWithUsage : bodies.stream);
  });
});
serveAsBenchChild(server);
