import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { api, SseClient, startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { ADMIN_TOKEN, createKey } from '../support/keys.ts';

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

/** The HTTP status of a refused upgrade, or 101 when it was taken. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { headers });
    socket.once('upgrade', () => {
      resolve(101);
      socket.terminate();
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('error', () => {});
  });
}

const FORBIDDEN = { error: { code: 'forbidden', message: 'Requests from this origin are not allowed.' } };

describe('origins', () => {
  it('a WebSocket upgrade from another origin gets 403, with or without a key; the server’s own origin and no Origin pass', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    const key = await createKey(running.url, 'k');
    const own = running.url; // http://127.0.0.1:PORT, the Host the client sends
    expect(await upgradeStatus(running.wsUrl, { origin: 'http://evil.example', ...key.headers })).toBe(403);
    expect(await upgradeStatus(`${running.wsUrl}?access_token=${key.key}`, { origin: 'http://127.0.0.1:1' })).toBe(403);
    expect(await upgradeStatus(running.wsUrl, { origin: 'null', ...key.headers })).toBe(403);
    // Refused before anything was taken: no connection slot, no session.
    expect(running.server.admission.connections).toBe(0);
    expect(running.server.registry.activeCount).toBe(0);
    expect(await upgradeStatus(running.wsUrl, { origin: own, ...key.headers })).toBe(101);
    expect(await upgradeStatus(running.wsUrl, key.headers)).toBe(101);
  });

  it('--auth none too: any web page a user visits cannot drive the gateway', async () => {
    running = await startServer();
    expect(await upgradeStatus(running.wsUrl, { origin: 'https://ads.example' })).toBe(403);
    expect(await upgradeStatus(running.wsUrl, { origin: running.url })).toBe(101);
    const sessionId = String((await api(running.url, 'POST', '/api/sessions')).body['sessionId']);
    const post = await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'hi' }, { origin: 'https://ads.example' });
    expect([post.status, post.body]).toEqual([403, FORBIDDEN]);
    expect((await api(running.url, 'GET', `/sse/${sessionId}`, undefined, { origin: 'https://ads.example' })).status).toBe(403);
  });

  it('--allowed-origins adds origins (scheme, host and port must match exactly)', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN, allowedOrigins: ['https://app.example.com', 'http://localhost:5173'] } });
    const key = await createKey(running.url, 'k');
    expect(await upgradeStatus(running.wsUrl, { origin: 'https://app.example.com', ...key.headers })).toBe(101);
    expect(await upgradeStatus(running.wsUrl, { origin: 'http://localhost:5173', ...key.headers })).toBe(101);
    expect(await upgradeStatus(running.wsUrl, { origin: 'http://app.example.com', ...key.headers })).toBe(403);
    expect(await upgradeStatus(running.wsUrl, { origin: 'https://app.example.com:8443', ...key.headers })).toBe(403);
    expect(await upgradeStatus(running.wsUrl, { origin: 'https://evil.app.example.com', ...key.headers })).toBe(403);
  });

  it('a cookie-authenticated request from another origin is refused; a Bearer key (SDKs, servers) is not affected', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    const key = await createKey(running.url, 'k');
    const cookie = { cookie: `llm_chat_key=${key.key}` };
    expect((await api(running.url, 'GET', '/api/sessions', undefined, cookie)).status).toBe(200);
    expect((await api(running.url, 'GET', '/api/sessions', undefined, { ...cookie, origin: running.url })).status).toBe(200);
    const foreign = await api(running.url, 'POST', '/api/sessions', {}, { ...cookie, origin: 'http://localhost:9' });
    expect([foreign.status, foreign.body]).toEqual([403, FORBIDDEN]);
    expect((await api(running.url, 'POST', '/api/sessions', {}, { ...key.headers, origin: 'http://localhost:9' })).status).toBe(201);
    const v1 = await api(running.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, { ...cookie, origin: 'http://localhost:9' });
    expect([v1.status, (v1.body['error'] as { code: string }).code]).toEqual([403, 'forbidden']);
    // Signing in from another page (a login CSRF) is refused too.
    const login = await api(running.url, 'POST', '/api/auth/login', { key: key.key }, { origin: 'http://localhost:9' });
    expect([login.status, login.headers.get('set-cookie')]).toEqual([403, null]);
  });

  it('an SSE stream opened with the cookie or ?access_token= from another origin gets 403 and holds nothing; own origin and a Bearer key stream', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    const key = await createKey(running.url, 'k');
    const sessionId = String((await api(running.url, 'POST', '/api/sessions', {}, key.headers)).body['sessionId']);
    const cookie = { cookie: `llm_chat_key=${key.key}` };
    const foreign = { origin: 'http://localhost:9' };
    // Read as a stream, so one that was wrongly admitted fails at once rather than never ending.
    const answer = async (path: string, headers: Record<string, string>) => {
      const client = await SseClient.open(`${running!.url}${path}`, headers);
      await client.waitFor(() => client.ended || client.status !== 403);
      client.close();
      return [client.status, client.status === 403 ? (JSON.parse(client.bytes) as unknown) : client.bytes];
    };
    expect(await answer(`/sse/${sessionId}`, { ...cookie, ...foreign })).toEqual([403, FORBIDDEN]);
    expect(await answer(`/sse/${sessionId}?access_token=${key.key}`, foreign)).toEqual([403, FORBIDDEN]);
    expect(running.server.admission.connections).toBe(0);
    for (const [url, headers] of [
      [`${running.url}/sse/${sessionId}`, { ...cookie, origin: running.url }],
      [`${running.url}/sse/${sessionId}`, { ...key.headers, ...foreign }],
    ] as const) {
      const stream = await SseClient.open(url, headers);
      expect(stream.status).toBe(200);
      stream.close();
    }
  });
});

describe('the page’s sign-in exchange', () => {
  it('trades a key for an HttpOnly SameSite=Strict cookie, answers who is signed in, and signs out', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    const key = await createKey(running.url, 'browser');
    const login = await api(running.url, 'POST', '/api/auth/login', { key: key.key }, { origin: running.url });
    expect(login.status).toBe(204);
    const setCookie = login.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^llm_chat_key=llmc_[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=2592000$/);
    const cookie = { cookie: setCookie.split(';')[0]! };
    expect((await api(running.url, 'GET', '/api/auth/me', undefined, cookie)).body).toEqual({ auth: 'keys', keyId: key.id, name: 'browser' });
    // The cookie opens WebSockets and SSE with no key in the URL.
    const { client, sessionId } = await WsClient.session(running.wsUrl, { headers: { ...cookie, origin: running.url } });
    client.close();
    const sse = await SseClient.open(`${running.url}/sse/${sessionId}`, cookie);
    expect(sse.status).toBe(200);
    sse.close();
    // Over TLS (as a proxy reports it) the cookie is Secure.
    const behindTls = await api(running.url, 'POST', '/api/auth/login', { key: key.key }, { 'x-forwarded-proto': 'https' });
    expect(behindTls.headers.get('set-cookie')).toContain('; Secure');

    const wrong = await api(running.url, 'POST', '/api/auth/login', { key: `llmc_${'n'.repeat(43)}` });
    expect([wrong.status, wrong.headers.get('set-cookie')]).toEqual([401, null]);
    expect((await api(running.url, 'POST', '/api/auth/login', { nope: 1 })).status).toBe(400);
    expect((await api(running.url, 'GET', '/api/auth/me')).status).toBe(401);

    const logout = await api(running.url, 'POST', '/api/auth/logout', undefined, cookie);
    expect([logout.status, logout.headers.get('set-cookie')]).toEqual([204, 'llm_chat_key=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0']);
  });

  it('under --auth none says so and sets nothing', async () => {
    running = await startServer();
    expect((await api(running.url, 'GET', '/api/auth/me')).body).toEqual({ auth: 'none' });
    const login = await api(running.url, 'POST', '/api/auth/login', { key: 'anything' });
    expect([login.status, login.headers.get('set-cookie')]).toEqual([204, null]);
  });
});
