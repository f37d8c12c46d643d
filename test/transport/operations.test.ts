import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createOpsRoutes } from '../../src/transport/opsRoutes.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import type { SessionStore } from '../../src/domain/ports.ts';
import { api, startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function scrape(url: string): Promise<{ text: string; contentType: string | null }> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  return { text: await response.text(), contentType: response.headers.get('content-type') };
}

/** The value of one sample line, e.g. `llm_chat_messages_total{outcome="complete"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  it('counts connections, sessions, messages by outcome, chunks and timings, with no session id in any label', async () => {
    running = await startServer({ simIntervalMs: 20 });
    const { client, sessionId } = await WsClient.session(running.wsUrl);
    client.send('one');
    await client.waitFor((frame) => frame.type === 'completed');
    client.send('two');
    await client.waitForCount((frame) => frame.type === 'chunk', 6);
    client.send(JSON.stringify({ type: 'cancel' }));
    await client.waitFor((frame) => frame.type === 'cancelled');
    await api(running.url, 'POST', '/api/sessions/not-a-session/messages', { text: 'x' });

    const { text, contentType } = await scrape(running.url);
    expect(contentType).toContain('text/plain');
    expect(sample(text, 'llm_chat_connections{transport="ws"}')).toBe(1);
    expect(sample(text, 'llm_chat_connections{transport="sse"}')).toBe(0);
    expect(sample(text, 'llm_chat_sessions_live')).toBe(1);
    expect(sample(text, 'llm_chat_sessions_started_total{resumed="false"}')).toBe(1);
    expect(sample(text, 'llm_chat_messages_accepted_total')).toBe(2);
    expect(sample(text, 'llm_chat_messages_total{outcome="complete"}')).toBe(1);
    expect(sample(text, 'llm_chat_messages_total{outcome="cancelled"}')).toBe(1);
    expect(sample(text, 'llm_chat_chunks_sent_total')).toBeGreaterThanOrEqual(6);
    expect(sample(text, 'llm_chat_time_to_first_chunk_seconds_count')).toBe(2);
    expect(sample(text, 'llm_chat_generation_duration_seconds_count{outcome="complete"}')).toBe(1);
    expect(sample(text, 'llm_chat_generation_duration_seconds_count{outcome="cancelled"}')).toBe(1);
    expect(sample(text, 'llm_chat_client_errors_total{transport="http",code="session_not_found"}')).toBe(1);
    expect(sample(text, 'llm_chat_backpressure_disconnects_total{transport="ws"}')).toBe(0);
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).not.toContain(sessionId);
    client.close();
  });

  it('counts busy and overloaded refusals as rate-limit rejections, and restarts and provider errors', async () => {
    running = await startServer({
      simIntervalMs: 20,
      queueLimit: 0,
      maxSessions: 1,
      provider: {
        name: 'fails',
        async *stream() {
          yield { text: 'partial', last: false };
          await new Promise((resolve) => setTimeout(resolve, 300));
          throw new Error('upstream broke');
        },
      },
    });
    const sessionId = String((await api(running.url, 'POST', '/api/sessions')).body['sessionId']);
    await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'a' });
    // The only session is busy, so none can be passivated to make room.
    expect((await api(running.url, 'POST', '/api/sessions')).status).toBe(503);
    const second = await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'b' });
    const { text } = await scrape(running.url);
    expect(sample(text, 'llm_chat_rate_limit_rejections_total{code="overloaded"}')).toBe(1);
    if (second.status === 409) expect(sample(text, 'llm_chat_rate_limit_rejections_total{code="busy"}')).toBe(1);
    const deadline = Date.now() + 5000;
    let after = text;
    while (sample(after, 'llm_chat_supervisor_restarts_total') === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = (await scrape(running.url)).text;
    }
    expect(sample(after, 'llm_chat_supervisor_restarts_total')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'llm_chat_provider_errors_total')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'llm_chat_messages_total{outcome="failed"}')).toBeGreaterThanOrEqual(1);
  });

  it('counts store failures by operation', async () => {
    const store = createMemoryStore();
    const failing: SessionStore = { ...store, save: () => Promise.reject(new Error('disk full')) };
    running = await startServer({ store: failing, simIntervalMs: 0 });
    const { client } = await WsClient.session(running.wsUrl);
    client.send('hello');
    // Its commit fails, so the message is refused, never acknowledged.
    expect(await client.waitFor((frame) => frame.type === 'error')).toMatchObject({ code: 'store_unavailable' });
    expect(client.frames.some((frame) => frame.type === 'accepted')).toBe(false);
    // The failure is counted when the store's promise rejects: poll, bounded.
    const deadline = Date.now() + 5000;
    let { text } = await scrape(running.url);
    while ((sample(text, 'llm_chat_store_errors_total{operation="save"}') ?? 0) < 1 && Date.now() < deadline) {
      ({ text } = await scrape(running.url));
    }
    expect(sample(text, 'llm_chat_store_errors_total{operation="save"}')).toBeGreaterThanOrEqual(1);
    client.close();
  });

  it('can be turned off', async () => {
    running = await startServer({ metrics: false });
    expect((await api(running.url, 'GET', '/metrics')).status).toBe(404);
  });
});

describe('GET /readyz', () => {
  it('is ready while the store answers', async () => {
    running = await startServer();
    const response = await api(running.url, 'GET', '/readyz');
    expect(response).toMatchObject({ status: 200, body: { status: 'ready' } });
    expect((await api(running.url, 'GET', '/healthz')).status).toBe(200);
  });

  it('is unavailable when the store does not answer', async () => {
    const store = createMemoryStore();
    running = await startServer({ store: { ...store, ping: () => Promise.reject(new Error('connection refused')) } });
    const response = await api(running.url, 'GET', '/readyz');
    expect(response).toMatchObject({ status: 503, body: { status: 'unavailable', reason: 'store_unreachable' } });
  });

  it('is unavailable once shutdown has begun', async () => {
    // The listening socket closes at shutdown, so a probe would rather find the
    // port closed; this drives the route on an app of its own to check the answer.
    let shuttingDown = false;
    const app = express().use(createOpsRoutes({ health: { check: async () => true }, shuttingDown: () => shuttingDown }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await api(url, 'GET', '/readyz')).status).toBe(200);
    shuttingDown = true;
    expect(await api(url, 'GET', '/readyz')).toMatchObject({ status: 503, body: { status: 'unavailable', reason: 'shutting_down' } });
    server.close();
  });

  it('reflects the server: shuttingDown turns true when shutdown begins', async () => {
    running = await startServer();
    expect(running.server.shuttingDown).toBe(false);
    const done = running.server.shutdown(1000);
    expect(running.server.shuttingDown).toBe(true);
    await done;
    running = undefined;
  });
});
