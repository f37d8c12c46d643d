import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventSource } from 'eventsource';
import { api, SseClient, startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { sequentialIds } from '../support/sequentialIds.ts';

let running: RunningServer;
const closers: (() => void)[] = [];

beforeEach(async () => {
  running = await startServer({ simIntervalMs: 5, ids: sequentialIds() });
});
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await running.close();
});

async function newSession(): Promise<string> {
  const { body } = await api(running.url, 'POST', '/api/sessions');
  return String(body['sessionId']);
}

async function openSse(sessionId: string, headers: Record<string, string> = {}, query = '') {
  const client = await SseClient.open(`${running.url}/sse/${sessionId}${query}`, headers);
  closers.push(() => client.close());
  return client;
}

describe('SSE /sse/:sessionId', () => {
  it('streams the exact seed-compatible bytes', async () => {
    const sessionId = await newSession();
    const client = await openSse(sessionId);
    expect(client.status).toBe(200);
    expect(client.headers['content-type']).toBe('text/event-stream');
    expect(client.headers['cache-control']).toBe('no-cache');
    expect(client.headers['x-accel-buffering']).toBe('no');
    await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'hi' });
    await client.waitFor(() => client.bytes.includes('event: message.completed'));
    const chunk = (n: number) =>
      `id: ${n}\ndata: {"type":"chunk","sessionId":"${sessionId}","messageId":"m2","seq":${n},"chunk":"chunk ${n}: hi","is_last":${n === 5}}\n\n`;
    expect(client.bytes).toBe(
      'retry: 2000\n\n' +
        `event: message.accepted\ndata: {"type":"accepted","sessionId":"${sessionId}","messageId":"m2","userMessageId":"m1","text":"hi","position":0}\n\n` +
        [1, 2, 3, 4, 5].map(chunk).join('') +
        // Usage counted by the tokenizer (the simulated model reports it): 3 + 3 + 1 in, the whole reply out.
        `event: message.completed\ndata: {"type":"completed","sessionId":"${sessionId}","messageId":"m2","usage":{"inputTokens":7,"outputTokens":29},"finishReason":"stop","model":"simulated"}\n\n`,
    );
    // Seed clients read {chunk, is_last} from each unnamed event.
    expect(client.chunks.map((data) => [data['chunk'], data['is_last']])).toEqual(
      [1, 2, 3, 4, 5].map((n) => [`chunk ${n}: hi`, n === 5]),
    );
  });

  it('stays open across messages and sees the same chunks as a WebSocket watcher', async () => {
    const { client: socket, sessionId } = await WsClient.session(running.wsUrl);
    closers.push(() => socket.close());
    const sse = await openSse(sessionId);
    socket.send('first');
    socket.send('second');
    await sse.waitFor(() => sse.chunks.length >= 10);
    await socket.waitForCount((frame) => frame.type === 'chunk', 10);
    expect(sse.chunks).toEqual(socket.frames.filter((frame) => frame.type === 'chunk'));
    expect(sse.ended).toBe(false);
  });

  it('resumes with Last-Event-ID: replay then live, no gap, no duplicate', async () => {
    await running.close();
    running = await startServer({ simIntervalMs: 40 });
    const sessionId = await newSession();
    const first = await openSse(sessionId);
    await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'resume' });
    await first.waitFor(() => first.chunks.length >= 2);
    first.close();
    const lastId = first.messages.filter((message) => message.id !== undefined).at(-1)?.id;
    const second = await openSse(sessionId, { 'Last-Event-ID': String(lastId) });
    await second.waitFor(() => second.chunks.some((data) => data['is_last'] === true));
    const seqs = [...first.chunks, ...second.chunks].map((data) => data['seq']);
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
    // ?lastEventId= does the same for clients that cannot set headers.
    const third = await openSse(sessionId, {}, '?lastEventId=3');
    await third.waitFor(() => third.chunks.length >= 2);
    expect(third.chunks.map((data) => data['seq'])).toEqual([4, 5]);
  });

  it('works with a real EventSource client: onmessage gets the chunks', async () => {
    const sessionId = await newSession();
    const source = new EventSource(`${running.url}/sse/${sessionId}`);
    closers.push(() => source.close());
    const received: { id: string; chunk: string }[] = [];
    const done = new Promise<void>((resolve) => {
      source.onmessage = (event) => {
        const data = JSON.parse(event.data) as { chunk: string; is_last: boolean };
        received.push({ id: event.lastEventId, chunk: data.chunk });
        if (data.is_last) resolve();
      };
    });
    await new Promise<void>((resolve) => (source.onopen = () => resolve()));
    await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'es' });
    await done;
    expect(received).toEqual([1, 2, 3, 4, 5].map((n) => ({ id: String(n), chunk: `chunk ${n}: es` })));
  });

  it('sends a comment heartbeat', async () => {
    await running.close();
    running = await startServer({ heartbeatMs: 20 });
    const sessionId = await newSession();
    const client = await openSse(sessionId);
    await client.waitFor(() => client.bytes.includes(':\n\n'));
    expect(client.messages).toEqual([]);
  });

  it('answers an unknown session with 404 JSON, and a bad Last-Event-ID with 400', async () => {
    const missing = await api(running.url, 'GET', `/sse/${'y'.repeat(22)}`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: { code: 'session_not_found', message: 'No session with this id.' } });
    const sessionId = await newSession();
    const bad = await api(running.url, 'GET', `/sse/${sessionId}`, undefined, { 'Last-Event-ID': 'abc' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'bad_request' } });
  });

  it('ends the stream when the session is deleted, after telling the client', async () => {
    const sessionId = await newSession();
    const client = await openSse(sessionId);
    expect((await api(running.url, 'DELETE', `/api/sessions/${sessionId}`)).status).toBe(204);
    await client.waitFor(() => client.ended);
    expect(client.messages.at(-1)).toEqual({
      event: 'session.stopped',
      data: JSON.stringify({ type: 'stopped', sessionId, reason: 'deleted' }),
    });
  });
});
