/**
 * Cancel latency, end to end: from the moment a client sends a cancel (REST
 * or WebSocket) to the moment the OpenAI-compatible upstream sees its HTTP
 * connection close. Everything runs on loopback: a fake upstream streaming
 * slowly, llm-chat with `--provider openai` in front of it.
 *
 *   npx tsx bench/cancelLatency.ts [rounds]
 */
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../src/infra/silentLogger.ts';
import { createChatServer } from '../src/server.ts';
import { startFakeUpstream } from '../test/support/fakeUpstream.ts';
import { WsClient } from '../test/support/harness.ts';

const rounds = Number(process.argv[2] ?? 30);
const upstream = await startFakeUpstream();
const server = createChatServer({ auth: { mode: 'none' }, llmProvider: 'openai', llmBaseUrl: upstream.baseUrl, llmModel: 'fake-model', logger: silentLogger });
const { port } = await server.listen(0, '127.0.0.1');
const base = `http://127.0.0.1:${port}`;

async function once(via: 'rest' | 'ws'): Promise<number> {
  const { client, sessionId } = await WsClient.session(`ws://127.0.0.1:${port}/ws`);
  upstream.enqueue({ kind: 'stream', pieces: Array.from({ length: 200 }, (_, index) => `w${index} `), intervalMs: 20 });
  const before = upstream.requests.length;
  client.send('a long answer please');
  await client.waitFor((frame) => frame.type === 'chunk');
  const request = upstream.requests[before]!;
  const closed = request.aborted.then(() => performance.now());
  const sentAt = performance.now();
  if (via === 'rest') await fetch(`${base}/api/sessions/${sessionId}/cancel`, { method: 'POST' });
  else client.send(JSON.stringify({ type: 'cancel' }));
  const closedAt = await closed;
  client.close();
  return closedAt - sentAt;
}

function summary(name: string, samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(2);
  return `${name.padEnd(28)} n=${sorted.length}  p50=${at(0.5)} ms  p95=${at(0.95)} ms  max=${sorted.at(-1)!.toFixed(2)} ms`;
}

const rest: number[] = [];
const ws: number[] = [];
for (let round = 0; round < rounds; round += 1) {
  rest.push(await once('rest'));
  ws.push(await once('ws'));
}
console.log('cancel → upstream connection closed (loopback, fake OpenAI-compatible upstream)');
console.log(summary('POST /api/sessions/:id/cancel', rest));
console.log(summary('WebSocket {"type":"cancel"}', ws));
await server.close();
await upstream.close();
