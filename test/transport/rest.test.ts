import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { api, startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

let running: RunningServer;

beforeEach(async () => {
  running = await startServer({ simIntervalMs: 30, queueLimit: 1 });
});
afterEach(async () => {
  await running.close();
});

describe('REST /api', () => {
  it('creates a session, takes a message (202) and shows the streamed history', async () => {
    const created = await api(running.url, 'POST', '/api/sessions');
    expect(created.status).toBe(201);
    const sessionId = String(created.body['sessionId']);
    expect(created.headers.get('location')).toBe(`/api/sessions/${sessionId}`);
    const watcher = await WsClient.open(`${running.wsUrl}?sessionId=${sessionId}`);
    const sent = await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'rest' });
    expect(sent.status).toBe(202);
    expect(sent.body).toMatchObject({ messageId: expect.any(String), userMessageId: expect.any(String), position: 0 });
    const during = await api(running.url, 'GET', `/api/sessions/${sessionId}`);
    expect(during.body['status']).toBe('generating');
    await watcher.waitFor((frame) => frame.type === 'completed');
    watcher.close();
    const after = await api(running.url, 'GET', `/api/sessions/${sessionId}`);
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ sessionId, status: 'idle', lastSeq: 5 });
    const messages = after.body['messages'] as { role: string; status: string; content: string; id: string }[];
    expect(messages.map((message) => [message.role, message.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
    expect(messages[1]?.id).toBe(sent.body['messageId']);
    expect(messages[1]?.content).toBe([1, 2, 3, 4, 5].map((n) => `chunk ${n}: rest`).join(''));
  });

  it('answers each bad input with its documented status and code', async () => {
    const { body } = await api(running.url, 'POST', '/api/sessions');
    const path = `/api/sessions/${String(body['sessionId'])}/messages`;
    const cases: [unknown, number, string][] = [
      ['{"text":', 400, 'bad_request'],
      [{ message: 'wrong field' }, 400, 'bad_request'],
      [{ text: 42 }, 400, 'bad_request'],
      [{ text: '' }, 400, 'bad_request'],
      [{ text: 'x'.repeat(70 * 1024) }, 413, 'payload_too_large'],
    ];
    for (const [payload, status, code] of cases) {
      const response = await api(running.url, 'POST', path, payload);
      expect([response.status, (response.body['error'] as { code: string }).code]).toEqual([status, code]);
    }
    const unknown = await api(running.url, 'POST', `/api/sessions/${'z'.repeat(22)}/messages`, { text: 'hi' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: { code: 'session_not_found', message: 'No session with this id.' } });
    const route = await api(running.url, 'GET', '/api/nothing-here');
    expect(route.status).toBe(404);
    expect(route.body).toEqual({ error: { code: 'not_found', message: 'No such endpoint.' } });
  });

  it('answers a full queue with 409 busy', async () => {
    const { body } = await api(running.url, 'POST', '/api/sessions');
    const path = `/api/sessions/${String(body['sessionId'])}/messages`;
    expect((await api(running.url, 'POST', path, { text: 'a' })).status).toBe(202);
    expect((await api(running.url, 'POST', path, { text: 'b' })).status).toBe(202);
    const refused = await api(running.url, 'POST', path, { text: 'c' });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ error: { code: 'busy' } });
  });

  it('cancels the reply in progress and the queue; cancelling nothing is fine', async () => {
    const { body } = await api(running.url, 'POST', '/api/sessions');
    const sessionId = String(body['sessionId']);
    const watcher = await WsClient.open(`${running.wsUrl}?sessionId=${sessionId}`);
    const first = await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'a' });
    const second = await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'b' });
    await watcher.waitForCount((frame) => frame.type === 'chunk', 2);
    watcher.close();
    const cancelled = await api(running.url, 'POST', `/api/sessions/${sessionId}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toEqual({ cancelled: [first.body['messageId'], second.body['messageId']] });
    const again = await api(running.url, 'POST', `/api/sessions/${sessionId}/cancel`);
    expect(again.body).toEqual({ cancelled: [] });
    const view = await api(running.url, 'GET', `/api/sessions/${sessionId}`);
    const statuses = (view.body['messages'] as { status: string }[]).map((message) => message.status);
    expect(statuses).toEqual(['complete', 'cancelled', 'cancelled']);
  });

  it('deletes a session (204): its sockets are told and closed, then it is gone', async () => {
    const { client, sessionId } = await WsClient.session(running.wsUrl);
    const deleted = await api(running.url, 'DELETE', `/api/sessions/${sessionId}`);
    expect(deleted.status).toBe(204);
    expect((await client.closed()).code).toBe(4410);
    expect(client.frames.at(-1)).toEqual({ type: 'stopped', sessionId, reason: 'deleted' });
    expect((await api(running.url, 'GET', `/api/sessions/${sessionId}`)).status).toBe(404);
    expect((await api(running.url, 'DELETE', `/api/sessions/${sessionId}`)).status).toBe(404);
  });

  it('reports health', async () => {
    const health = await api(running.url, 'GET', '/healthz');
    expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });
  });
});
