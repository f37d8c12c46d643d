import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { api, SseClient, startServer, WsClient } from '../support/harness.ts';
import type { RunningServer } from '../support/harness.ts';
import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { ADMIN_TOKEN, createKey, revokeKey } from '../support/keys.ts';

let running: RunningServer | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await running?.close();
  running = undefined;
});

/** A streamed `/v1` reply read raw, so the test sees exactly how it ends. */
function openAiStream(url: string, key: string, sessionId: string): Promise<{ text: () => string; ended: Promise<void>; status: number }> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'long one' }] });
    const request = httpRequest(
      `${url}/v1/chat/completions`,
      { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-session-id': sessionId } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (part: string) => (text += part));
        const ended = new Promise<void>((done) => {
          response.on('end', () => done());
          response.on('error', () => done());
          response.on('close', () => done());
        });
        resolve({ text: () => text, ended, status: response.statusCode ?? 0 });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

describe('revoking a key', () => {
  it('closes its WebSockets (error frame, 4401), ends its SSE streams and streamed /v1 replies within 1 s; other keys go on', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN }, simIntervalMs: 200, simChunks: 50 });
    const doomed = await createKey(running.url, 'doomed');
    const other = await createKey(running.url, 'other');
    const { client: socket, sessionId } = await WsClient.session(running.wsUrl, { headers: doomed.headers });
    cleanups.push(() => socket.close());
    const sse = await SseClient.open(`${running.url}/sse/${sessionId}`, doomed.headers);
    cleanups.push(() => sse.close());
    const { client: bystander, sessionId: otherSession } = await WsClient.session(running.wsUrl, { headers: other.headers });
    cleanups.push(() => bystander.close());
    const stream = await openAiStream(running.url, doomed.key, sessionId);
    expect(stream.status).toBe(200);
    await sse.waitFor(() => sse.chunks.length > 0); // the /v1 reply streams to every watcher
    expect(running.server.admission.connections).toBe(4);

    const started = Date.now();
    expect(await revokeKey(running.url, doomed.id)).toBe(204);
    const closed = await socket.closed(1000);
    await sse.waitFor(() => sse.ended, 1000);
    await Promise.race([stream.ended, new Promise((_resolve, reject) => setTimeout(() => reject(new Error('the /v1 stream did not end')), 1000))]);
    expect(Date.now() - started).toBeLessThan(1000);

    expect(closed.code).toBe(4401);
    expect(socket.frames.at(-1)).toEqual({ type: 'error', code: 'unauthorized', message: 'This API key was revoked.' });
    expect(stream.text()).toContain('"code":"unauthorized"');
    expect(stream.text()).not.toContain('[DONE]');
    // Every slot it held is free again; the other key's socket is untouched.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(running.server.admission.connections).toBe(1);
    expect(bystander.closeEvent).toBeUndefined();
    bystander.send('still here');
    await bystander.waitFor((frame) => frame.type === 'accepted');

    // Every later request with it is refused, on every surface.
    expect((await api(running.url, 'GET', `/api/sessions/${sessionId}`, undefined, doomed.headers)).status).toBe(401);
    expect((await api(running.url, 'GET', `/sse/${sessionId}`, undefined, doomed.headers)).status).toBe(401);
    const again = await WsClient.open(`${running.wsUrl}?sessionId=${sessionId}`, { headers: doomed.headers });
    expect((await again.closed()).code).toBe(4401);
    expect((await api(running.url, 'GET', `/api/sessions/${otherSession}`, undefined, other.headers)).status).toBe(200);
    // Revoking again: it is gone.
    expect(await revokeKey(running.url, doomed.id)).toBe(404);
  });

  it('takes effect at once on the node that revoked it, even for a key it trusted a moment ago', async () => {
    running = await startServer({ auth: { mode: 'keys', adminToken: ADMIN_TOKEN, keyCacheMs: 60_000 } });
    const key = await createKey(running.url, 'cached');
    expect((await api(running.url, 'GET', '/api/sessions', undefined, key.headers)).status).toBe(200);
    await revokeKey(running.url, key.id);
    expect((await api(running.url, 'GET', '/api/sessions', undefined, key.headers)).status).toBe(401);
  });

  it('a key revoked by another node sharing the store: its sockets here close within the cache time', async () => {
    const store = createMemoryStore();
    running = await startServer({ store, auth: { mode: 'keys', adminToken: ADMIN_TOKEN, keyCacheMs: 200 } });
    const key = await createKey(running.url, 'elsewhere');
    const { client } = await WsClient.session(running.wsUrl, { headers: key.headers });
    cleanups.push(() => client.close());
    const started = Date.now();
    // Another node revokes it in the shared store: this node is not told.
    expect(await store.keys!.revoke(key.id, Date.now())).toBe(true);
    expect((await client.closed(1500)).code).toBe(4401);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await api(running.url, 'GET', '/api/sessions', undefined, key.headers)).status).toBe(401);
  });
});
