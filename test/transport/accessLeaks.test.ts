import { connect } from 'node:net';
import type { Socket } from 'node:net';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyStore } from '../../src/domain/apiKeys.ts';
import { ChatError } from '../../src/domain/errors.ts';
import { createMemoryKeyStore } from '../../src/infra/memoryKeyStore.ts';
import { api, SseClient, startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { ADMIN_TOKEN, createKey } from '../support/keys.ts';
import type { TestKey } from '../support/keys.ts';
import { wait } from '../support/waiting.ts';

let running: RunningServer | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await running?.close();
  running = undefined;
});

/** Sends raw bytes and hangs up (or not); resolves with the socket. */
function raw(port: number, text: string): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(text);
      resolve(socket);
    });
    socket.on('error', () => {});
    cleanups.push(() => socket.destroy());
  });
}

/**
 * With `connections: 1`, a slot of the key that leaked would refuse the next
 * connection (`rate_limited`, 1013): each test ends by opening one.
 */
async function oneMoreConnectionWorks(server: RunningServer, key: TestKey, sessionId: string) {
  await wait(50);
  const client = await WsClient.open(`${server.wsUrl}?sessionId=${sessionId}`, { headers: key.headers });
  cleanups.push(() => client.close());
  expect(await client.waitFor((frame) => frame.type === 'session' || frame.type === 'error')).toMatchObject({ type: 'session' });
}

describe('what a key holds is given back on every path', () => {
  it('an SSE client that hangs up at once, one refused, and one revoked-free stream that ends: the key’s one slot is free again', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    const key = await createKey(running.url, 'one', { connections: 1 });
    const sessionId = String((await api(running.url, 'POST', '/api/sessions', {}, key.headers)).body['sessionId']);
    const port = Number(new URL(running.url).port);
    // A hang-up right after the request line and headers: the server may still be authenticating.
    for (let i = 0; i < 5; i += 1) (await raw(port, `GET /sse/${sessionId} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.key}\r\n\r\n`)).destroy();
    // A malformed Last-Event-ID after the slot was taken: 400, and the slot goes back.
    expect((await api(running.url, 'GET', `/sse/${sessionId}`, undefined, { ...key.headers, 'last-event-id': 'soon' })).status).toBe(400);
    const sse = await SseClient.open(`${running.url}/sse/${sessionId}`, key.headers);
    expect(sse.status).toBe(200);
    sse.close();
    await oneMoreConnectionWorks(running, key, sessionId);
  });

  it('WebSocket upgrades that hang up mid-authentication or send a broken handshake', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN } });
    const key = await createKey(running.url, 'one', { connections: 1 });
    const sessionId = String((await api(running.url, 'POST', '/api/sessions', {}, key.headers)).body['sessionId']);
    const port = Number(new URL(running.url).port);
    const upgrade = (extra: string) =>
      `GET /ws?sessionId=${sessionId} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nAuthorization: Bearer ${key.key}\r\n${extra}\r\n`;
    for (let i = 0; i < 5; i += 1) (await raw(port, upgrade('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'))).destroy();
    // No Sec-WebSocket-Key: ws answers 400 itself and never hands the socket over.
    const broken = await raw(port, upgrade('Sec-WebSocket-Version: 13\r\n'));
    broken.resume();
    await new Promise((resolve) => broken.once('close', resolve));
    await oneMoreConnectionWorks(running, key, sessionId);
  });

  it('a streamed /v1 reply whose client hangs up, and one refused: the slot comes back', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, simIntervalMs: 50 });
    const key = await createKey(running.url, 'one', { connections: 1 });
    const sessionId = String((await api(running.url, 'POST', '/api/sessions', {}, key.headers)).body['sessionId']);
    const client = new OpenAI({ apiKey: key.key, baseURL: `${running.url}/v1`, maxRetries: 0 });
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ model: 'simulated', stream: true, messages: [{ role: 'user', content: 'x' }] }, { signal: controller.signal });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    await wait(50);
    // The slot is free: a second stream is admitted (had it leaked: 429).
    const second = await client.chat.completions.create({ model: 'simulated', stream: true, messages: [{ role: 'user', content: 'y' }] }, { headers: { 'X-Session-Id': sessionId } });
    let text = '';
    for await (const chunk of second) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toContain('chunk 5: y');
    await oneMoreConnectionWorks(running, key, sessionId);
  });
});

describe('/v1 under the node’s rules', () => {
  it('a streamed reply takes a connection of the node: past --max-connections it is 503 overloaded; a plain one is not a connection', async () => {
    running = await startServer({ maxConnections: 1 });
    const { client } = await WsClient.session(running.wsUrl);
    cleanups.push(() => client.close());
    const body = { messages: [{ role: 'user', content: 'x' }] };
    const streamed = await api(running.url, 'POST', '/v1/chat/completions', { ...body, stream: true });
    expect([streamed.status, streamed.body]).toEqual([503, { error: { message: 'The server is at capacity; try again later.', type: 'server_error', param: null, code: 'overloaded' } }]);
    expect(streamed.headers.get('retry-after')).toBe('1');
    expect((await api(running.url, 'POST', '/v1/chat/completions', body)).status).toBe(200);
    // Nothing was left behind by the refusal: no ephemeral session, no slot.
    expect(running.server.registry.activeCount).toBe(1);
    expect(running.server.admission.connections).toBe(1);
  });

  it('a streamed reply whose reader stops reading is cut off past --max-buffered-bytes; its slot comes back', async () => {
    const slow: string[] = [];
    running = await startServer({ simIntervalMs: 0, simChunks: 1000, maxBufferedBytes: 128 * 1024, messagesPerMinute: 0, onSlowConsumer: (transport) => slow.push(transport) });
    const port = Number(new URL(running.url).port);
    const body = JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'z'.repeat(20_000) }] });
    const socket = await raw(port, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    socket.once('data', () => socket.pause()); // the headers arrive, then nothing more is read
    while (running.server.admission.connections === 0) await wait(5);
    const deadline = Date.now() + 10_000;
    while (running.server.admission.connections > 0 || running.server.registry.activeCount > 0) {
      if (Date.now() > deadline) throw new Error(`still held: ${running.server.admission.connections} connections`);
      await wait(20);
    }
    // Cut off (1,000 chunks of 20 kB: far more than the socket buffers hold), and the ephemeral session went with it.
    expect(slow).toEqual(['http']);
  });

  it('sheds /v1 while the event loop lags, like every other surface', async () => {
    running = await startServer({ shedLagMs: 30 });
    const hogUntil = Date.now() + 1_500;
    while (Date.now() < hogUntil) {
      const sliceEnd = Date.now() + 60;
      while (Date.now() < sliceEnd) {
        // busy
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    const refused = await api(running.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] });
    expect([refused.status, (refused.body['error'] as { code: string }).code]).toEqual([503, 'overloaded']);
  });
});

describe('a key store that fails', () => {
  it('answers store_unavailable on every surface (never a crash, never a pass), and recovers when the store does', async () => {
    const keys = createMemoryKeyStore();
    let down = false;
    const failing: KeyStore = { ...keys, findByHash: (hash) => (down ? Promise.reject(new ChatError('store_unavailable')) : keys.findByHash(hash)) };
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN, keyStore: failing, keyCacheMs: 0 } });
    const key = await createKey(running.url, 'k');
    const sessionId = String((await api(running.url, 'POST', '/api/sessions', {}, key.headers)).body['sessionId']);
    down = true;
    const rest = await api(running.url, 'GET', `/api/sessions/${sessionId}`, undefined, key.headers);
    expect([rest.status, (rest.body['error'] as { code: string }).code]).toEqual([503, 'store_unavailable']);
    expect((await api(running.url, 'GET', `/sse/${sessionId}`, undefined, key.headers)).status).toBe(503);
    const v1 = await api(running.url, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, key.headers);
    expect([v1.status, (v1.body['error'] as { code: string }).code]).toEqual([503, 'store_unavailable']);
    const socket = await WsClient.open(running.wsUrl, { headers: key.headers });
    expect((await socket.closed()).code).toBe(1013);
    expect(socket.frames[0]).toMatchObject({ type: 'error', code: 'store_unavailable' });
    expect(running.server.admission.connections).toBe(0);
    down = false;
    expect((await api(running.url, 'GET', `/api/sessions/${sessionId}`, undefined, key.headers)).status).toBe(200);
  });
});
