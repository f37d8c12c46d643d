import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { APIError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/domain/ports.ts';
import { requestTokens } from '../../src/domain/historyBudget.ts';
import { parseModels } from '../../src/modelsFile.ts';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { countTokens } from '../../src/infra/tokenizer.ts';
import { api, startServer, WsClient } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';
import { admin, ADMIN_TOKEN } from '../support/keys.ts';

let running: RunningServer | undefined;
const closers: (() => void)[] = [];
const afterClose: (() => void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await running?.close();
  running = undefined;
  for (const cleanup of afterClose.splice(0)) cleanup();
});

/** Real timers, and a wall clock the test can move: "now" starts at 23:59:50 UTC. */
function movableClock(start = Date.UTC(2026, 2, 10, 23, 59, 50)): Clock & { moveTo(ms: number): void } {
  let offset = start - Date.now();
  return {
    now: () => Date.now() + offset,
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
    moveTo(ms) {
      offset = ms - Date.now();
    },
  };
}

const MODELS = parseModels({ default: 'sim', models: [{ name: 'sim', provider: 'simulated' }, { name: 'sim-b', provider: 'simulated' }, { name: 'premium', provider: 'simulated' }] }, {});
// What one simulated reply to "hi" costs, counted with the tokenizer (the model reports it so).
const IN = requestTokens([{ role: 'user', content: 'hi' }], countTokens);
const OUT = countTokens([1, 2, 3, 4, 5].map((n) => `chunk ${n}: hi`).join(''));
const REPLY = IN + OUT;

async function keyed(clock = movableClock()) {
  running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, messagesPerMinute: 0, models: MODELS, clock, usageFlushMs: 20 });
  return { server: running, clock };
}

async function makeKey(url: string, name: string, limits: Json) {
  const created = await api(url, 'POST', '/admin/keys', { name, limits }, admin());
  expect(created.status).toBe(201);
  const key = String(created.body['key']);
  return { id: String(created.body['id']), name, key, headers: { authorization: `Bearer ${key}` } };
}

async function converse(client: WsClient, text: string, model?: string) {
  const before = client.frames.filter((frame) => frame.type === 'completed' || frame.type === 'error').length;
  client.send(JSON.stringify({ type: 'message', text, ...(model ? { model } : {}) }));
  const [end] = (await client.waitForCount((frame) => frame.type === 'completed' || frame.type === 'error', before + 1)).slice(before);
  return end!;
}

async function failure(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof APIError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

describe('per-key token budgets (limits.tokensPerDay), on an injected clock', () => {
  it('past the budget every surface answers budget_exceeded with the reset time; the next UTC day it passes again', async () => {
    const { server, clock } = await keyed();
    const key = await makeKey(server.url, 'metered', { tokensPerDay: REPLY + 1 });
    const { client, sessionId } = await WsClient.session(server.wsUrl, { headers: key.headers });
    closers.push(() => client.close());
    // Under the budget at the start of each: two replies go through (a reply in flight is never cut).
    expect((await converse(client, 'hi')).type).toBe('completed');
    expect((await converse(client, 'hi')).type).toBe('completed');
    const midnight = Date.UTC(2026, 2, 11);

    const refused = await converse(client, 'hi');
    expect(refused).toMatchObject({ type: 'error', code: 'budget_exceeded', resetsAt: midnight, retryAfterMs: expect.any(Number) });
    expect(Number(refused['retryAfterMs'])).toBeLessThanOrEqual(10_000);
    expect(String(refused['message'])).toContain('2026-03-11T00:00:00.000Z');
    const rest = await api(server.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'hi' }, key.headers);
    expect(rest.status).toBe(429);
    expect(rest.body['error']).toMatchObject({ code: 'budget_exceeded', resetsAt: midnight });
    expect(Number(rest.headers.get('retry-after'))).toBeGreaterThan(0);
    const sdk = new OpenAI({ apiKey: key.key, baseURL: `${server.url}/v1`, maxRetries: 0 });
    const v1 = await failure(sdk.chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] }));
    expect(v1.status).toBe(429);
    expect(v1.error).toMatchObject({ code: 'budget_exceeded', type: 'rate_limit_error' });
    // The reset time in the message, and a Retry-After the SDKs honour.
    expect(v1.message).toContain('2026-03-11T00:00:00.000Z');
    expect(Number(v1.headers?.get('retry-after'))).toBeGreaterThan(0);

    // Another key is not held back by this one's spending.
    const other = await makeKey(server.url, 'fresh', { tokensPerDay: REPLY + 1 });
    expect((await sdk.withOptions({ apiKey: other.key }).chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] })).usage?.total_tokens).toBe(REPLY);

    clock.moveTo(midnight + 1_000);
    expect((await converse(client, 'hi')).type).toBe('completed');
    const usage = await api(server.url, 'GET', '/api/usage?from=2026-03-10&to=2026-03-11', undefined, key.headers);
    expect(usage.body).toMatchObject({ keyId: key.id, tokensPerDay: REPLY + 1, spentToday: REPLY, resetsAt: Date.UTC(2026, 2, 12) });
    expect(usage.body['usage']).toEqual([
      { day: '2026-03-10', model: 'sim', inputTokens: 2 * IN, outputTokens: 2 * OUT },
      { day: '2026-03-11', model: 'sim', inputTokens: IN, outputTokens: OUT },
    ]);
  });

  it('GET /api/usage shows the caller’s own tokens only; GET /admin/usage every key’s by name; metrics name keys, never secrets', async () => {
    const { server } = await keyed();
    const alice = await makeKey(server.url, 'alice', {});
    const bob = await makeKey(server.url, 'bob', {});
    const sdk = (key: string) => new OpenAI({ apiKey: key, baseURL: `${server.url}/v1`, maxRetries: 0 });
    await sdk(alice.key).chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] });
    await sdk(alice.key).chat.completions.create({ model: 'sim-b', messages: [{ role: 'user', content: 'hi' }] });
    await sdk(bob.key).chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] });

    const mine = await api(server.url, 'GET', '/api/usage', undefined, bob.headers);
    expect(mine.body).toMatchObject({ keyId: bob.id, tokensPerDay: null, spentToday: REPLY });
    expect((mine.body['usage'] as Json[]).map((row) => [row['day'], row['model']])).toEqual([['2026-03-10', 'sim']]);
    expect((await api(server.url, 'GET', '/api/usage')).status).toBe(401);
    expect((await api(server.url, 'GET', '/api/usage?from=2026-13-01', undefined, bob.headers)).status).toBe(400);
    expect((await api(server.url, 'GET', `/api/usage?keyId=${alice.id}`, undefined, bob.headers)).status).toBe(400);

    const all = await api(server.url, 'GET', '/admin/usage', undefined, admin());
    const byName = Object.fromEntries((all.body['keys'] as Json[]).map((row) => [row['name'], row]));
    expect(Object.keys(byName).sort()).toEqual(['alice', 'bob']);
    expect((byName['alice']!['usage'] as Json[]).map((row) => row['model'])).toEqual(['sim', 'sim-b']);
    expect(Number(byName['alice']!['inputTokens']) + Number(byName['alice']!['outputTokens'])).toBe(2 * REPLY);
    expect((await api(server.url, 'GET', `/admin/usage?keyId=${bob.id}`, undefined, admin())).body['keys']).toEqual([expect.objectContaining({ keyId: bob.id, name: 'bob' })]);
    expect((await api(server.url, 'GET', '/admin/usage', undefined, alice.headers)).status).toBe(401);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain(`llm_chat_tokens_total{key="alice",model="sim-b",direction="output"} ${OUT}`);
    expect(metrics).toContain(`llm_chat_tokens_total{key="bob",model="sim",direction="input"} ${IN}`);
    expect(metrics).not.toContain(alice.key);
    expect(metrics).not.toContain(alice.id);
  });

  it('a cancelled reply is not charged', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, messagesPerMinute: 0, models: MODELS, clock: movableClock(), usageFlushMs: 20, simIntervalMs: 30, simChunks: 50 });
    const key = await makeKey(running.url, 'canceller', {});
    const { client } = await WsClient.session(running.wsUrl, { headers: key.headers });
    closers.push(() => client.close());
    client.send(JSON.stringify({ type: 'message', text: 'long', model: 'sim-b' }));
    await client.waitFor((frame) => frame.type === 'chunk');
    client.send(JSON.stringify({ type: 'cancel' }));
    await client.waitFor((frame) => frame.type === 'cancelled');
    expect((await api(running.url, 'GET', '/api/usage', undefined, key.headers)).body).toMatchObject({ spentToday: 0, usage: [] });
  });

  it('spent tokens are in the store: a budget spent before a restart is still spent after it (SQLite)', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'llm-chat-budget-'));
    afterClose.push(() => rmSync(directory, { recursive: true, force: true }));
    const path = join(directory, 'db.sqlite');
    const clock = movableClock();
    const start = () => startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, messagesPerMinute: 0, models: MODELS, clock, store: openSqliteStore({ path }) });
    running = await start();
    const key = await makeKey(running.url, 'once', { tokensPerDay: 1 });
    const sdk = (url: string) => new OpenAI({ apiKey: key.key, baseURL: `${url}/v1`, maxRetries: 0 });
    await sdk(running.url).chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] });
    // Refused at once: the count is this node's before it is written.
    expect((await failure(sdk(running.url).chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] }))).code).toBe('budget_exceeded');
    await running.close();
    running = await start();
    expect((await failure(sdk(running.url).chat.completions.create({ model: 'sim', messages: [{ role: 'user', content: 'hi' }] }))).code).toBe('budget_exceeded');
    expect((await api(running.url, 'GET', '/api/usage', undefined, key.headers)).body).toMatchObject({ spentToday: REPLY });
  });
});

describe('per-key models (limits.models)', () => {
  it('a key sees and uses only its models: /v1/models lists them, any other is model_not_found; with none named it answers with the first it may use', async () => {
    const { server } = await keyed();
    const key = await makeKey(server.url, 'limited', { models: ['sim-b'] });
    const sdk = new OpenAI({ apiKey: key.key, baseURL: `${server.url}/v1`, maxRetries: 0 });
    const listed = [];
    for await (const model of sdk.models.list()) listed.push(model.id);
    expect(listed).toEqual(['sim-b']);
    expect((await failure(sdk.models.retrieve('premium'))).code).toBe('model_not_found');
    const refused = await failure(sdk.chat.completions.create({ model: 'premium', messages: [{ role: 'user', content: 'hi' }] }));
    expect(refused.status).toBe(404);
    expect(refused.code).toBe('model_not_found');
    expect((await sdk.chat.completions.create({ model: 'sim-b', messages: [{ role: 'user', content: 'hi' }] })).model).toBe('sim-b');
    // Naming none: not the server's default (sim, not allowed), the key's own first.
    const named = await sdk.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] } as unknown as Parameters<typeof sdk.chat.completions.create>[0] & { stream?: false });
    expect(named.model).toBe('sim-b');
    expect((await api(server.url, 'POST', '/api/sessions', { model: 'premium' }, key.headers)).status).toBe(404);
    const { client } = await WsClient.session(server.wsUrl, { headers: key.headers });
    closers.push(() => client.close());
    expect(await converse(client, 'hi', 'premium')).toMatchObject({ type: 'error', code: 'model_not_found' });
    expect(await converse(client, 'hi')).toMatchObject({ type: 'completed', model: 'sim-b' });
    // A key without a list may use every model.
    const free = await makeKey(server.url, 'free', {});
    expect((await api(server.url, 'GET', '/v1/models', undefined, free.headers)).body['data']).toHaveLength(3);
    // The admin API shows and changes the list.
    const patched = await api(server.url, 'PATCH', `/admin/keys/${key.id}`, { limits: { models: null } }, admin());
    expect(patched.body['limits']).toEqual({});
  });
});
