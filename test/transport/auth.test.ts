import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, SseClient, startServer, WsClient } from '../support/harness.ts';
import type { Json, RunningServer } from '../support/harness.ts';
import { ADMIN_TOKEN, createKey, revokeKey } from '../support/keys.ts';
import type { TestKey } from '../support/keys.ts';

/**
 * Every surface × every kind of caller: no credential, a wrong key, a revoked
 * key, another key's session, and the owner. Another key's session must be
 * answered exactly as an id that never existed.
 */
let running: RunningServer;
let alice: TestKey;
let bob: TestKey;
let revoked: TestKey;
let aliceSession: string;
let bobSession: string;
let revokedSession: string;
const NEVER = 'AAAAAAAAAAAAAAAAAAAAAA'; // a well-formed id nobody made
const WRONG = { authorization: `Bearer llmc_${'x'.repeat(43)}` };

beforeAll(async () => {
  running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, inspector: { adminToken: ADMIN_TOKEN } });
  alice = await createKey(running.url, 'alice');
  bob = await createKey(running.url, 'bob');
  revoked = await createKey(running.url, 'carol');
  aliceSession = String((await api(running.url, 'POST', '/api/sessions', { title: 'alice’s' }, alice.headers)).body['sessionId']);
  bobSession = String((await api(running.url, 'POST', '/api/sessions', { title: 'bob’s' }, bob.headers)).body['sessionId']);
  // A message, so the history has something a stranger must not read.
  expect((await api(running.url, 'POST', `/api/sessions/${aliceSession}/messages`, { text: 'secret plans' }, alice.headers)).status).toBe(202);
  revokedSession = String((await api(running.url, 'POST', '/api/sessions', {}, revoked.headers)).body['sessionId']);
  expect(await revokeKey(running.url, revoked.id)).toBe(204);
});
afterAll(() => running?.close());

type Who = 'none' | 'wrong' | 'revoked';
const headersOf = (who: Who): Record<string, string> => (who === 'none' ? {} : who === 'wrong' ? WRONG : revoked.headers);
const UNAUTHORIZED = { error: { code: 'unauthorized', message: 'A valid API key is required.' } };

describe('REST', () => {
  const routes = (id: string) =>
    [
      ['GET', '/api/sessions', undefined],
      ['POST', '/api/sessions', {}],
      ['GET', `/api/sessions/${id}`, undefined],
      ['GET', `/api/sessions/${id}/messages`, undefined],
      ['POST', `/api/sessions/${id}/messages`, { text: 'hi' }],
      ['POST', `/api/sessions/${id}/cancel`, undefined],
      ['DELETE', `/api/sessions/${id}`, undefined],
      ['GET', '/api/status', undefined],
    ] as const;

  it.each(['none', 'wrong', 'revoked'] as const)('%s credential: 401 unauthorized on every route, nothing done', async (who) => {
    for (const [method, path, body] of routes(aliceSession)) {
      const response = await api(running.url, method, path, body, headersOf(who));
      expect([method, path, response.status, response.body]).toEqual([method, path, 401, UNAUTHORIZED]);
    }
    expect((await running.server.registry.peek(aliceSession)?.view())?.messages.map((m) => m.content)[0]).toBe('secret plans');
  });

  it("another key's session: 404 session_not_found, the very answer an id never made gets", async () => {
    for (const [method, path, body] of routes(aliceSession).slice(2, 7)) {
      const stranger = await api(running.url, method, path, body, bob.headers);
      const missing = await api(running.url, method, path.replace(aliceSession, NEVER), body, bob.headers);
      expect([method, path, stranger.status, stranger.body]).toEqual([method, path, 404, { error: { code: 'session_not_found', message: 'No session with this id.' } }]);
      expect(stranger.body).toEqual(missing.body);
    }
    // Still there for its owner, untouched: no message, no cancel, no delete by bob.
    const view = await api(running.url, 'GET', `/api/sessions/${aliceSession}`, undefined, alice.headers);
    expect(view.status).toBe(200);
    expect((view.body['messages'] as Json[]).filter((m) => m['role'] === 'user').map((m) => m['content'])).toEqual(['secret plans']);
  });

  it("another key's session: its paged view and the pages before it (olderCursor) are 404 too, the owner's are served", async () => {
    const owner = await api(running.url, 'GET', `/api/sessions/${aliceSession}?limit=1`, undefined, alice.headers);
    expect(owner.status).toBe(200);
    const olderCursor = owner.body['olderCursor'];
    expect(typeof olderCursor).toBe('string'); // the question and its reply: more than one page of one
    const older = `/api/sessions/${aliceSession}/messages?order=desc&limit=10&cursor=${encodeURIComponent(String(olderCursor))}`;
    const notFound = { error: { code: 'session_not_found', message: 'No session with this id.' } };
    for (const path of [`/api/sessions/${aliceSession}?limit=1`, older]) {
      const stranger = await api(running.url, 'GET', path, undefined, bob.headers);
      const missing = await api(running.url, 'GET', path.replace(aliceSession, NEVER), undefined, bob.headers);
      expect([path, stranger.status, stranger.body]).toEqual([path, 404, notFound]);
      expect(stranger.body).toEqual(missing.body);
    }
    const page = await api(running.url, 'GET', older, undefined, alice.headers);
    expect(page.status).toBe(200);
    expect((page.body['messages'] as Json[]).map((m) => m['content'])).toContain('secret plans');
  });

  it('lists only the caller’s sessions', async () => {
    const listed = async (key: TestKey) =>
      ((await api(running.url, 'GET', '/api/sessions', undefined, key.headers)).body['sessions'] as Json[]).map((s) => s['sessionId']);
    expect(await listed(alice)).toEqual([aliceSession]);
    expect(await listed(bob)).toEqual([bobSession]);
  });

  it('the owner: reads, pages, sends, cancels; a key never works from the URL on REST', async () => {
    expect((await api(running.url, 'GET', `/api/sessions/${aliceSession}`, undefined, alice.headers)).status).toBe(200);
    expect((await api(running.url, 'GET', `/api/sessions/${aliceSession}/messages`, undefined, alice.headers)).status).toBe(200);
    expect((await api(running.url, 'POST', `/api/sessions/${aliceSession}/messages`, { text: 'more' }, alice.headers)).status).toBe(202);
    expect((await api(running.url, 'POST', `/api/sessions/${aliceSession}/cancel`, undefined, alice.headers)).status).toBe(200);
    expect((await api(running.url, 'GET', `/api/status`, undefined, alice.headers)).status).toBe(200);
    expect((await api(running.url, 'GET', `/api/sessions?access_token=${alice.key}`)).status).toBe(401);
  });

  it('the owner deletes: 204, then it is gone for the owner too', async () => {
    const made = String((await api(running.url, 'POST', '/api/sessions', {}, alice.headers)).body['sessionId']);
    expect((await api(running.url, 'DELETE', `/api/sessions/${made}`, undefined, bob.headers)).status).toBe(404);
    expect((await api(running.url, 'DELETE', `/api/sessions/${made}`, undefined, alice.headers)).status).toBe(204);
    expect((await api(running.url, 'GET', `/api/sessions/${made}`, undefined, alice.headers)).status).toBe(404);
  });

  it('needs no key for /healthz, /readyz, /metrics, the page and its assets', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/', '/assets/chat.js', '/assets/signIn.js', '/assets/sessionConnection.js', '/assets/inspector.js', '/assets/renderOverview.js']) {
      expect([path, (await api(running.url, 'GET', path)).status]).toEqual([path, 200]);
    }
  });
});

describe('WebSocket', () => {
  const refusedWith = async (url: string, options?: Parameters<typeof WsClient.open>[1]) => {
    const client = await WsClient.open(url, options);
    const closed = await client.closed();
    return { frames: client.frames, code: closed.code };
  };

  it.each(['none', 'wrong', 'revoked'] as const)('%s credential: an error frame unauthorized, then close 4401', async (who) => {
    for (const url of [running.wsUrl, `${running.wsUrl}?sessionId=${aliceSession}`]) {
      const { frames, code } = await refusedWith(url, { headers: headersOf(who) });
      expect(code).toBe(4401);
      expect(frames).toEqual([{ type: 'error', ...UNAUTHORIZED.error }]);
    }
    const token = who === 'wrong' ? `llmc_${'y'.repeat(43)}` : who === 'revoked' ? revoked.key : '';
    if (token) expect((await refusedWith(`${running.wsUrl}?access_token=${token}`)).code).toBe(4401);
  });

  it("another key's session: session_not_found and 4404, as for an id never made", async () => {
    const stranger = await refusedWith(`${running.wsUrl}?sessionId=${aliceSession}`, { headers: bob.headers });
    const missing = await refusedWith(`${running.wsUrl}?sessionId=${NEVER}`, { headers: bob.headers });
    expect(stranger).toEqual({ code: 4404, frames: [{ type: 'error', code: 'session_not_found', message: 'No session with this id.' }] });
    expect(stranger).toEqual(missing);
  });

  it('the owner attaches with a header or ?access_token=, and a new socket opens a session of its own key', async () => {
    const byHeader = await WsClient.open(`${running.wsUrl}?sessionId=${aliceSession}`, { headers: alice.headers });
    expect(await byHeader.waitFor((frame) => frame.type === 'session')).toEqual({ type: 'session', sessionId: aliceSession });
    const byQuery = await WsClient.open(`${running.wsUrl}?sessionId=${aliceSession}&access_token=${alice.key}`);
    await byQuery.waitFor((frame) => frame.type === 'session');
    byQuery.send('from the socket');
    await byHeader.waitFor((frame) => frame.type === 'accepted' && frame['text'] === 'from the socket');
    const { client: fresh, sessionId } = await WsClient.session(running.wsUrl, { headers: bob.headers });
    expect((await api(running.url, 'GET', `/api/sessions/${sessionId}`, undefined, bob.headers)).status).toBe(200);
    expect((await api(running.url, 'GET', `/api/sessions/${sessionId}`, undefined, alice.headers)).status).toBe(404);
    for (const client of [byHeader, byQuery, fresh]) client.close();
  });
});

describe('SSE', () => {
  it.each(['none', 'wrong', 'revoked'] as const)('%s credential: 401 with the JSON error', async (who) => {
    const response = await api(running.url, 'GET', `/sse/${aliceSession}`, undefined, headersOf(who));
    expect([response.status, response.body]).toEqual([401, UNAUTHORIZED]);
    if (who !== 'none') {
      const key = who === 'revoked' ? revoked.key : `llmc_${'z'.repeat(43)}`;
      expect((await api(running.url, 'GET', `/sse/${aliceSession}?access_token=${key}`)).status).toBe(401);
    }
  });

  it("another key's session: 404, as for an id never made", async () => {
    const stranger = await api(running.url, 'GET', `/sse/${aliceSession}`, undefined, bob.headers);
    const missing = await api(running.url, 'GET', `/sse/${NEVER}`, undefined, bob.headers);
    expect([stranger.status, stranger.body]).toEqual([404, { error: { code: 'session_not_found', message: 'No session with this id.' } }]);
    expect(stranger.body).toEqual(missing.body);
  });

  it('the owner streams, with a header or ?access_token=', async () => {
    const byHeader = await SseClient.open(`${running.url}/sse/${aliceSession}`, alice.headers);
    const byQuery = await SseClient.open(`${running.url}/sse/${aliceSession}?access_token=${alice.key}`);
    expect([byHeader.status, byQuery.status]).toEqual([200, 200]);
    await api(running.url, 'POST', `/api/sessions/${aliceSession}/messages`, { text: 'sse' }, alice.headers);
    for (const client of [byHeader, byQuery]) {
      await client.waitFor(() => client.chunks.some((chunk) => chunk['is_last'] === true && String(chunk['chunk']).includes('sse')));
      client.close();
    }
  });
});

describe('/v1 (the openai SDK)', () => {
  const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${running.url}/v1`, maxRetries: 0 });
  const ask = (apiKey: string, headers?: Record<string, string>) =>
    client(apiKey).chat.completions.create({ model: 'simulated', messages: [{ role: 'user', content: 'hi' }] }, headers ? { headers } : undefined);

  it.each(['none', 'wrong', 'revoked'] as const)('%s credential: 401 in OpenAI’s error shape', async (who) => {
    const raw = await api(running.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }, headersOf(who));
    expect([raw.status, raw.body]).toEqual([401, { error: { message: 'A valid API key is required.', type: 'invalid_request_error', param: null, code: 'unauthorized' } }]);
    expect((await api(running.url, 'GET', '/v1/models', undefined, headersOf(who))).status).toBe(401);
    if (who !== 'none') {
      const key = who === 'revoked' ? revoked.key : `llmc_${'w'.repeat(43)}`;
      await expect(ask(key)).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    }
  });

  it("another key's session (X-Session-Id): 404 session_not_found, as for an id never made; nothing is sent to it", async () => {
    const stranger = ask(bob.key, { 'X-Session-Id': aliceSession });
    await expect(stranger).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(stranger).rejects.toMatchObject({ code: 'session_not_found' });
    const raw = await api(running.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, { ...bob.headers, 'x-session-id': aliceSession });
    const missing = await api(running.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, { ...bob.headers, 'x-session-id': NEVER });
    expect(raw.body).toEqual(missing.body);
    const view = await api(running.url, 'GET', `/api/sessions/${aliceSession}`, undefined, alice.headers);
    expect((view.body['messages'] as Json[]).some((m) => m['content'] === 'x')).toBe(false);
  });

  it('the owner: an answer on its own session and on an ephemeral one; the ephemeral one is gone after', async () => {
    const named = await ask(alice.key, { 'X-Session-Id': aliceSession });
    expect(named.choices[0]?.message.content).toContain('chunk 1: hi');
    const ephemeral = await ask(alice.key);
    expect(ephemeral.choices[0]?.finish_reason).toBe('stop');
    const list = (await api(running.url, 'GET', '/api/sessions', undefined, alice.headers)).body['sessions'] as Json[];
    expect(list.map((s) => s['sessionId'])).toEqual([aliceSession]);
  });
});

describe('which credential counts', () => {
  it('a header wins over ?access_token=, which wins over the cookie: a wrong first one is 401 whatever follows', async () => {
    const cookie = `llm_chat_key=${alice.key}`;
    const badToken = `llmc_${'v'.repeat(43)}`;
    expect((await api(running.url, 'GET', '/api/sessions', undefined, { ...WRONG, cookie })).status).toBe(401);
    expect((await api(running.url, 'GET', '/api/sessions', undefined, { ...alice.headers, cookie: `llm_chat_key=${badToken}` })).status).toBe(200);
    expect((await api(running.url, 'GET', `/sse/${aliceSession}?access_token=${alice.key}`, undefined, WRONG)).status).toBe(401);
    expect((await api(running.url, 'GET', `/sse/${aliceSession}?access_token=${badToken}`, undefined, { cookie })).status).toBe(401);
    const byQuery = await SseClient.open(`${running.url}/sse/${aliceSession}?access_token=${alice.key}`, { cookie: `llm_chat_key=${badToken}` });
    expect(byQuery.status).toBe(200);
    byQuery.close();
    const socket = await WsClient.open(`${running.wsUrl}?sessionId=${aliceSession}&access_token=${badToken}`, { headers: { cookie } });
    expect((await socket.closed()).code).toBe(4401);
  });
});

describe('credentials that are not API keys', () => {
  it('an API key never opens /admin or /inspector; the admin token is not an API key', async () => {
    for (const path of ['/admin/keys', '/inspector/api/overview']) {
      expect([path, (await api(running.url, 'GET', path, undefined, alice.headers)).status]).toEqual([path, 401]);
    }
    const adminAsKey = { authorization: `Bearer ${ADMIN_TOKEN}` };
    expect((await api(running.url, 'GET', '/api/sessions', undefined, adminAsKey)).status).toBe(401);
    expect((await api(running.url, 'GET', `/sse/${aliceSession}`, undefined, adminAsKey)).status).toBe(401);
  });

  it('the inspector sees every session with the name of its key, a revoked key’s too', async () => {
    const overview = await api(running.url, 'GET', '/inspector/api/overview', undefined, { authorization: `Bearer ${ADMIN_TOKEN}` });
    const byId = new Map((overview.body['sessions'] as Json[]).map((s) => [s['sessionId'], s]));
    expect(byId.get(aliceSession)).toMatchObject({ owner: alice.id, keyName: 'alice' });
    expect(byId.get(bobSession)).toMatchObject({ owner: bob.id, keyName: 'bob' });
    expect(byId.get(revokedSession)).toMatchObject({ owner: revoked.id, keyName: 'carol' });
  });
});
