import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { APIError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { parseModels } from '../../src/modelsFile.ts';
import type { ChatServerOptions } from '../../src/server.ts';
import { startFakeUpstream } from '../support/fakeUpstream.ts';
import type { FakeUpstream } from '../support/fakeUpstream.ts';
import { api, startServer, WsClient } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';

let running: RunningServer | undefined;
const fakes: FakeUpstream[] = [];
const clients: WsClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await running?.close();
  running = undefined;
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

/** Two fake upstreams, `fast` (falling back to `backup`) and `backup`, and the simulated `sim`, as the file has them. */
async function start(options: ChatServerOptions = {}, fastFallbacks: string[] = ['backup']) {
  const [fast, backup] = await Promise.all([startFakeUpstream(), startFakeUpstream()]);
  fakes.push(fast, backup);
  const models = parseModels(
    {
      default: 'fast',
      models: [
        { name: 'fast', provider: 'openai', baseUrl: fast.baseUrl, apiKeyEnv: 'FAST_KEY', model: 'upstream-model-id', fallbacks: fastFallbacks },
        { name: 'backup', provider: 'openai', baseUrl: backup.baseUrl, model: 'other-id' },
        { name: 'sim', provider: 'simulated' },
      ],
    },
    { FAST_KEY: 'sk-fast' },
  );
  running = await startServer({ models, llmRetries: 0, retryBaseMs: 5, ...options });
  return { server: running, fast, backup };
}

const sdk = (base: string) => new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0 });
const ask = (server: RunningServer, model: string | undefined, content = 'hi') =>
  api(server.url, 'POST', '/v1/chat/completions', { ...(model !== undefined ? { model } : {}), messages: [{ role: 'user', content }] });

async function failure(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof APIError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('several models from one file', () => {
  it('lists the names on /v1/models; a request’s model picks one, each with its own key and upstream model id', async () => {
    const { server, fast, backup } = await start();
    const listed = [];
    for await (const model of sdk(server.url).models.list()) listed.push(model.id);
    expect(listed).toEqual(['fast', 'backup', 'sim']);

    const byDefault = await ask(server, undefined);
    expect(byDefault.body).toMatchObject({ model: 'fast', choices: [{ message: { content: 'Hello, world' } }] });
    expect(fast.requests[0]?.body['model']).toBe('upstream-model-id');
    expect(fast.requests[0]?.headers['authorization']).toBe('Bearer sk-fast');
    const viaBackup = await ask(server, 'backup');
    expect(viaBackup.body['model']).toBe('backup');
    expect(backup.requests[0]?.body['model']).toBe('other-id');
    const simulated = await ask(server, 'sim', 'yo');
    expect(simulated.body).toMatchObject({ model: 'sim', choices: [{ message: { content: [1, 2, 3, 4, 5].map((n) => `chunk ${n}: yo`).join('') } }] });
    expect(fast.requests).toHaveLength(1);
    expect(backup.requests).toHaveLength(1);
  });

  it('an unknown model is 404 model_not_found in OpenAI’s error shape, everywhere a model can be named', async () => {
    const { server, fast } = await start();
    const unknown = await failure(sdk(server.url).chat.completions.create({ model: 'gpt-9', messages: [{ role: 'user', content: 'hi' }] }));
    expect(unknown.status).toBe(404);
    expect(unknown.error).toEqual({ message: 'No model named "gpt-9"; GET /v1/models lists them.', type: 'invalid_request_error', param: null, code: 'model_not_found' });
    expect((await failure(sdk(server.url).models.retrieve('gpt-9'))).code).toBe('model_not_found');
    expect(await sdk(server.url).models.retrieve('backup')).toMatchObject({ id: 'backup', object: 'model' });
    const session = await api(server.url, 'POST', '/api/sessions', { model: 'gpt-9' });
    expect(session.status).toBe(404);
    expect(session.body).toMatchObject({ error: { code: 'model_not_found' } });
    const { client, sessionId } = await WsClient.session(server.wsUrl);
    clients.push(client);
    client.send(JSON.stringify({ type: 'message', text: 'hi', model: 'gpt-9' }));
    expect(await client.waitFor((frame) => frame.type === 'error')).toMatchObject({ code: 'model_not_found' });
    const rest = await api(server.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'hi', model: 'gpt-9' });
    expect(rest.status).toBe(404);
    expect(fast.requests).toHaveLength(0);
  });

  it('a session may name its model, a message may name another; replies say which model answered', async () => {
    const { server, fast, backup } = await start();
    const created = await api(server.url, 'POST', '/api/sessions', { model: 'backup' });
    const sessionId = String(created.body['sessionId']);
    const client = await WsClient.open(`${server.wsUrl}?sessionId=${sessionId}`);
    clients.push(client);
    client.send('first');
    await client.waitForCount((frame) => frame.type === 'completed', 1);
    client.send(JSON.stringify({ type: 'message', text: 'second', model: 'sim' }));
    await client.waitForCount((frame) => frame.type === 'completed', 2);
    await api(server.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'third', model: 'fast' });
    await client.waitForCount((frame) => frame.type === 'completed', 3);
    expect(client.frames.filter((frame) => frame.type === 'completed').map((frame) => frame['model'])).toEqual(['backup', 'sim', 'fast']);
    expect(backup.requests).toHaveLength(1);
    expect(fast.requests).toHaveLength(1);
    const view = await api(server.url, 'GET', `/api/sessions/${sessionId}`);
    expect(view.body['model']).toBe('backup');
    expect((view.body['messages'] as Json[]).filter((message) => message['role'] === 'assistant').map((message) => message['model'])).toEqual(['backup', 'sim', 'fast']);
  });

  it('falls back in order on a 503 before the first token; the response names the model that answered', async () => {
    const { server, fast, backup } = await start();
    fast.enqueue({ kind: 'status', status: 503 });
    const stream = await sdk(server.url).chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(new Set(chunks.map((chunk) => chunk.model))).toEqual(new Set(['backup']));
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('Hello, world');
    expect(fast.requests).toHaveLength(1);
    expect(backup.requests).toHaveLength(1);
    // The same for a WebSocket watcher and the stored reply.
    fast.enqueue({ kind: 'status', status: 500 });
    const { client, sessionId } = await WsClient.session(server.wsUrl);
    clients.push(client);
    client.send('again');
    expect(await client.waitFor((frame) => frame.type === 'completed')).toMatchObject({ model: 'backup' });
    const view = await api(server.url, 'GET', `/api/sessions/${sessionId}`);
    expect((view.body['messages'] as Json[]).at(-1)).toMatchObject({ status: 'complete', model: 'backup' });
  });

  it('falls back on a connection error and on a first-token timeout too, but not on a 400', async () => {
    const { server, fast, backup } = await start({ firstTokenTimeoutMs: 200 });
    fast.enqueue({ kind: 'drop', pieces: [] });
    expect((await ask(server, 'fast')).body['model']).toBe('backup');
    fast.enqueue({ kind: 'stream', pieces: ['late'], firstByteDelayMs: 1_000 });
    expect((await ask(server, 'fast')).body['model']).toBe('backup');
    fast.enqueue({ kind: 'status', status: 400 });
    const refused = await ask(server, 'fast');
    expect(refused.status).toBe(502);
    expect(refused.body).toMatchObject({ error: { code: 'upstream_error' } });
    expect(backup.requests).toHaveLength(2);
  });

  it('does not fall back once the first token was streamed: the reply fails as it would alone', async () => {
    const { server, fast, backup } = await start();
    fast.enqueue({ kind: 'drop', pieces: ['half '] });
    const stream = await sdk(server.url).chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const texts: string[] = [];
    const error = await failure(
      (async () => {
        for await (const chunk of stream) texts.push(chunk.choices[0]?.delta.content ?? '');
      })(),
    );
    expect(texts.join('')).toBe('half ');
    expect(error.code).toBe('upstream_error');
    expect(backup.requests).toHaveLength(0);
  });

  it('tries the fallbacks in order, on a 429 as on a 5xx: the first that answers is the model named', async () => {
    const { server, fast, backup } = await start({}, ['backup', 'sim']);
    // fast is limited (429, no Retry-After), backup is down (503): sim, the second fallback, answers.
    fast.enqueue({ kind: 'status', status: 429 });
    backup.enqueue({ kind: 'status', status: 503 });
    const answer = await ask(server, 'fast', 'yo');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ model: 'sim', choices: [{ message: { content: [1, 2, 3, 4, 5].map((n) => `chunk ${n}: yo`).join('') } }] });
    expect(fast.requests).toHaveLength(1);
    expect(backup.requests).toHaveLength(1);
    expect(backup.requests[0]!.receivedAt).toBeGreaterThanOrEqual(fast.requests[0]!.receivedAt);
    // A 429 with a fallback left is not the client's 429: backup answers it alone.
    fast.enqueue({ kind: 'status', status: 429 });
    expect((await ask(server, 'fast')).body).toMatchObject({ model: 'backup', choices: [{ message: { content: 'Hello, world' } }] });
    expect(fast.requests).toHaveLength(2);
    expect(backup.requests).toHaveLength(2);
  });

  it('each model has its own circuit breaker, on /api/status; an open one is skipped for its fallback', async () => {
    const { server, fast, backup } = await start({ breakerFailures: 1, breakerCooldownMs: 60_000 });
    fast.enqueue({ kind: 'status', status: 500 });
    expect((await ask(server, 'fast')).body['model']).toBe('backup');
    const status = await api(server.url, 'GET', '/api/status');
    const breakers = Object.fromEntries((status.body['models'] as Json[]).map((model) => [model['name'], (model['breaker'] as Json)['state']]));
    expect(breakers).toEqual({ fast: 'open', backup: 'closed', sim: 'closed' });
    expect(status.body).toMatchObject({ defaultModel: 'fast', provider: { name: 'openai', model: 'upstream-model-id', breaker: { state: 'open' } } });
    expect((status.body['models'] as Json[])[0]).toMatchObject({ name: 'fast', provider: 'openai', model: 'upstream-model-id', fallbacks: ['backup'] });
    // fast is not called while open; backup answers.
    expect((await ask(server, 'fast')).body['model']).toBe('backup');
    expect(fast.requests).toHaveLength(1);
    expect(backup.requests).toHaveLength(2);
  });
});

describe('a stored session whose model left the models file', () => {
  it('answers with the new default after a restart, and a message may still name a model', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'llm-chat-models-'));
    try {
      const path = join(directory, 'db.sqlite');
      const before = parseModels({ default: 'sim', models: [{ name: 'sim', provider: 'simulated' }, { name: 'sim-old', provider: 'simulated' }] }, {});
      running = await startServer({ models: before, store: openSqliteStore({ path }) });
      const created = await api(running.url, 'POST', '/api/sessions', { model: 'sim-old' });
      const sessionId = String(created.body['sessionId']);
      await running.close();
      const after = parseModels({ default: 'sim-new', models: [{ name: 'sim-new', provider: 'simulated' }, { name: 'sim', provider: 'simulated' }] }, {});
      running = await startServer({ models: after, store: openSqliteStore({ path }) });
      const client = await WsClient.open(`${running.wsUrl}?sessionId=${sessionId}`);
      clients.push(client);
      client.send('hi');
      expect(await client.waitFor((frame) => frame.type === 'completed' || frame.type === 'error')).toMatchObject({ type: 'completed', model: 'sim-new' });
      client.send(JSON.stringify({ type: 'message', text: 'again', model: 'sim' }));
      await client.waitForCount((frame) => frame.type === 'completed', 2);
      const view = await api(running.url, 'GET', `/api/sessions/${sessionId}`);
      expect((view.body['messages'] as Json[]).filter((message) => message['role'] === 'assistant').map((message) => message['model'])).toEqual(['sim-new', 'sim']);
    } finally {
      await running?.close();
      running = undefined;
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe("an upstream's Retry-After", () => {
  it('is honoured by retries: the next attempt waits at least that long', async () => {
    const { server, fast } = await start({ llmRetries: 1 }, []);
    fast.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '1' } });
    const answer = await ask(server, 'fast');
    expect(answer.body['model']).toBe('fast');
    expect(fast.requests).toHaveLength(2);
    expect(fast.requests[1]!.receivedAt - fast.requests[0]!.receivedAt).toBeGreaterThanOrEqual(990);
  });

  it('a 429 with no fallback left reaches the client as 429 rate_limited with Retry-After, and the breaker holds calls that long', async () => {
    const { server, fast } = await start({}, []);
    fast.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '30' } });
    const limited = await failure(sdk(server.url).chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }] }));
    expect(limited.status).toBe(429);
    expect(limited.error).toMatchObject({ code: 'rate_limited', type: 'rate_limit_error' });
    expect(limited.headers?.get('retry-after')).toBe('30');
    // Held: the next call fails at once, without reaching the upstream, with what is left to wait.
    const again = await ask(server, 'fast');
    expect(again.status).toBe(429);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThanOrEqual(29);
    expect(fast.requests).toHaveLength(1);
    const status = await api(server.url, 'GET', '/api/status');
    expect(((status.body['models'] as Json[])[0]!['breaker'] as Json)['heldUntil']).toEqual(expect.any(Number));
    // Over WebSocket: an error frame with the reply's id and retryAfterMs.
    const { client } = await WsClient.session(server.wsUrl);
    clients.push(client);
    client.send('hi');
    expect(await client.waitFor((frame) => frame.type === 'error')).toMatchObject({ code: 'rate_limited', retryAfterMs: expect.any(Number), messageId: expect.any(String) });
  });

  it('a 503 with Retry-After holds the model too, and its fallback answers meanwhile', async () => {
    const { server, fast, backup } = await start();
    fast.enqueue({ kind: 'status', status: 503, headers: { 'retry-after': '30' } });
    expect((await ask(server, 'fast')).body['model']).toBe('backup');
    expect((await ask(server, 'fast')).body['model']).toBe('backup');
    expect(fast.requests).toHaveLength(1);
    expect(backup.requests).toHaveLength(2);
  });
});
