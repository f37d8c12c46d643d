import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, SseClient, startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { ADMIN_TOKEN, createKey } from '../support/keys.ts';

let running: RunningServer | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.splice(0)) cleanup();
  await running?.close();
  running = undefined;
});

const keyed = (options: Parameters<typeof startServer>[0] = {}) =>
  startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, messagesPerMinute: 0, ...options });

async function socket(url: string, headers: Record<string, string>) {
  const client = await WsClient.open(url, { headers });
  cleanups.push(() => client.close());
  return client;
}

/**
 * The key's limits on a real server. rate-limiter-flexible reads
 * `Date.now()`; here only `Date` is faked (sockets and timers stay real), so
 * "a minute later" is one call and the windows never turn over by themselves.
 */
describe('per-key limits on every surface', () => {
  it('messages per minute: REST 429 with Retry-After, WS error frame with retryAfterMs, /v1 429; the next minute they pass', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    running = await keyed();
    const key = await createKey(running.url, 'chatty', { messagesPerMinute: 2 });
    const other = await createKey(running.url, 'quiet', { messagesPerMinute: 2 });
    const { client, sessionId } = await WsClient.session(running.wsUrl, { headers: key.headers });
    cleanups.push(() => client.close());
    const send = () => api(running!.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'hi' }, key.headers);
    // 2 a minute, plus a burst of 2.
    expect([(await send()).status, (await send()).status, (await send()).status, (await send()).status]).toEqual([202, 202, 202, 202]);
    const refused = await send();
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: { code: 'rate_limited', message: 'This key sent too many messages; try again later.' } });
    expect(Number(refused.headers.get('retry-after'))).toBe(60);
    client.send('over the limit');
    expect(await client.waitFor((frame) => frame.type === 'error')).toMatchObject({ code: 'rate_limited', retryAfterMs: 60_000 });
    const v1 = await api(running.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, key.headers);
    expect([v1.status, (v1.body['error'] as { code?: string }).code]).toEqual([429, 'rate_limited']);
    // Another key has its own budget.
    const theirs = String((await api(running.url, 'POST', '/api/sessions', {}, other.headers)).body['sessionId']);
    expect((await api(running.url, 'POST', `/api/sessions/${theirs}/messages`, { text: 'hi' }, other.headers)).status).toBe(202);
    vi.setSystemTime(Date.now() + 60_001);
    expect((await send()).status).toBe(202);
  });

  it('/v1 also obeys the per-session --messages-per-minute (the same answer REST gives)', async () => {
    running = await keyed({ messagesPerMinute: 2 });
    const key = await createKey(running.url, 'sdk');
    const sessionId = String((await api(running.url, 'POST', '/api/sessions', {}, key.headers)).body['sessionId']);
    const ask = () => api(running!.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, { ...key.headers, 'x-session-id': sessionId });
    expect([(await ask()).status, (await ask()).status]).toEqual([200, 200]);
    const third = await ask();
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ error: { code: 'rate_limited', type: 'rate_limit_error' } });
    expect((await api(running.url, 'POST', `/api/sessions/${sessionId}/messages`, { text: 'x' }, key.headers)).status).toBe(429);
  });

  it('sessions per minute: REST 429, a new WebSocket gets rate_limited and 1013; the next minute they pass', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    running = await keyed();
    const key = await createKey(running.url, 'maker', { sessionsPerMinute: 1 });
    const create = () => api(running!.url, 'POST', '/api/sessions', {}, key.headers);
    expect([(await create()).status, (await create()).status]).toEqual([201, 201]);
    const refused = await create();
    expect([refused.status, refused.body]).toEqual([429, { error: { code: 'rate_limited', message: 'This key made too many sessions; try again later.', retryAfterMs: 60_000 } }]);
    expect(refused.headers.get('retry-after')).toBe('60');
    const ws = await socket(running.wsUrl, key.headers);
    expect((await ws.closed()).code).toBe(1013);
    expect(ws.frames).toEqual([{ type: 'error', code: 'rate_limited', message: 'This key made too many sessions; try again later.', retryAfterMs: 60_000 }]);
    // Attaching to an existing session is not making one.
    const listed = (await api(running.url, 'GET', '/api/sessions', undefined, key.headers)).body['sessions'] as { sessionId: string }[];
    const existing = listed[0]!.sessionId;
    const attached = await socket(`${running.wsUrl}?sessionId=${existing}`, key.headers);
    await attached.waitFor((frame) => frame.type === 'session');
    vi.setSystemTime(Date.now() + 60_001);
    expect((await create()).status).toBe(201);
  });

  it('connections: past the limit a WebSocket gets rate_limited + 1013 and an SSE stream 429; closing one frees a place', async () => {
    running = await keyed();
    const key = await createKey(running.url, 'tabs', { connections: 2 });
    const sessionId = String((await api(running.url, 'POST', '/api/sessions', {}, key.headers)).body['sessionId']);
    const first = await socket(`${running.wsUrl}?sessionId=${sessionId}`, key.headers);
    await first.waitFor((frame) => frame.type === 'session');
    const sse = await SseClient.open(`${running.url}/sse/${sessionId}`, key.headers);
    cleanups.push(() => sse.close());
    expect(sse.status).toBe(200);
    const third = await socket(`${running.wsUrl}?sessionId=${sessionId}`, key.headers);
    expect((await third.closed()).code).toBe(1013);
    expect(third.frames[0]).toMatchObject({ code: 'rate_limited', retryAfterMs: 1000 });
    const refused = await api(running.url, 'GET', `/sse/${sessionId}`, undefined, key.headers);
    expect([refused.status, refused.headers.get('retry-after')]).toEqual([429, '1']);
    // A streamed /v1 reply is a connection too.
    const v1 = await api(running.url, 'POST', '/v1/chat/completions', { stream: true, messages: [{ role: 'user', content: 'x' }] }, { ...key.headers, 'x-session-id': sessionId });
    expect(v1.status).toBe(429);
    expect(running.server.admission.connections).toBe(2); // refusals hold nothing
    first.close();
    await first.closed();
    await new Promise((resolve) => setTimeout(resolve, 30));
    const again = await socket(`${running.wsUrl}?sessionId=${sessionId}`, key.headers);
    await again.waitFor((frame) => frame.type === 'session');
  });

  it('live sessions: past the limit the key’s least recently used idle session is passivated; refused only when all are busy', async () => {
    running = await keyed({ simIntervalMs: 300, simChunks: 3 });
    const key = await createKey(running.url, 'hoarder', { liveSessions: 2 });
    const other = await createKey(running.url, 'neighbour');
    const create = async (headers = key.headers) => String((await api(running!.url, 'POST', '/api/sessions', {}, headers)).body['sessionId']);
    const neighbour = await create(other.headers);
    const oldest = await create();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const newer = await create();
    const third = await create();
    const { registry } = running.server;
    expect(registry.liveCountOf(key.id)).toBe(2);
    expect(registry.peek(oldest)).toBeUndefined(); // passivated to make room
    expect(registry.peek(neighbour)).toBeDefined(); // another key's sessions are not touched
    // Both live ones busy: nothing to passivate, a new one is refused.
    for (const id of [newer, third]) expect((await api(running.url, 'POST', `/api/sessions/${id}/messages`, { text: 'busy' }, key.headers)).status).toBe(202);
    const refused = await api(running.url, 'POST', '/api/sessions', {}, key.headers);
    expect([refused.status, (refused.body['error'] as { code: string }).code, refused.headers.get('retry-after')]).toEqual([429, 'rate_limited', '1']);
    // Its own existing session still comes back, even now.
    const back = await api(running.url, 'GET', `/api/sessions/${oldest}`, undefined, key.headers);
    expect(back.status).toBe(200);
    expect(registry.liveCountOf(key.id)).toBe(3);
  });
});

describe('a key’s own limit of 0', () => {
  it('means no limit, whatever the node’s defaults (the --key-* flags) are', async () => {
    const strict = { messagesPerMinute: 1, sessionsPerMinute: 1, connections: 1, liveSessions: 1 };
    running = await keyed({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN, keyLimits: strict } });
    const bound = await createKey(running.url, 'bound');
    const free = await createKey(running.url, 'free', { messagesPerMinute: 0, sessionsPerMinute: 0, connections: 0, liveSessions: 0 });
    const create = (key: typeof free) => api(running!.url, 'POST', '/api/sessions', {}, key.headers);
    const send = (key: typeof free, id: string) => api(running!.url, 'POST', `/api/sessions/${id}/messages`, { text: 'hi' }, key.headers);
    const attach = async (key: typeof free, id: string) => {
      const client = await socket(`${running!.wsUrl}?sessionId=${id}`, key.headers);
      return (await client.waitFor((frame) => frame.type === 'session' || frame.type === 'error'))['type'];
    };
    // A key without its own limits gets the defaults: 1 a minute plus a burst of 1, one connection.
    const boundSession = String((await create(bound)).body['sessionId']);
    expect([(await create(bound)).status, (await create(bound)).status]).toEqual([201, 429]);
    expect([(await send(bound, boundSession)).status, (await send(bound, boundSession)).status, (await send(bound, boundSession)).status]).toEqual([202, 202, 429]);
    expect([await attach(bound, boundSession), await attach(bound, boundSession)]).toEqual(['session', 'error']);
    // The key whose limits are 0 has none of them.
    const made: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const created = await create(free);
      expect(created.status).toBe(201);
      made.push(String(created.body['sessionId']));
    }
    expect(running.server.registry.liveCountOf(free.id)).toBe(5);
    for (let i = 0; i < 5; i += 1) expect((await send(free, made[0]!)).status).toBe(202);
    for (const id of made.slice(0, 3)) expect(await attach(free, id)).toBe('session');
  });
});

describe('at --max-sessions', () => {
  it('a flood of new sessions passivates idle ones, and the owner of an existing session still reads it', async () => {
    running = await keyed({ maxSessions: 50 });
    const owner = await createKey(running.url, 'owner');
    const flooder = await createKey(running.url, 'flooder');
    const mine = String((await api(running.url, 'POST', '/api/sessions', {}, owner.headers)).body['sessionId']);
    expect((await api(running.url, 'POST', `/api/sessions/${mine}/messages`, { text: 'keep me' }, owner.headers)).status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the reply finishes: the session is idle
    const statuses: number[] = [];
    for (let i = 0; i < 60; i += 1) statuses.push((await api(running.url, 'POST', '/api/sessions', {}, flooder.headers)).status);
    expect(statuses).toEqual(Array(60).fill(201));
    expect(running.server.registry.activeCount).toBeLessThanOrEqual(50);
    const read = await api(running.url, 'GET', `/api/sessions/${mine}`, undefined, owner.headers);
    expect(read.status).toBe(200);
    expect((read.body['messages'] as { content: string }[])[0]?.content).toBe('keep me');
  });

  it('a stranger guessing a passivated session’s id gets 404 and does not bring it back', async () => {
    running = await keyed({ maxSessions: 1 });
    const owner = await createKey(running.url, 'owner');
    const stranger = await createKey(running.url, 'stranger');
    const mine = String((await api(running.url, 'POST', '/api/sessions', {}, owner.headers)).body['sessionId']);
    await api(running.url, 'POST', '/api/sessions', {}, stranger.headers); // passivates mine
    expect(running.server.registry.peek(mine)).toBeUndefined();
    expect((await api(running.url, 'GET', `/api/sessions/${mine}`, undefined, stranger.headers)).status).toBe(404);
    expect(running.server.registry.peek(mine)).toBeUndefined();
    expect((await api(running.url, 'GET', `/api/sessions/${mine}`, undefined, owner.headers)).status).toBe(200);
  });
});

describe('per-IP limits count requests without a valid key', () => {
  it('401s count against the address; past the rate they become 429; a valid key from the same address is unaffected', async () => {
    running = await keyed({ connRatePerIp: 3, connBurstPerIp: 0 });
    const key = await createKey(running.url, 'good');
    const wrong = { authorization: `Bearer llmc_${'q'.repeat(43)}` };
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await api(running.url, 'GET', '/api/sessions', undefined, wrong)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const ws = await socket(running.wsUrl, wrong);
    expect((await ws.closed()).code).toBe(1013);
    expect(ws.frames[0]).toMatchObject({ code: 'rate_limited' });
    expect((await api(running.url, 'GET', '/api/sessions', undefined, key.headers)).status).toBe(200);
  });
});
