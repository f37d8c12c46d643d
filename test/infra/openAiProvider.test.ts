import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCircuitBreaker } from '../../src/actors/circuitBreaker.ts';
import type { CircuitBreaker } from '../../src/actors/circuitBreaker.ts';
import { coalescingProvider } from '../../src/actors/coalescingProvider.ts';
import { guardedProvider } from '../../src/actors/guardedProvider.ts';
import type { GuardOptions } from '../../src/actors/guardedProvider.ts';
import { ChatError } from '../../src/domain/errors.ts';
import { requestTokens, turnTokens } from '../../src/domain/historyBudget.ts';
import type { Message } from '../../src/domain/message.ts';
import type { GenerationRequest, ModelProvider, ProviderChunk } from '../../src/domain/ports.ts';
import { silentLogger } from '../../src/infra/silentLogger.ts';
import { createOpenAiProvider } from '../../src/infra/openAiProvider.ts';
import type { OpenAiProviderOptions } from '../../src/infra/openAiProvider.ts';
import { systemClock } from '../../src/infra/systemClock.ts';
import { countTokens } from '../../src/infra/tokenizer.ts';
import { startFakeUpstream } from '../support/fakeUpstream.ts';
import type { FakeUpstream } from '../support/fakeUpstream.ts';

let upstream: FakeUpstream;
let breakers: CircuitBreaker[] = [];

beforeEach(async () => {
  upstream = await startFakeUpstream();
});
afterEach(async () => {
  for (const breaker of breakers.splice(0)) breaker.stop();
  await upstream.close();
});

function provider(guard: Partial<GuardOptions> = {}, openAi: Partial<OpenAiProviderOptions> = {}): ModelProvider {
  const breaker = createCircuitBreaker({ name: 'openai', clock: systemClock, logger: silentLogger, failureThreshold: 5, cooldownMs: 60_000 });
  breakers.push(breaker);
  const base = createOpenAiProvider({ baseUrl: upstream.baseUrl, apiKey: 'sk-test', model: 'fake-model', ...openAi });
  const guarded = guardedProvider(base, {
    breaker,
    clock: systemClock,
    logger: silentLogger,
    firstTokenTimeoutMs: 1_000,
    stallTimeoutMs: 1_000,
    retries: 2,
    retryBaseMs: 5,
    ...guard,
  });
  return coalescingProvider(guarded, { clock: systemClock, flushMs: 16 });
}

function request(prompt: string, history: Message[] = []): GenerationRequest {
  return { sessionId: 's', messageId: 'r1', prompt, history };
}

async function collect(model: ModelProvider, req: GenerationRequest, signal = new AbortController().signal) {
  const chunks: ProviderChunk[] = [];
  try {
    for await (const piece of model.stream(req, signal)) chunks.push(piece);
    return { chunks, text: chunks.map((piece) => piece.text).join(''), error: undefined };
  } catch (error) {
    return { chunks, text: chunks.map((piece) => piece.text).join(''), error: error as ChatError };
  }
}

const turn = (role: 'user' | 'assistant', content: string, n: number): Message => ({
  id: `m${n}`,
  order: 2 * n,
  role,
  content,
  status: 'complete',
  createdAt: n,
  updatedAt: n,
});

describe('OpenAI-compatible provider against a fake upstream', () => {
  it('streams a normal answer: coalesced text, is_last on the final chunk, usage recorded', async () => {
    const result = await collect(provider({}, { systemPrompt: 'Be brief.', temperature: 0.2, maxTokens: 50 }), request('hi'));
    expect(result.error).toBeUndefined();
    expect(result.text).toBe('Hello, world');
    expect(result.chunks.at(-1)).toMatchObject({ last: true, usage: { inputTokens: 7, outputTokens: 3 } });
    expect(result.chunks.slice(0, -1).every((piece) => !piece.last)).toBe(true);
    const [sent] = upstream.requests;
    expect(sent?.headers['authorization']).toBe('Bearer sk-test');
    expect(sent?.body).toMatchObject({
      model: 'fake-model',
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.2,
      max_tokens: 50,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
      ],
    });
  });

  it('coalesces a fast stream of many deltas into few chunks', async () => {
    upstream.enqueue({ kind: 'stream', pieces: Array.from({ length: 200 }, (_, index) => `t${index} `) });
    const result = await collect(provider(), request('count'));
    expect(result.text).toBe(Array.from({ length: 200 }, (_, index) => `t${index} `).join(''));
    expect(result.chunks.length).toBeLessThan(20);
  });

  it('sends the history oldest first, and drops the oldest turns past the budget but keeps the system prompt', async () => {
    const history = [turn('user', 'a'.repeat(400), 1), turn('assistant', 'b'.repeat(400), 2), turn('user', 'recent question', 3), turn('assistant', 'recent answer', 4)];
    await collect(provider({}, { systemPrompt: 'S', historyBudgetTokens: 60 }), request('now', history));
    expect(upstream.requests[0]?.body.messages).toEqual([
      { role: 'system', content: 'S' },
      { role: 'user', content: 'recent question' },
      { role: 'assistant', content: 'recent answer' },
      { role: 'user', content: 'now' },
    ]);
    await collect(provider({}, { historyBudgetTokens: 10_000 }), request('now', history));
    expect(upstream.requests[1]?.body.messages).toHaveLength(5);
  });

  it('counts the history budget with the tokenizer (o200k_base), not characters ÷ 4', async () => {
    // Japanese is ~1 token per 1.3 characters and repeated English words ~1 per 5: characters ÷ 4 is wrong both ways.
    const question = '日本語のテキストを数えてください。'.repeat(8);
    const answer = ' hello'.repeat(60);
    expect(countTokens(question)).toBeGreaterThan(question.length / 4 + 20);
    expect(countTokens(answer)).toBeLessThan(answer.length / 4 - 20);
    const history = [turn('user', question, 1), turn('assistant', answer, 2)];
    const exact = requestTokens([{ role: 'user', content: 'now' }], countTokens) + turnTokens(history[0]!, countTokens) + turnTokens(history[1]!, countTokens);
    await collect(provider({}, { historyBudgetTokens: exact }), request('now', history));
    expect(upstream.requests[0]?.body.messages).toHaveLength(3);
    // One token short: the oldest exchange no longer fits, and an answer never starts the history.
    await collect(provider({}, { historyBudgetTokens: exact - 1 }), request('now', history));
    expect(upstream.requests[1]?.body.messages).toEqual([{ role: 'user', content: 'now' }]);
  });

  it('retries HTTP 429 and 500 before the first token, then streams', async () => {
    upstream.enqueue({ kind: 'status', status: 429 }, { kind: 'status', status: 500 });
    const result = await collect(provider(), request('hi'));
    expect(result.error).toBeUndefined();
    expect(result.text).toBe('Hello, world');
    expect(upstream.requests).toHaveLength(3);
  });

  it('gives up after the configured retries with upstream_error and the upstream status', async () => {
    upstream.enqueue({ kind: 'status', status: 500 }, { kind: 'status', status: 500 }, { kind: 'status', status: 503 });
    const result = await collect(provider({ retries: 2 }), request('hi'));
    expect(result.error).toMatchObject({ code: 'upstream_error', upstreamStatus: 503 });
    expect(result.error?.message).toBe("The model's server answered with HTTP 503.");
    expect(upstream.requests).toHaveLength(3);
  });

  it('does not retry a request the upstream refuses as wrong (HTTP 400), nor leak its message', async () => {
    upstream.enqueue({ kind: 'status', status: 400, body: { error: { message: 'secret internal detail', type: 'invalid_request_error' } } });
    const result = await collect(provider(), request('hi'));
    expect(result.error).toMatchObject({ code: 'upstream_error', upstreamStatus: 400 });
    expect(result.error?.message).not.toContain('secret');
    expect(upstream.requests).toHaveLength(1);
  });

  it('an error payload after text fails the reply, keeps the text, and is not retried', async () => {
    upstream.enqueue({ kind: 'errorPayload', pieces: ['partial '], error: { message: 'overloaded', type: 'server_error' } });
    const result = await collect(provider(), request('hi'));
    expect(result.text).toBe('partial ');
    expect(result.error).toMatchObject({ code: 'upstream_error' });
    expect(upstream.requests).toHaveLength(1);
  });

  it('an error payload before any text is retried', async () => {
    upstream.enqueue({ kind: 'errorPayload', pieces: [], error: { message: 'overloaded', type: 'server_error' } });
    const result = await collect(provider(), request('hi'));
    expect(result.text).toBe('Hello, world');
    expect(upstream.requests).toHaveLength(2);
  });

  it('a stream that stalls ends with upstream_timeout and its connection is closed', async () => {
    upstream.enqueue({ kind: 'stall', pieces: ['so far'] });
    const result = await collect(provider({ stallTimeoutMs: 150 }), request('hi'));
    expect(result.text).toBe('so far');
    expect(result.error).toMatchObject({ code: 'upstream_timeout', message: "The model's server stopped sending for 150 ms." });
    await upstream.requests[0]?.aborted;
    expect(upstream.requests).toHaveLength(1);
  });

  it('a slow first byte past the first-token deadline times out, is retried, and the slow request is closed', async () => {
    upstream.enqueue({ kind: 'stream', pieces: ['late'], firstByteDelayMs: 2_000 });
    const result = await collect(provider({ firstTokenTimeoutMs: 150 }), request('hi'));
    expect(result.error).toBeUndefined();
    expect(result.text).toBe('Hello, world');
    expect(upstream.requests).toHaveLength(2);
    expect(upstream.requests[0]?.abortedAt).toBeDefined();
  });

  it('a slow first byte within the deadline is just slow', async () => {
    upstream.enqueue({ kind: 'stream', pieces: ['late'], firstByteDelayMs: 100 });
    const result = await collect(provider({ firstTokenTimeoutMs: 1_000 }), request('hi'));
    expect(result.text).toBe('late');
    expect(upstream.requests).toHaveLength(1);
  });

  it('no first token at all within the deadline, every attempt: upstream_timeout', async () => {
    upstream.enqueue({ kind: 'stall', pieces: [] }, { kind: 'stall', pieces: [] });
    const result = await collect(provider({ firstTokenTimeoutMs: 100, retries: 1 }), request('hi'));
    expect(result.error).toMatchObject({ code: 'upstream_timeout', message: "The model's server sent no first token within 100 ms." });
    expect(upstream.requests).toHaveLength(2);
  });

  it('a connection dropped mid-stream fails with upstream_error after the text already sent, without a retry', async () => {
    upstream.enqueue({ kind: 'drop', pieces: ['half an '] });
    const result = await collect(provider(), request('hi'));
    expect(result.text).toBe('half an ');
    expect(result.error).toMatchObject({ code: 'upstream_error' });
    expect(result.error?.upstreamStatus).toBeUndefined();
    expect(upstream.requests).toHaveLength(1);
  });

  it('a stream that ends without finishing is a failure, not a complete reply', async () => {
    upstream.enqueue({ kind: 'stream', pieces: ['cut'], truncated: true });
    const result = await collect(provider({ retries: 0 }), request('hi'));
    expect(result.text).toBe('cut');
    expect(result.error).toMatchObject({ code: 'upstream_error' });
  });

  it('an unreachable server is upstream_error without a status', async () => {
    const dead = await startFakeUpstream();
    const baseUrl = dead.baseUrl;
    await dead.close();
    const result = await collect(provider({ retries: 0 }, { baseUrl }), request('hi'));
    expect(result.error).toMatchObject({ code: 'upstream_error', message: "The model's server could not be reached." });
  });

  it('aborting closes the upstream connection', async () => {
    upstream.enqueue({ kind: 'stream', pieces: ['a', 'b', 'c', 'd', 'e', 'f'], intervalMs: 200 });
    const controller = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const piece of provider().stream(request('hi'), controller.signal)) seen.push(piece.text);
    })();
    await upstream.waitForRequests(1);
    await new Promise((resolve) => setTimeout(resolve, 250));
    controller.abort();
    // The latency itself is measured by bench/cancelLatency.ts, not asserted here.
    await upstream.requests[0]!.aborted;
    await done;
    expect(seen.join('')).not.toContain('f');
  });
});
