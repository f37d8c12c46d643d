import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { SessionStore } from '../../src/domain/ports.ts';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { api, startServer } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { startFakeUpstream } from '../support/fakeUpstream.ts';
import type { FakeUpstream } from '../support/fakeUpstream.ts';

/** The real SQLite store, with every write it is asked for written down (which operation, which session). */
function recorded(inner: SessionStore): SessionStore & { writes: string[] } {
  const writes: string[] = [];
  return {
    writes,
    ...(inner.durable === undefined ? {} : { durable: inner.durable }),
    ...(inner.keys === undefined ? {} : { keys: inner.keys }),
    create: (record) => (writes.push(`create ${record.sessionId}`), inner.create(record)),
    save: (update) => (writes.push(`save ${update.sessionId}`), inner.save(update)),
    delete: (sessionId) => (writes.push(`delete ${sessionId}`), inner.delete(sessionId)),
    load: (sessionId, window) => inner.load(sessionId, window),
    ping: () => inner.ping(),
    close: () => inner.close(),
    listSessions: (query) => inner.listSessions(query),
    idleSessions: (before, limit) => inner.idleSessions(before, limit),
    listMessages: (sessionId, query) => inner.listMessages(sessionId, query),
    chunksAfter: (sessionId, afterSeq) => inner.chunksAfter(sessionId, afterSeq),
  };
}

let running: RunningServer | undefined;
let upstream: FakeUpstream | undefined;
let dir: string | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
  await upstream?.close();
  upstream = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function start() {
  dir = mkdtempSync(join(tmpdir(), 'llm-chat-ephemeral-'));
  const store = recorded(openSqliteStore({ path: join(dir, 'test.sqlite') }));
  upstream = await startFakeUpstream();
  running = await startServer({ store, llmProvider: 'openai', llmBaseUrl: upstream.baseUrl, llmModel: 'fake-model', llmApiKey: 'key' });
  const sdk = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: 'anything', maxRetries: 0 });
  return { store, sdk, url: running.url };
}

describe('an ephemeral /v1 request (no X-Session-Id)', () => {
  it('writes nothing to the store, before, during or after its reply, and its usage is counted', async () => {
    const { store, sdk, url } = await start();
    upstream!.enqueue({ kind: 'stream', pieces: ['one ', 'two ', 'three'], intervalMs: 30, usage: { prompt_tokens: 11, completion_tokens: 3 } });
    const stream = await sdk.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
      // Mid-stream: the reply is live, and still nothing was written.
      expect(store.writes).toEqual([]);
    }
    expect(text).toBe('one two three');
    expect(usage).toEqual({ prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 });
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the end's clean-up run
    expect(store.writes).toEqual([]);
    expect((await store.listSessions({ limit: 10 })).sessions).toEqual([]);
    expect(running!.server.registry.activeCount).toBe(0);
    const metrics = await fetch(`${url}/metrics`).then((response) => response.text());
    expect(metrics).toMatch(/^llm_chat_tokens_total\{kind="input"\} 11$/m);
    expect(metrics).toMatch(/^llm_chat_tokens_total\{kind="output"\} 3$/m);
  });

  it('a failing upstream still ends it with an error and leaves nothing behind', async () => {
    const { store, sdk } = await start();
    upstream!.enqueue({ kind: 'status', status: 400, body: { error: { message: 'bad', type: 'invalid_request_error' } } });
    await expect(sdk.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], stream: true })).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(store.writes).toEqual([]);
    expect(running!.server.registry.activeCount).toBe(0);
  });

  it('a named session (X-Session-Id) is still stored, reply and usage included', async () => {
    const { store, url } = await start();
    const sessionId = String((await api(url, 'POST', '/api/sessions')).body['sessionId']);
    const sdk = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'anything', maxRetries: 0, defaultHeaders: { 'x-session-id': sessionId } });
    const answer = await sdk.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(answer.choices[0]?.message.content).toBe('Hello, world');
    const deadline = Date.now() + 5000;
    let stored = await store.load(sessionId);
    while (stored?.messages.at(-1)?.status !== 'complete' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      stored = await store.load(sessionId);
    }
    expect(store.writes).toContain(`create ${sessionId}`);
    expect(stored?.messages.map((message) => [message.role, message.content, message.status])).toEqual([
      ['user', 'hi', 'complete'],
      ['assistant', 'Hello, world', 'complete'],
    ]);
    expect(stored?.messages[1]?.usage).toEqual({ inputTokens: 7, outputTokens: 3 });
  });
});
