import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assertCleanJson, MAX_JSON_DEPTH } from '../../src/transport/inputRules.ts';
import { api, startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';

let running: RunningServer;
const clients: WsClient[] = [];
beforeEach(async () => {
  running = await startServer({ simIntervalMs: 0, messagesPerMinute: 0 });
});
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await running.close();
});

// JSON texts written by hand: the escapes reach the server as they are.
const NUL = '"a\\u0000b"';
const LONE_HIGH = '"a\\ud800b"';
const LONE_LOW = '"\\udc00"';
const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
const nestedArrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

async function createSession(): Promise<string> {
  const created = await api(running.url, 'POST', '/api/sessions');
  return String(created.body['sessionId']);
}

async function sessionCount(): Promise<number> {
  const listed = await api(running.url, 'GET', '/api/sessions?limit=200');
  return (listed.body['sessions'] as unknown[]).length;
}

describe('the rules themselves (one place: src/transport/inputRules.ts)', () => {
  it('accept paired surrogates (emoji) and depth up to the limit, refuse NUL, lone surrogates and depth past it, without recursion', () => {
    expect(() => assertCleanJson({ text: 'hi 😀 é', nested: JSON.parse(nested(MAX_JSON_DEPTH - 1)) as unknown }, 'body')).not.toThrow();
    expect(() => assertCleanJson(JSON.parse(nested(MAX_JSON_DEPTH + 1)), 'body')).toThrow(/nested deeper than 32/);
    // 200,000 levels: a recursive walk would overflow the stack.
    expect(() => assertCleanJson(JSON.parse(nestedArrays(200_000)), 'body')).toThrow(/nested deeper/);
    expect(() => assertCleanJson({ ['k\u0000']: 1 }, 'body')).toThrow(/NUL.*a key in body/);
    expect(() => assertCleanJson({ a: ['x', '\ud83d'] }, 'body')).toThrow(/lone surrogate.*body\.a\[1\]/);
    expect(() => assertCleanJson({ m: [{ ok: 'fine' }, { c: [{ ['k\u0000']: 1 }] }] }, 'body')).toThrow(/NUL.*a key in body\.m\[1\]\.c\[0\]\./);
  });
});

describe('REST refuses hostile input with 400 bad_request, and stores nothing', () => {
  it('message text with NUL or a lone surrogate', async () => {
    const sessionId = await createSession();
    for (const text of [NUL, LONE_HIGH, LONE_LOW]) {
      const refused = await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, `{"text":${text}}`);
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ error: { code: 'bad_request' } });
    }
    const view = await api(running.url, 'GET', `/api/sessions/${sessionId}`);
    expect(view.body['messages']).toEqual([]);
    // An emoji (a surrogate pair) is fine.
    expect((await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'hi 😀' })).status).toBe(202);
  });

  it('titles and metadata keys and values; metadata nested 5,000 deep (was 500)', async () => {
    const before = await sessionCount();
    const bodies = [
      `{"title":${NUL}}`,
      `{"title":${LONE_HIGH}}`,
      `{"metadata":{${NUL}:1}}`,
      `{"metadata":{"k":${LONE_LOW}}}`,
      `{"metadata":{"k":[1,{"deep":${NUL}}]}}`,
      `{"metadata":{"k":${nested(5000)}}}`,
      `{"metadata":{"k":${nestedArrays(5000)}}}`,
    ];
    for (const body of bodies) {
      const refused = await api(running.url, 'POST', '/api/sessions', body);
      expect(refused.status, body.slice(0, 60)).toBe(400);
      expect(refused.body).toMatchObject({ error: { code: 'bad_request' } });
    }
    expect(await sessionCount()).toBe(before);
    const fine = await api(running.url, 'POST', '/api/sessions', { title: 'ok 😀', metadata: { a: { b: [1, 'two'] } } });
    expect(fine.status).toBe(201);
  });

  it('query strings with NUL', async () => {
    const sessionId = await createSession();
    for (const path of ['/api/sessions?cursor=a%00b', `/api/sessions/${sessionId}/messages?order=asc%00`, `/sse/${sessionId}?lastEventId=1%00`]) {
      const refused = await api(running.url, 'GET', path);
      expect(refused.status, path).toBe(400);
      expect(refused.body).toMatchObject({ error: { code: 'bad_request' } });
    }
  });
});

describe('/v1 refuses hostile input with 400 in OpenAI error shape', () => {
  it('content with NUL or a lone surrogate, and bodies nested too deep', async () => {
    const bodies = [
      `{"model":"m","messages":[{"role":"user","content":${NUL}}]}`,
      `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":${LONE_HIGH}}]}]}`,
      `{"model":"m","messages":[{"role":"user","content":"hi"}],"metadata":${nested(5000)}}`,
    ];
    for (const body of bodies) {
      const refused = await api(running.url, 'POST', '/v1/chat/completions', body);
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ error: { code: 'bad_request', type: 'invalid_request_error' } });
    }
    expect(running.server.registry.activeCount).toBe(0); // no ephemeral session was made
  });
});

describe('a body that is not sent as JSON is refused with a reason, not read as "no body"', () => {
  it('REST and /v1: text/plain or a form is 400 bad_request saying what to send; no body at all is still fine where allowed', async () => {
    const sessionId = await createSession();
    const asText = { 'content-type': 'text/plain' };
    const rest = await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, '{"text":"hi"}', asText);
    expect(rest.status).toBe(400);
    expect(rest.body).toMatchObject({ error: { code: 'bad_request', message: expect.stringMatching(/Content-Type: application\/json/) } });
    const form = await api(running.url, 'POST', '/api/sessions', 'title=x', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(400);
    const v1 = await api(running.url, 'POST', '/v1/chat/completions', '{"model":"m","messages":[{"role":"user","content":"hi"}]}', asText);
    expect(v1.status).toBe(400);
    expect(v1.body).toMatchObject({ error: { code: 'bad_request', type: 'invalid_request_error', message: expect.stringMatching(/application\/json/) } });
    // Nothing was stored, and a session made with no body at all still is.
    expect((await api(running.url, 'GET', `/api/sessions/${sessionId}`)).body['messages']).toEqual([]);
    expect((await api(running.url, 'POST', '/api/sessions')).status).toBe(201);
    // JSON with a charset is JSON.
    const charset = await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, '{"text":"hi"}', { 'content-type': 'application/json; charset=utf-8' });
    expect(charset.status).toBe(202);
  });
});

describe('WebSocket frames refuse hostile input with an error frame and stay usable', () => {
  it('plain text with NUL, JSON frames with escaped NUL or lone surrogates, frames nested too deep', async () => {
    const { client, sessionId } = await WsClient.session(running.wsUrl);
    clients.push(client);
    const frames = ['a\u0000b', `{"type":"message","text":${NUL}}`, `{"type":"message","text":${LONE_HIGH}}`, `{"type":"cancel","x":${nested(5000)}}`];
    for (const [index, frame] of frames.entries()) {
      client.send(frame);
      await client.waitForCount((received) => received.type === 'error', index + 1);
    }
    const errors = client.frames.filter((frame) => frame.type === 'error');
    expect(errors.map((frame) => frame['code'])).toEqual(['bad_request', 'bad_request', 'bad_request', 'bad_request']);
    client.send('still here 😀');
    await client.waitFor((frame) => frame['is_last'] === true);
    const view = await api(running.url, 'GET', `/api/sessions/${sessionId}`);
    expect((view.body['messages'] as { content: string }[]).map((message) => message.content)[0]).toBe('still here 😀');
  });

  it('a text frame that is not valid UTF-8 (a surrogate encoded as bytes) is closed with 1007 by ws itself', async () => {
    const { client } = await WsClient.session(running.wsUrl);
    clients.push(client);
    client.socket.send(Buffer.from([0x61, 0xed, 0xa0, 0x80]), { binary: false });
    expect((await client.closed()).code).toBe(1007);
  });
});
